"""Issue 8 §4: TOTP for staff. Codes are computed here from RFC 6238 (tests/security/conftest.py), from the secret the
enrolment page shows, exactly as an authenticator app would."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.errors import PermissionRefused
from clinaiops.core.models import User
from clinaiops.portal.account_services import mfa_enrol_confirm, mfa_remove, totp_key_new
from tests.factories import PASSWORD
from tests.security.conftest import bearer, totp, totp_from_base32

SignIn = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def _no_throttle_unless_asked(settings: Any) -> None:
    # django-otp doubles a wait after each wrong code; only the throttle's own test keeps it.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def _enrolled(user: User) -> str:
    key = totp_key_new()
    mfa_enrol_confirm(user=user, key_hex=key, code=totp(key))
    return key


def _fresh_code(key: str) -> str:
    """The next time step's code: the current one was spent by the enrolment (each code works once)."""
    return totp(key, at=time.time() + 30)


def _password_step(user: User) -> tuple[Client, str]:
    client = Client()
    response = client.post("/login/?next=/queue/", {"username": user.username, "password": PASSWORD, "next": "/queue/"})
    assert response.status_code == 302
    return client, response["Location"]


def test_a_signing_role_must_enrol_at_first_sign_in_where_mfa_is_required(clinician: User, settings: Any) -> None:
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = True
    client, location = _password_step(clinician)
    assert location.startswith("/account/mfa/enrol/")
    # The password alone opens nothing else: every page sends the session back to the second factor.
    for page in ("/queue/", f"/patients/{clinician.pk}/", "/models/", "/admin/"):
        assert client.get(page)["Location"].startswith("/account/mfa/verify/"), page
    enrol = client.get(location).content.decode()
    assert "<svg" in enrol and "otpauth://totp/ClinAIOps%3Adr_assigned?secret=" in enrol
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol).group(1)  # type: ignore[union-attr]
    wrong = client.post(location, {"code": "000000" if totp_from_base32(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and not TOTPDevice.objects.filter(user=clinician).exists()
    done = client.post(location, {"code": totp_from_base32(secret), "next": "/queue/"})
    assert done["Location"] == "/queue/"
    assert client.get("/queue/").status_code == 200
    assert TOTPDevice.objects.get(user=clinician).confirmed
    assert AuditEvent.objects.get(action="mfa.enrolled").actor == clinician


def test_an_enrolled_user_needs_a_current_unused_code_at_sign_in(clinician: User, settings: Any) -> None:
    key = _enrolled(clinician)
    client, location = _password_step(clinician)
    assert location.startswith("/account/mfa/verify/")
    assert client.get("/queue/")["Location"].startswith("/account/mfa/verify/")
    refused = client.post(location, {"code": "12345x"})
    assert "That code was not accepted" in refused.content.decode()
    assert client.post(location, {"code": totp(key, at=time.time() - 300)}).status_code == 200  # too old
    denied = AuditEvent.objects.filter(action="mfa.refused", outcome="denied", actor=clinician)
    assert denied.count() == 2
    code = _fresh_code(key)
    assert client.post(location, {"code": code, "next": "/queue/"})["Location"] == "/queue/"
    assert client.get("/queue/").status_code == 200
    # The same code cannot open a second session (a code works once).
    other, other_location = _password_step(clinician)
    assert other.post(other_location, {"code": code}).status_code == 200
    assert other.get("/queue/").status_code == 302


def test_guessing_codes_is_throttled(clinician: User, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    key = _enrolled(clinician)
    client, location = _password_step(clinician)
    client.post(location, {"code": "000001"})
    # Even the right code waits out the throttle after a wrong one.
    throttled = client.post(location, {"code": _fresh_code(key)}).content.decode()
    assert "Too many wrong codes: wait" in throttled
    assert client.get("/queue/").status_code == 302


def test_mfa_is_optional_where_not_required_and_applies_once_enrolled(clinician: User, settings: Any) -> None:
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = False
    client, location = _password_step(clinician)
    assert location == "/queue/"
    assert "Enrol an authenticator app" in client.get("/account/").content.decode()
    _enrolled(clinician)
    _, location = _password_step(clinician)
    assert location.startswith("/account/mfa/verify/")


def test_a_session_opened_without_the_form_is_still_held_for_the_code(clinician: User, settings: Any) -> None:
    """The admin's own sign-in form (or any other path to login()) cannot skip the second factor."""
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = True
    _enrolled(clinician)
    client = Client()
    client.force_login(clinician)
    assert client.get("/queue/")["Location"].startswith("/account/mfa/verify/")


def test_enrolment_revokes_api_tokens_obtained_with_the_password_alone(patient: Patient, sign_in: SignIn) -> None:
    before = sign_in(patient.user)
    _enrolled(patient.user)
    assert bearer(before["access"]).get("/api/v1/me/").json()["code"] == "token_revoked"


def test_the_api_asks_for_the_code_where_mfa_applies(patient: Patient, sign_in: SignIn) -> None:
    key = _enrolled(patient.user)
    assert (sign_in(patient.user)["status"], sign_in(patient.user)["code"]) == (401, "mfa_required")
    wrong = sign_in(patient.user, otp="000000" if _fresh_code(key) != "000000" else "111111")
    assert (wrong["status"], wrong["code"], "access" in wrong) == (401, "mfa_invalid", False)
    right = sign_in(patient.user, otp=_fresh_code(key))
    assert right["status"] == 200
    assert bearer(right["access"]).get("/api/v1/me/").status_code == 200


def test_a_required_role_without_a_device_cannot_get_api_tokens(
    clinician: User, sign_in: SignIn, settings: Any
) -> None:
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = True
    assert sign_in(clinician)["code"] == "mfa_required"


def test_removing_the_app_needs_the_password_and_a_code_and_is_refused_where_required(
    clinician: User, settings: Any
) -> None:
    key = _enrolled(clinician)
    client = Client()
    client.force_login(clinician)
    refused = client.post("/account/mfa/remove/", {"password": "not it", "code": _fresh_code(key)}, follow=True)
    assert "nothing was removed" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=clinician).exists()
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = True
    with pytest.raises(PermissionRefused):
        mfa_remove(user=clinician, password=PASSWORD, code=_fresh_code(key))
    settings.MFA_REQUIRED_FOR_SIGNING_ROLES = False
    removed = client.post("/account/mfa/remove/", {"password": PASSWORD, "code": _fresh_code(key)})
    assert removed.status_code == 302
    assert not TOTPDevice.objects.filter(user=clinician).exists()
    assert AuditEvent.objects.get(action="mfa.removed").actor == clinician
