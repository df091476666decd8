from __future__ import annotations

from collections.abc import Callable

from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services import evaluation_run
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
    readings_add(patient, [(121, 77)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.status == "delivered"
    response = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{rec.pk}/respond/", {"response": "decline"}, format="json"
    )
    assert response.json()["status"] == "declined"
    again = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{rec.pk}/respond/", {"response": "acknowledge"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
