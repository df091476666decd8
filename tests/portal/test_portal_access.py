from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add


@pytest.fixture
def pending(pending_recommendation: Recommendation) -> Recommendation:
    return pending_recommendation


def test_unassigned_clinician_gets_404_for_a_recommendation_and_patient(
    pending: Recommendation, unassigned_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(unassigned_clinician)
    assert client.get(f"/recommendations/{pending.pk}/").status_code == 404
    assert client.get(f"/patients/{pending.patient_id}/").status_code == 404
    assert b"P-0001" not in client.get("/queue/").content


def test_unassigned_clinician_cannot_sign_a_decision(
    pending: Recommendation, unassigned_clinician: User, portal_client_for: Callable[[User], Client], password: str
) -> None:
    response = portal_client_for(unassigned_clinician).post(
        f"/recommendations/{pending.pk}/", {"outcome": "accepted", "reason": "x", "password": password}
    )
    assert response.status_code == 404
    pending.refresh_from_db()
    assert pending.status == "pending_review"


@pytest.mark.parametrize("persona", ["ml_engineer", "compliance_officer", "safety_officer"])
def test_non_clinicians_cannot_open_the_review_queue(
    persona: str, request: pytest.FixtureRequest, portal_client_for: Callable[[User], Client]
) -> None:
    user = request.getfixturevalue(persona)
    assert portal_client_for(user).get("/queue/").status_code == 403
    assert "access.denied" in audit_actions()


def test_patient_account_is_turned_away_from_the_portal(
    patient: Patient, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(patient.user)
    assert client.get("/").status_code == 403
    assert client.get("/queue/").status_code == 403


def test_anonymous_is_sent_to_login(db: None) -> None:
    response = Client().get("/queue/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_compliance_officer_sees_and_verifies_the_ledger_but_clinician_cannot(
    pending: Recommendation,
    compliance_officer: User,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = portal_client_for(compliance_officer)
    # Verification is a job (issue 13), not part of the page request; the page shows its last result.
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/compliance/ledger/verify/").status_code == 302
    page = client.get("/audit/")
    assert page.status_code == 200
    assert b"Chain verified" in page.content
    assert portal_client_for(clinician).get("/audit/").status_code == 403


def test_modify_decision_needs_a_step_and_a_reason(
    pending: Recommendation, clinician: User, portal_client_for: Callable[[User], Client], password: str
) -> None:
    client = portal_client_for(clinician)
    response = client.post(
        f"/recommendations/{pending.pk}/", {"outcome": "modified", "reason": "", "password": password}
    )
    assert response.status_code == 200
    assert b"This field is required" in response.content
    response = client.post(
        f"/recommendations/{pending.pk}/",
        {"outcome": "modified", "to_step": "", "reason": "Go gently", "password": password},
    )
    assert b"Choose a step" in response.content
    ok = client.post(
        f"/recommendations/{pending.pk}/",
        {"outcome": "modified", "to_step": "2", "reason": "Recheck adherence first", "password": password},
    )
    assert ok.status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.final_step) == ("delivered", 2)


def test_patient_page_is_an_audited_staff_read(
    patient: Patient, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(140, 90)] * 4)
    response = portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    assert response.status_code == 200
    assert b"<svg" in response.content
    assert "patient.viewed" in audit_actions(object_type="patient", object_id=str(patient.pk))


def test_models_page_lists_versions_and_serving_pointer(
    deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(ml_engineer).get("/models/")
    assert page.status_code == 200
    assert deployed_model.short_hash.encode() in page.content
    assert b"<dt>Production</dt>" in page.content  # the arm, in words


def test_model_page_shows_gates_sign_offs_and_lineage(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(safety_officer).get(f"/models/{deployed_model.pk}/")
    assert page.status_code == 200
    for text in (
        b"ONNX parity",
        b"Fairness",
        b"signature verified",
        b"(Clinical safety officer)",
        b"Lineage",
        deployed_model.sha256.encode(),
    ):
        assert text in page.content, text
    assert portal_client_for(safety_officer).get("/models/999999/").status_code == 404
