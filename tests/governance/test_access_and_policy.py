"""Issue 3: account lockout, break-glass, access accounting, denied attempts, policy versions, bounds form."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, BreakGlassGrant, Patient
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from governance.models import ApprovalPolicy
from governance.policy import EffectiveBounds
from governance.services import SignatureRefused, approval_policy_current, autonomy_bounds_set
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD

BOUNDS = EffectiveBounds(
    max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
)


def test_repeated_bad_signature_passwords_lock_the_account(patient: Patient, clinician: User, settings: object) -> None:
    settings.SIGNATURE_MAX_FAILURES = 3  # type: ignore[attr-defined]
    for _ in range(3):
        with pytest.raises(SignatureRefused):
            autonomy_bounds_set(actor=clinician, patient=patient, requested=BOUNDS, password="wrong")
    clinician.refresh_from_db()
    assert clinician.is_locked
    assert "account.locked" in audit_actions()
    # Locked: even the right password cannot sign, and sign-in is refused on both surfaces.
    with pytest.raises(SignatureRefused, match="locked"):
        autonomy_bounds_set(actor=clinician, patient=patient, requested=BOUNDS, password=PASSWORD)
    # The lock-out is its own answer (issue 8 §4): 429 with Retry-After, code account_locked on the API.
    assert Client().post("/login/", {"username": clinician.username, "password": PASSWORD}).status_code == 429
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": clinician.username, "password": PASSWORD}, format="json"
    )
    assert (token.status_code, token.json()["code"]) == (429, "account_locked")
    # The lock expires.
    User.objects.filter(pk=clinician.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert Client().post("/login/", {"username": clinician.username, "password": PASSWORD}).status_code == 302


def test_unassigned_clinician_is_refused_and_the_refusal_is_audited(
    patient: Patient, unassigned_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    assert portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/").status_code == 404
    denied = AuditEvent.objects.get(action="access.denied", object_type="patient", object_id=str(patient.pk))
    assert (denied.actor, denied.outcome) == (unassigned_clinician, "denied")


def test_break_glass_needs_a_reason_grants_an_hour_alerts_safety_and_is_accounted_for(
    patient: Patient,
    unassigned_clinician: User,
    safety_officer: User,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
    api_client_for: Callable[[User], APIClient],
) -> None:
    client = portal_client_for(unassigned_clinician)
    short = client.post("/emergency-access/", {"patient_code": patient.code, "reason": "need"})
    assert b"at least 10 characters" in short.content
    assert not BreakGlassGrant.objects.exists()

    opened = client.post(
        "/emergency-access/", {"patient_code": patient.code.lower(), "reason": "Covering P0 alert overnight"}
    )
    assert opened.status_code == 302
    page = client.get(f"/patients/{patient.pk}/")
    assert page.status_code == 200
    assert b"Emergency (break-glass) access</strong> to patient P-0001 until" in page.content

    alert = Alert.objects.get(patient=patient, kind="break_glass")
    assert alert.priority == "P1"
    assert b"Break-glass access" in portal_client_for(safety_officer).get("/alerts/").content

    accounting = portal_client_for(compliance_officer).get(f"/compliance/accounting/?code={patient.code}")
    assert b"Covering P0 alert overnight" in accounting.content
    assert b"emergency (break-glass) access" in accounting.content
    log = api_client_for(patient.user).get("/api/v1/me/access-log/").json()["results"]
    assert {"emergency (break-glass) access", "viewed the record"} <= {entry["action"] for entry in log}
    assert any(entry["why"] == "Covering P0 alert overnight" for entry in log)

    BreakGlassGrant.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert client.get(f"/patients/{patient.pk}/").status_code == 404


def test_break_glass_is_refused_for_unknown_codes_and_non_clinicians(
    patient: Patient, unassigned_clinician: User, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    unknown = portal_client_for(unassigned_clinician).post(
        "/emergency-access/", {"patient_code": "P-9999", "reason": "Covering an alert tonight"}
    )
    assert b"Unknown patient code" in unknown.content
    assert portal_client_for(ml_engineer).get("/emergency-access/").status_code == 403


def test_patient_access_log_shows_only_their_own_record(
    patient: Patient,
    other_patient: Patient,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    api_client_for: Callable[[User], APIClient],
) -> None:
    portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    own = api_client_for(patient.user).get("/api/v1/me/access-log/").json()["results"]
    assert [(e["who"], e["action"]) for e in own] == [("Dr Assigned", "viewed the record")]
    assert api_client_for(other_patient.user).get("/api/v1/me/access-log/").json()["results"] == []


def test_another_patients_recommendation_request_is_audited_as_denied(
    patient: Patient, other_patient: Patient, deployed_model: ModelVersion, api_client_for: Callable[[User], APIClient]
) -> None:
    readings_add(other_patient, [(150, 92)] * 8)
    theirs = evaluation_run(patient=other_patient)
    assert theirs is not None
    assert api_client_for(patient.user).get(f"/api/v1/recommendations/{theirs.pk}/").status_code == 404
    denied = AuditEvent.objects.get(action="access.denied", object_type="recommendation")
    assert (denied.object_id, denied.actor) == (str(theirs.pk), patient.user)


def _policy_post(client: Client, **changes: object) -> object:
    current = approval_policy_current()
    from governance.services import POLICY_FIELDS

    body = {name: getattr(current, name) for name in POLICY_FIELDS}
    body["reason"] = "A change of the test"  # issue 11: the portal asks why
    body.update(changes)
    return client.post("/governance/policy/", body)


def test_safety_officer_signs_a_new_policy_version_and_new_recommendations_use_it(
    patient: Patient, safety_officer: User, deployed_model: ModelVersion, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(safety_officer)
    bad = _policy_post(client, min_confidence=1.5, password=PASSWORD)
    assert b"Must be between 0.5 and 0.99" in bad.content
    ok = _policy_post(client, min_confidence=0.9, password=PASSWORD)
    assert ok.status_code == 302
    policy = approval_policy_current()
    assert (policy.version, policy.min_confidence) == (2, 0.9)
    assert policy.signature is not None and policy.signature.printed_name == safety_officer.signature_name
    assert ApprovalPolicy.objects.get(version=1).min_confidence == 0.8  # never edited in place
    readings_add(patient, [(150, 92)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.policy.version == 2


def test_only_a_safety_officer_can_change_the_policy(
    ml_engineer: User, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    assert portal_client_for(ml_engineer).get("/governance/policy/").status_code == 200
    assert _policy_post(portal_client_for(ml_engineer), min_confidence=0.9, password=PASSWORD).status_code == 403  # type: ignore[attr-defined]
    assert approval_policy_current().version == 1
    assert "access.denied" in audit_actions()


def test_assigned_clinician_sets_bounds_in_the_portal_and_wider_ones_are_refused(
    patient: Patient, clinician: User, unassigned_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(clinician)
    body = {"action": "bounds", "autonomy_enabled": "on", "max_step_change": 1, "min_step": 1, "max_step": 4,
            "min_confidence": 0.9, "min_readings": 8, "password": PASSWORD}  # fmt: skip
    assert client.post(f"/patients/{patient.pk}/", body).status_code == 302
    assert patient.autonomy_bounds.get().version == 1
    wide = client.post(f"/patients/{patient.pk}/", {**body, "max_step_change": 2})
    assert b"The global policy allows at most 1 step(s)." in wide.content
    assert patient.autonomy_bounds.count() == 1
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    signature = patient.autonomy_bounds.get().signature
    # The history row of v1: its bounds and the signature's manifestation (name — meaning — UTC time).
    assert f"<td>v1</td><td>1</td><td>1–4</td><td>0.9</td><td>{signature.manifestation}</td>" in page
    assert "Dr Assigned — approved — " in signature.manifestation
    assert portal_client_for(unassigned_clinician).post(f"/patients/{patient.pk}/", body).status_code == 404


def test_repeated_failed_sign_ins_lock_the_username_on_portal_and_api(clinician: User, settings: object) -> None:
    settings.AXES_FAILURE_LIMIT = 3  # type: ignore[attr-defined]
    for _ in range(3):
        Client().post("/login/", {"username": clinician.username, "password": "guess"})
    portal = Client().post("/login/", {"username": clinician.username, "password": PASSWORD})
    assert portal.status_code == 429
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": clinician.username, "password": PASSWORD}, format="json"
    )
    assert token.status_code in {401, 403, 429}
    assert "access" not in token.json()
