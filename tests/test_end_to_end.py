"""The whole loop through the real HTTP API and portal views (issue 2's spine)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import Role, User
from clinaiops.loops.tasks import evaluations_schedule
from inference.models import ModelVersion
from tests.conftest import audit_actions
from tests.factories import PASSWORD, PatientFactory, UserFactory


def _post_readings(client: APIClient, values: list[tuple[int, int]]) -> None:
    now = timezone.now()
    for i, (sbp, dbp) in enumerate(values):
        body = {
            "taken_at": (now - timedelta(hours=10 * i + 1)).isoformat(),
            "systolic": sbp,
            "diastolic": dbp,
            "heart_rate": 68,
            "source": "cuff",
        }
        response = client.post("/api/v1/readings/", body, format="json")
        assert response.status_code == 201, response.content


def test_reading_to_minor_delivery_and_major_review_then_patient_sees_signed_decision(
    patient: Patient,
    care_team: CareTeam,
    clinician: User,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    portal_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    uncontrolled = PatientFactory(
        user=UserFactory(username="pat_high", role=Role.PATIENT), care_team=care_team, code="P-0003", current_step=2
    )
    controlled_api = api_client_for(patient.user)
    uncontrolled_api = api_client_for(uncontrolled.user)

    # Patient–AI loop: readings arrive through the mobile API.
    _post_readings(
        controlled_api, [(121, 76), (118, 74), (124, 78), (120, 75), (119, 73), (122, 77), (117, 74), (123, 76)]
    )
    _post_readings(uncontrolled_api, [(168, 98), (171, 99), (166, 97)])  # too few readings to act alone

    # The scheduler finds both due and evaluates them (eager Celery, on commit).
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluations_schedule.delay().get() == 2

    minor = controlled_api.get("/api/v1/recommendations/").json()["results"]
    assert len(minor) == 1
    assert minor[0]["proposal"]["tier"] == "feedback"  # a maintain with no safety reason (DESIGN §2)
    assert minor[0]["status"] == "delivered"
    assert (minor[0]["action"], minor[0]["proposal"]["action"]) == ("maintain", "maintain")
    assert minor[0]["proposal"]["model_version"] == deployed_model.short_hash
    assert "target" in minor[0]["reason"]

    major = uncontrolled_api.get("/api/v1/recommendations/").json()["results"]
    assert len(major) == 1
    assert (major[0]["proposal"]["tier"], major[0]["status"], major[0]["proposal"]["action"]) == (
        "major", "pending_review", "increase",
    )  # fmt: skip
    assert major[0]["action"] is None  # nothing is asked of the patient until the care team decides
    assert major[0]["decision"] is None
    rec_id = major[0]["id"]

    # Clinician–AI loop: the portal queue, the detail page, a refused then a valid e-signature.
    portal = portal_client_for(clinician)
    queue = portal.get("/queue/")
    assert queue.status_code == 200
    proposals = queue.content.split(b"Overdue follow-ups")[0]  # the follow-ups below list every patient due
    assert b"P-0003" in proposals
    assert b"P-0001" not in proposals  # feedback and minor ones never reach the queue
    detail = portal.get(f"/recommendations/{rec_id}/")
    assert detail.status_code == 200
    assert b"<svg" in detail.content
    assert b"Top factors" in detail.content

    refused = portal.post(
        f"/recommendations/{rec_id}/", {"outcome": "accepted", "reason": "Uncontrolled; titrate.", "password": "wrong"}
    )
    assert refused.status_code == 200
    assert b"password did not match" in refused.content
    assert uncontrolled_api.get(f"/api/v1/recommendations/{rec_id}/").json()["status"] == "pending_review"

    signed = portal.post(
        f"/recommendations/{rec_id}/", {"outcome": "accepted", "reason": "Uncontrolled; titrate.", "password": PASSWORD}
    )
    assert signed.status_code == 302

    # The patient sees the signed decision and acts on it.
    seen = uncontrolled_api.get(f"/api/v1/recommendations/{rec_id}/").json()
    assert seen["status"] == "delivered"
    assert (seen["action"], seen["to_step"]) == ("increase", 3)
    assert seen["decision"]["outcome"] == "accepted"
    assert seen["decision"]["signed_by"] == "Dr Assigned"
    assert seen["decision"]["meaning"] == "approved"
    assert "care team" in seen["reason"]
    acted = uncontrolled_api.post(
        f"/api/v1/recommendations/{rec_id}/respond/", {"response": "acknowledge"}, format="json"
    )
    assert acted.status_code == 200
    assert acted.json()["status"] == "acknowledged"
    uncontrolled.refresh_from_db()
    assert uncontrolled.current_step == 3

    # Every step left an audit event, and the chain verifies.
    actions = audit_actions()
    assert actions.count("reading.ingested") == 11
    for expected in (
        "recommendation.created",
        "recommendation.delivered",
        "recommendation.queued",
        "patient.viewed",
        "signature.refused",
        "signature.created",
        "review.decided",
        "dataset.label_recorded",
        "recommendation.responded",
        "regimen.changed",
    ):
        assert expected in actions, expected
    result = ledger_verify()
    assert result.ok, result.problem
    assert result.events_checked == len(actions)
