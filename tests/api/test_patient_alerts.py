"""The patient's safety alerts in the mobile API (issue 12): open ones by default, each with plain guidance; never
another patient's, never a break-glass (staff access) alert; staff are refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.guidance import GUIDANCE, TITLES, alert_guidance
from clinaiops.care.models import Alert, AlertDisposition, AlertKind, Patient
from clinaiops.care.services import ReadingInput, alert_acknowledge
from clinaiops.core.models import User
from clinaiops.loops.services.ingest import reading_ingest

pytestmark = pytest.mark.django_db

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def _crisis(patient: Patient, minutes_ago: int = 5) -> Alert:
    reading = ReadingInput(timezone.now() - timedelta(minutes=minutes_ago), 186, 118, 88, "cuff")
    (alert,) = reading_ingest(actor=patient.user, patient=patient, data=reading).alerts
    return alert


def _low(patient: Patient) -> None:
    """Two low readings an hour apart, oldest first: the second opens sustained hypotension."""
    for minutes_ago in (70, 10):
        reading = ReadingInput(timezone.now() - timedelta(minutes=minutes_ago), 86, 56, 64, "cuff")
        reading_ingest(actor=patient.user, patient=patient, data=reading)


def test_an_open_crisis_is_listed_with_plain_guidance(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    _crisis(patient)
    body = api_client_for(patient.user).get("/api/v1/alerts/").json()
    assert body["count"] == 1
    (alert,) = body["results"]
    assert alert["kind"] == "hypertensive_crisis" and alert["status"] == "open" and alert["priority"] == "P0"
    assert alert["title"] == "Very high blood pressure"
    assert alert["status_text"] == "Your care team has been alerted."
    assert "wait 5 minutes and measure again" in alert["guidance"]
    assert "emergency services (911)" in alert["guidance"] and "care team" in alert["guidance"]


def test_open_alerts_come_newest_first(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    _low(patient)
    _crisis(patient, minutes_ago=1)
    kinds = [a["kind"] for a in api_client_for(patient.user).get("/api/v1/alerts/").json()["results"]]
    assert kinds == ["hypertensive_crisis", "sustained_hypotension"]


def test_an_acknowledged_alert_leaves_the_default_list_but_not_the_history(
    patient: Patient, clinician: User, api_client_for: Callable[[User], APIClient]
) -> None:
    alert = _crisis(patient)
    alert_acknowledge(alert=alert, actor=clinician, disposition=AlertDisposition.CONTACTED_PATIENT, note="Rang her")
    client = api_client_for(patient.user)

    assert client.get("/api/v1/alerts/").json()["count"] == 0
    for query in ("status=all", "status=acknowledged"):
        (shown,) = client.get(f"/api/v1/alerts/?{query}").json()["results"]
        assert shown["status"] == "acknowledged" and shown["acknowledged_at"] is not None
        assert shown["status_text"] == "Your care team has seen this and is dealing with it."
    response = client.get("/api/v1/alerts/?status=all")
    assert b"Rang her" not in response.content and b"Dr Assigned" not in response.content


def test_break_glass_alerts_are_not_the_patients_to_list(
    patient: Patient, emergency_clinician: User, api_client_for: Callable[[User], APIClient]
) -> None:
    assert Alert.objects.filter(patient=patient, kind=AlertKind.BREAK_GLASS).exists()
    client = api_client_for(patient.user)
    for query in ("", "?status=all"):
        assert client.get(f"/api/v1/alerts/{query}").json()["count"] == 0


def test_another_patients_alerts_never_appear(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    other = _crisis(other_patient)
    response = api_client_for(patient.user).get("/api/v1/alerts/?status=all")
    assert response.json()["count"] == 0
    assert api_client_for(other_patient.user).get("/api/v1/alerts/").json()["results"][0]["id"] == other.pk


def test_an_unknown_status_is_a_400_that_does_not_echo_it(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).get("/api/v1/alerts/?status=closedish")
    assert response.status_code == 400
    assert response.json()["fields"] == {"status": ["Not one of the allowed values."]}
    assert b"closedish" not in response.content


@pytest.mark.parametrize("limit", ["0", "201", "-1", "9" * 30])
def test_page_size_outside_the_bounds_is_a_400(
    limit: str, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).get(f"/api/v1/alerts/?limit={limit}")
    assert response.status_code == 400 and list(response.json()["fields"]) == ["limit"]


def test_staff_tokens_are_refused(
    patient: Patient, clinician: User, safety_officer: User, api_client_for: Callable[[User], APIClient]
) -> None:
    _crisis(patient)
    for user in (clinician, safety_officer):
        response = api_client_for(user).get("/api/v1/alerts/")
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_alerts_list_queries_do_not_grow_with_the_list(
    patient: Patient, clinician: User, api_client_for: Callable[[User], APIClient], django_assert_max_num_queries: Any
) -> None:
    client = api_client_for(patient.user)
    alert = _crisis(patient)
    with django_assert_max_num_queries(ALERTS_MAX_QUERIES):
        assert client.get("/api/v1/alerts/?status=all").json()["count"] == 1
    alert_acknowledge(alert=alert, actor=clinician, disposition=AlertDisposition.FALSE_READING, note="Cuff too small")
    _crisis(patient, minutes_ago=2)
    _low(patient)
    with django_assert_max_num_queries(ALERTS_MAX_QUERIES):
        response = client.get("/api/v1/alerts/?status=all")
    assert response.json()["count"] == 3
    assert not EMAIL.search(response.content.decode())


def test_every_safety_alert_kind_has_guidance_and_a_title_and_break_glass_has_none() -> None:
    safety = {AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION}
    assert set(GUIDANCE) == safety and set(TITLES) == safety
    assert alert_guidance(AlertKind.BREAK_GLASS) is None
    # Short enough to read on a phone's lock screen in one go.
    assert all(len(text) <= 400 for text in GUIDANCE.values())


# Authentication loads the user with the patient in one query (clinaiops.api.auth); then the count and the page.
ALERTS_MAX_QUERIES = 3
