"""Issue 8 §4: API tokens die with the credential that issued them. Each test takes the attacker's seat: it keeps
an old token and tries it after the event that should have killed it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from clinaiops.api.auth_services import access_token_issue, token_pair_refresh
from clinaiops.api.tasks import tokens_expired_purge_task
from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from governance.policy import EffectiveBounds
from governance.services import SignatureRefused, autonomy_bounds_set
from tests.factories import PASSWORD
from tests.security.conftest import bearer

SignIn = Callable[..., dict[str, Any]]
NEW_PASSWORD = "a quite different passphrase 2026"
BOUNDS = EffectiveBounds(
    max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
)


def _me(access: str) -> tuple[int, str | None]:
    response = bearer(access).get("/api/v1/me/")
    return response.status_code, response.json().get("code") if response.status_code != 200 else None


def _refresh(refresh: str) -> tuple[int, dict[str, Any]]:
    response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    return response.status_code, response.json()


def test_a_password_change_in_the_portal_revokes_the_old_access_and_refresh_tokens(
    patient: Patient, sign_in: SignIn
) -> None:
    old = sign_in(patient.user)
    assert _me(old["access"]) == (200, None)
    portal = Client()
    portal.force_login(patient.user)
    changed = portal.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert _me(old["access"]) == (401, "token_revoked")
    assert _refresh(old["refresh"])[0] == 401
    assert _refresh(old["refresh"])[1]["code"] == "token_revoked"
    # The old password no longer signs in; the new one does, and its tokens work.
    assert sign_in(patient.user)["code"] == "invalid_credentials"
    fresh = sign_in(patient.user, password=NEW_PASSWORD)
    assert _me(fresh["access"]) == (200, None)
    event = AuditEvent.objects.get(action="account.password_changed")
    assert (event.actor, event.payload_data["api_tokens_revoked"]) == (patient.user, True)


def test_a_password_set_by_any_other_path_revokes_the_tokens_too(patient: Patient, sign_in: SignIn) -> None:
    """changepassword, the admin's form and a shell all end in set_password() and save()."""
    old = sign_in(patient.user)
    user = User.objects.get(pk=patient.user.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert _me(old["access"]) == (401, "token_revoked")


def test_a_stale_copy_of_the_user_saved_later_does_not_bring_revoked_tokens_back(
    patient: Patient, sign_in: SignIn
) -> None:
    old = sign_in(patient.user)
    stale = User.objects.get(pk=patient.user.pk)  # loaded before the revocation
    User.objects.get(pk=patient.user.pk).tokens_revoke()
    stale.first_name = "Renamed"
    stale.save()  # a full save of the old generation would resurrect the token
    assert _me(old["access"]) == (401, "token_revoked")


def test_deactivation_revokes_the_tokens_for_good(patient: Patient, sign_in: SignIn) -> None:
    old = sign_in(patient.user)
    user = User.objects.get(pk=patient.user.pk)
    user.is_active = False
    user.save()
    assert _me(old["access"]) == (401, "token_revoked")
    user.is_active = True
    user.save()
    # Reactivated: the account signs in again, but nothing issued before the deactivation comes back.
    assert _me(old["access"]) == (401, "token_revoked")
    assert _refresh(old["refresh"])[0] == 401
    assert _me(sign_in(patient.user)["access"]) == (200, None)


def test_a_signature_lockout_revokes_the_tokens_and_they_stay_revoked_after_it(
    patient: Patient, clinician: User, sign_in: SignIn, settings: Any
) -> None:
    settings.SIGNATURE_MAX_FAILURES = 2
    old = sign_in(clinician)
    assert old["status"] == 200
    for _ in range(2):
        with pytest.raises(SignatureRefused):
            autonomy_bounds_set(actor=clinician, patient=patient, requested=BOUNDS, password="wrong")
    # A clinician's token reaches no patient endpoint (403), but authentication is what refuses it now.
    assert _me(old["access"]) == (401, "token_revoked")
    User.objects.filter(pk=clinician.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert _me(old["access"]) == (401, "token_revoked")
    assert _refresh(old["refresh"])[0] == 401
    assert sign_in(clinician)["status"] == 200
    locked = AuditEvent.objects.get(action="account.locked")
    assert locked.payload_data["api_tokens_revoked"] is True


def test_a_sign_in_lockout_answers_account_locked_and_revokes_the_tokens(
    patient: Patient, sign_in: SignIn, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    old = sign_in(patient.user)
    assert sign_in(patient.user, password="guess one")["code"] == "invalid_credentials"
    assert sign_in(patient.user, password="guess two")["code"] == "invalid_credentials"
    third = sign_in(patient.user, password="guess three")
    assert third["status"] == 429 and third["code"] == "account_locked"
    assert int(third["retry_after"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    # Locked: even the right password is refused, with the same answer, and the old tokens are dead.
    right = sign_in(patient.user)
    assert (right["status"], right["code"], "access" in right) == (429, "account_locked", False)
    assert set(right) >= {"code", "message", "fields"}
    assert _me(old["access"]) == (401, "token_revoked")
    # One ledger event for the lock, however many attempts are made while it lasts.
    sign_in(patient.user, password="guess four")
    locks = AuditEvent.objects.filter(action="account.locked")
    assert locks.count() == 1
    assert locks.get().payload_data["system_reason"] == "repeated_sign_in_failures"


def test_refresh_tokens_rotate_and_a_spent_one_ends_the_whole_sign_in(patient: Patient, sign_in: SignIn) -> None:
    first = sign_in(patient.user)
    status, second = _refresh(first["refresh"])
    assert status == 200 and second["refresh"] != first["refresh"]
    assert _me(second["access"]) == (200, None)
    # The spent token again: a copy is in someone else's hands. The whole sign-in ends, the newest tokens with it.
    status, reused = _refresh(first["refresh"])
    assert (status, reused["code"]) == (401, "token_revoked")
    assert _refresh(second["refresh"])[1]["code"] == "token_revoked"
    assert _me(second["access"]) == (401, "token_revoked")
    assert _me(first["access"]) == (401, "token_revoked")
    refused = AuditEvent.objects.get(action="auth.token_reuse_refused")
    assert (refused.actor, refused.outcome) == (patient.user, "denied")
    # Another sign-in of the same patient (a second phone) is not touched.
    assert _me(sign_in(patient.user)["access"]) == (200, None)


def test_rotation_never_extends_a_sign_in(patient: Patient, sign_in: SignIn) -> None:
    first = sign_in(patient.user)
    _, second = _refresh(first["refresh"])
    original, rotated = RefreshToken(first["refresh"], verify=False), RefreshToken(second["refresh"], verify=False)
    assert rotated["exp"] == original["exp"]
    assert rotated["exp"] - original["iat"] == int(django_settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds())


def test_a_token_minted_for_tools_is_revocable_like_any_other(patient: Patient) -> None:
    """The benches mint tokens without the password (access_token_issue); revocation still reaches them."""
    token = access_token_issue(patient.user, lifetime=timedelta(hours=3))
    assert _me(token) == (200, None)
    User.objects.get(pk=patient.user.pk).tokens_revoke()
    assert _me(token) == (401, "token_revoked")


def test_access_tokens_are_short_lived(patient: Patient, sign_in: SignIn) -> None:
    access = AccessToken(sign_in(patient.user)["access"])
    assert access["exp"] - access["iat"] <= 15 * 60


def test_logout_revokes_the_refresh_token_given_and_the_access_tokens_of_its_sign_in(
    patient: Patient, sign_in: SignIn
) -> None:
    phone, tablet = sign_in(patient.user), sign_in(patient.user)
    response = APIClient().post("/api/v1/auth/logout/", {"refresh": phone["refresh"]}, format="json")
    assert response.status_code == 204
    assert _refresh(phone["refresh"])[1]["code"] == "token_revoked"
    assert _me(phone["access"]) == (401, "token_revoked")
    assert _me(tablet["access"]) == (200, None)  # only the sign-in that was given ends
    # Signing out twice is no error and records one event.
    assert APIClient().post("/api/v1/auth/logout/", {"refresh": phone["refresh"]}, format="json").status_code == 204
    assert list(AuditEvent.objects.filter(action="auth.signed_out").values_list("actor", flat=True)) == [
        patient.user.pk
    ]


def test_logout_with_the_bearer_access_token_alone_ends_that_sign_in(patient: Patient, sign_in: SignIn) -> None:
    tokens = sign_in(patient.user)
    assert bearer(tokens["access"]).post("/api/v1/auth/logout/", {}, format="json").status_code == 204
    assert _me(tokens["access"]) == (401, "token_revoked")
    assert _refresh(tokens["refresh"])[1]["code"] == "token_revoked"


def test_logout_with_no_token_is_refused_in_the_error_shape(db: None) -> None:
    response = APIClient().post("/api/v1/auth/logout/", {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_expired_and_garbage_tokens_get_distinct_codes_in_the_one_error_shape(
    patient: Patient, sign_in: SignIn
) -> None:
    valid = AccessToken(sign_in(patient.user)["access"])
    expired = AccessToken(str(valid), verify=False)
    expired.set_exp(from_time=timezone.now() - timedelta(hours=1))
    forged = AccessToken(str(valid), verify=False)
    forged["user_id"] = str(patient.user.pk + 1000)
    forged_text = str(forged)[:-4] + ("AAAA" if not str(forged).endswith("AAAA") else "BBBB")
    cases = {
        str(expired): "token_expired",
        "not-a-token": "token_invalid",
        forged_text: "token_invalid",  # a bad signature
        sign_in(patient.user)["refresh"]: "token_invalid",  # a refresh token is no access token
        str(AccessToken.for_user(patient.user)): "token_invalid",  # simplejwt's own: no generation, no family
    }
    for raw, code in cases.items():
        response = bearer(raw).get("/api/v1/me/")
        assert response.status_code == 401, raw
        assert response.json() == {"code": code, "message": response.json()["message"], "fields": {}}
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert _refresh(str(valid))[1]["code"] == "token_invalid"  # an access token cannot be refreshed


def test_an_expired_refresh_token_answers_token_expired(patient: Patient, sign_in: SignIn) -> None:
    refresh = RefreshToken(sign_in(patient.user)["refresh"], verify=False)
    refresh.set_exp(from_time=timezone.now() - timedelta(days=30))
    status, body = _refresh(str(refresh))
    assert (status, body["code"]) == (401, "token_expired")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_with_one_token_never_both_get_a_live_pair(patient: Patient, sign_in: SignIn) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is PostgreSQL's; SQLite serialises every writer")
    tokens = sign_in(patient.user)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def refresh() -> None:
        barrier.wait()
        try:
            pair = token_pair_refresh(tokens["refresh"])
            outcomes.append(pair.access)
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(o) > 40 for o in outcomes) == [False, True]  # one pair, one refusal
    winner = next(o for o in outcomes if len(o) > 40)
    # The refusal was a reuse, so even the winner's pair is dead: nobody holds a live copy of a spent token.
    assert _me(winner) == (401, "token_revoked")


def test_the_daily_purge_deletes_only_records_of_expired_tokens(patient: Patient, sign_in: SignIn) -> None:
    old, live = sign_in(patient.user), sign_in(patient.user)
    _, rotated = _refresh(old["refresh"])  # the spent token is blacklisted
    assert BlacklistedToken.objects.count() == 1
    spent_jti = RefreshToken(old["refresh"], verify=False)["jti"]
    OutstandingToken.objects.filter(jti__in=[spent_jti, RefreshToken(rotated["refresh"])["jti"]]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tokens_expired_purge_task.delay().get() == 3  # two token records and the blacklist entry
    assert BlacklistedToken.objects.count() == 0
    assert _refresh(live["refresh"])[0] == 200  # a live sign-in keeps working
