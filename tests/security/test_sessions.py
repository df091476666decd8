"""Issue 8 §4: portal sessions end by themselves (idle and absolute limits, HIPAA 164.312(a)(2)(iii)), nothing with
patient data is kept by a cache, and the lock-out answer is not the wrong-password answer."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.middleware import SESSION_ACTIVITY_KEY, SESSION_STARTED_KEY
from clinaiops.core.models import User
from tests.factories import PASSWORD


def _signed_in(user: User) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def _age(client: Client, *, started: float = 0, active: float = 0) -> None:
    """Move the session's clocks `started` / `active` seconds into the past."""
    session = client.session
    session[SESSION_STARTED_KEY] = int(time.time() - started)
    session[SESSION_ACTIVITY_KEY] = int(time.time() - active)
    session.save()


def test_a_session_idle_for_15_minutes_is_signed_out_with_a_message(clinician: User) -> None:
    client = _signed_in(clinician)
    _age(client, started=16 * 60, active=15 * 60 + 1)
    response = client.get("/queue/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/?next=/queue/")
    assert "Signed out after 15 minutes without activity." in response.content.decode()
    # Signed out for good: the old session cookie reaches nothing.
    assert client.get("/queue/").status_code == 302


def test_activity_keeps_a_session_alive_and_moves_the_idle_clock(clinician: User) -> None:
    client = _signed_in(clinician)
    _age(client, started=14 * 60, active=14 * 60)
    assert client.get("/queue/").status_code == 200
    assert time.time() - client.session[SESSION_ACTIVITY_KEY] < 5
    _age(client, started=28 * 60, active=14 * 60)
    assert client.get("/queue/").status_code == 200


def test_even_an_active_session_ends_12_hours_after_sign_in(clinician: User) -> None:
    client = _signed_in(clinician)
    _age(client, started=12 * 3600 + 1, active=10)
    response = client.get("/queue/", follow=True)
    assert "Signed out: a session lasts at most 12 hours." in response.content.decode()
    assert django_settings.SESSION_COOKIE_AGE == 12 * 3600
    # The cookie itself ends with the browser, and the server's record of the session within 12 hours.
    client = _signed_in(clinician)
    assert client.cookies["sessionid"]["max-age"] == ""
    assert client.session.get_expiry_age() <= 12 * 3600


def test_the_idle_limit_is_configurable(clinician: User, settings: Any) -> None:
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 120
    client = _signed_in(clinician)
    assert "ends after 2 minutes without activity" in client.get("/account/").content.decode()
    _age(client, started=200, active=121)
    assert client.get("/queue/").status_code == 302


def test_the_idle_warning_reads_the_clock_without_resetting_it_and_can_extend_it(clinician: User) -> None:
    client = _signed_in(clinician)
    _age(client, started=600, active=600)
    probe = client.get("/account/session/", HTTP_X_SESSION_PROBE="1")
    left = probe.json()["seconds_left"]
    assert 290 <= left <= 300 and probe.json()["warning_seconds"] == 120
    # Asking is not activity: the clock is where it was.
    assert client.get("/account/session/", HTTP_X_SESSION_PROBE="1").json()["seconds_left"] <= left
    # "Stay signed in" is.
    assert client.post("/account/session/").json()["seconds_left"] >= 15 * 60 - 5
    assert Client().get("/account/session/").status_code == 401


def test_portal_pages_name_the_idle_warning_script_and_its_clock(clinician: User) -> None:
    page = _signed_in(clinician).get("/queue/").content.decode()
    assert 'data-session-url="/account/session/"' in page
    assert '<script src="/static/portal/portal.js" defer></script>' in page
    assert 'id="session-warning"' in page
    script = Client().get("/static/portal/portal.js")
    assert script.status_code == 200
    body = b"".join(script.streaming_content).decode()  # type: ignore[attr-defined]
    assert "X-Session-Probe" in body and "Stay signed in" not in body  # the words live in the template


def test_pages_and_api_answers_with_patient_data_are_never_stored(
    patient: Patient, clinician: User, api_client_for: Any, portal_client_for: Any
) -> None:
    portal = portal_client_for(clinician)
    api = api_client_for(patient.user)
    for response in (
        portal.get(f"/patients/{patient.pk}/"),
        portal.get("/queue/"),
        api.get("/api/v1/me/"),
        api.get("/api/v1/readings/"),
        api.get("/api/v1/recommendations/"),
        APIClient().get("/api/v1/me/"),  # a refusal too
        Client().get("/login/"),
    ):
        directives = {part.strip() for part in response["Cache-Control"].split(",")}
        assert "no-store" in directives, response.wsgi_request.path


def test_a_lockout_is_answered_differently_from_a_wrong_password_on_the_portal(clinician: User, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    wrong = Client().post("/login/", {"username": clinician.username, "password": "guess"})
    assert wrong.status_code == 200
    assert "didn&#x27;t match" in wrong.content.decode() or "didn't match" in wrong.content.decode()
    locked = Client().post("/login/", {"username": clinician.username, "password": "guess again"})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "This account is locked" in locked.content.decode()
    # The right password does not get through while locked.
    assert Client().post("/login/", {"username": clinician.username, "password": PASSWORD}).status_code == 429
