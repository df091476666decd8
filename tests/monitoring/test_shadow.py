"""The shadow arm scores beside the served arm and is logged, never shown."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client
from rest_framework.test import APIClient

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from inference.artifacts import artifact_path
from inference.models import ModelVersion
from inference.monitoring.models import MonitoringAlert, PredictionLog, ShadowScore
from inference.monitoring.selectors import shadow_agreement
from tests.conftest import readings_add
from tests.monitoring.conftest import cohort, deploy


def test_shadow_scores_every_evaluation_and_the_served_proposal_is_unchanged(
    care_team: CareTeam, deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("shadow", candidate_model, ml_engineer)
    patients = cohort(care_team, 4)
    differed = 0
    for patient, sbp in zip(patients, (118, 134, 152, 171), strict=True):
        readings_add(patient, [(sbp, 85)] * 8)
        rec = evaluation_run(patient=patient)
        assert rec is not None
        assert (rec.arm, rec.model_version) == ("production", deployed_model)
        shadow = ShadowScore.objects.get(recommendation_id=rec.pk)
        assert shadow.model_version == candidate_model and shadow.served_version == deployed_model
        assert shadow.served_action == rec.action
        assert abs(sum(shadow.probabilities.values()) - 1) < 1e-5
        differed += shadow.probabilities != rec.probabilities
        assert shadow.agreed == (shadow.action == rec.action)
    assert differed, "a different model really scored them (both may be certain on the clearest cases)"
    [agreement] = shadow_agreement()
    assert (agreement.version, agreement.served_arm, agreement.scored) == (candidate_model, "production", 4)
    assert agreement.agreed == ShadowScore.objects.filter(agreed=True).count()
    assert sum(sum(row) for _, row in agreement.matrix) == 4


def test_shadow_output_never_reaches_the_patient_api_or_the_clinician_page(
    patient: Patient,
    deployed_model: ModelVersion,
    candidate_model: ModelVersion,
    ml_engineer: User,
    clinician: User,
    api_client_for: Callable[[User], APIClient],
    portal_client_for: Callable[[User], Client],
) -> None:
    deploy("shadow", candidate_model, ml_engineer)
    readings_add(patient, [(168, 99)] * 3)
    rec = evaluation_run(patient=patient)
    assert rec is not None and ShadowScore.objects.filter(recommendation_id=rec.pk).exists()
    api = api_client_for(patient.user).get(f"/api/v1/recommendations/{rec.pk}/").content.decode()
    page = portal_client_for(clinician).get(f"/recommendations/{rec.pk}/").content.decode()
    for shown in (api, page):
        assert candidate_model.short_hash not in shown
        assert "shadow" not in shown.lower()


def test_a_shadow_whose_artifact_fails_its_hash_alerts_but_never_stops_the_served_arm(
    patient: Patient, deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("shadow", candidate_model, ml_engineer)
    path = artifact_path(candidate_model.sha256, suffix=".onnx")
    path.write_bytes(path.read_bytes() + b"tampered")
    readings_add(patient, [(150, 92)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.arm == "production"
    assert PredictionLog.objects.filter(recommendation_id=rec.pk).exists()
    assert not ShadowScore.objects.exists()
    alert = MonitoringAlert.objects.get()
    assert (alert.kind, alert.model_version, alert.details["arm"]) == ("model_integrity", candidate_model, "shadow")


def test_no_shadow_score_when_the_shadow_is_the_served_version(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("shadow", deployed_model, ml_engineer)
    readings_add(patient, [(150, 92)] * 8)
    assert evaluation_run(patient=patient) is not None
    assert not ShadowScore.objects.exists()
