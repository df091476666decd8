from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from clinaiops.care.models import Patient, RegimenChange
from clinaiops.core.models import User
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.review import review_decide
from inference.models import ModelVersion
from tests.conftest import readings_add


def _recommendation(patient: Patient) -> Recommendation:
    readings_add(patient, [(150, 92)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None
    return rec


def test_another_patients_recommendation_answers_404(
    patient: Patient, other_patient: Patient, deployed_model: ModelVersion, api_client_for: Callable[[User], APIClient]
) -> None:
    theirs = _recommendation(other_patient)
    client = api_client_for(patient.user)
    response = client.get(f"/api/v1/recommendations/{theirs.pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (
        client.post(f"/api/v1/recommendations/{theirs.pk}/respond/", {"response": "decline"}, format="json").status_code
        == 404
    )
    assert client.get("/api/v1/recommendations/").json()["count"] == 0


def test_recommendation_records_model_policy_features_and_factors(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    rec = _recommendation(patient)
    assert rec.model_version == deployed_model
    assert rec.arm == "production"
    assert rec.policy.version == 1
    assert set(rec.features) >= {"sbp_mean_7d", "adherence_14d"}
    assert abs(sum(rec.probabilities.values()) - 1) < 1e-5
    assert len(rec.top_factors) == 5
    assert rec.action == "increase"


def test_declining_leaves_the_regimen_unchanged(
    patient: Patient, deployed_model: ModelVersion, api_client_for: Callable[[User], APIClient]
) -> None:
    rec = _recommendation(patient)  # a minor increase, delivered at once
    assert (rec.status, rec.from_step, rec.final_step) == ("delivered", 2, 3)
    response = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{rec.pk}/respond/", {"response": "decline"}, format="json"
    )
    assert response.json()["status"] == "declined"
    patient.refresh_from_db()
    assert patient.current_step == 2
    assert not RegimenChange.objects.filter(patient=patient).exists()
    again = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{rec.pk}/respond/", {"response": "acknowledge"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    patient.refresh_from_db()
    assert patient.current_step == 2


def test_acknowledging_moves_the_regimen_to_the_delivered_step(
    patient: Patient, deployed_model: ModelVersion, api_client_for: Callable[[User], APIClient]
) -> None:
    rec = _recommendation(patient)
    response = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{rec.pk}/respond/", {"response": "acknowledge"}, format="json"
    )
    assert response.json()["status"] == "acknowledged"
    patient.refresh_from_db()
    assert patient.current_step == 3


@pytest.mark.parametrize(
    ("outcome", "to_step", "final_action", "final_step"),
    [("modified", 4, "increase", 4), ("rejected", None, "maintain", 2)],
)
def test_a_decided_recommendation_reports_the_final_step_and_the_proposal_apart(
    patient: Patient,
    clinician: User,
    pending_recommendation: Recommendation,
    api_client_for: Callable[[User], APIClient],
    password: str,
    outcome: str,
    to_step: int | None,
    final_action: str,
    final_step: int,
) -> None:
    client = api_client_for(patient.user)
    waiting = client.get(f"/api/v1/recommendations/{pending_recommendation.pk}/").json()
    assert (waiting["action"], waiting["to_step"], waiting["regimen"]) == (None, None, None)
    assert (waiting["proposal"]["action"], waiting["proposal"]["to_step"]) == ("increase", 3)

    review_decide(
        actor=clinician, recommendation=pending_recommendation, outcome=outcome, to_step=to_step,
        reason="Clinical judgement", password=password,
    )  # fmt: skip
    body = client.get(f"/api/v1/recommendations/{pending_recommendation.pk}/").json()
    assert (body["action"], body["from_step"], body["to_step"]) == (final_action, 2, final_step)
    assert body["regimen"] == regimen_label(final_step)
    assert body["proposal"] == {
        "action": "increase", "to_step": 3, "confidence": pending_recommendation.confidence, "tier": "major",
        "model_version": pending_recommendation.model_version.short_hash,
    }  # fmt: skip
    assert (body["decision"]["outcome"], body["decision"]["to_step"]) == (outcome, final_step)
    listed = client.get("/api/v1/recommendations/").json()["results"][0]
    assert (listed["action"], listed["to_step"]) == (final_action, final_step)
