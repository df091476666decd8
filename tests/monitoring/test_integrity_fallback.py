"""A model whose artifact fails its hash is refused, raises an alert, and the evaluation falls back to rules
only with everything routed to review (issue 4, "Runtime")."""

from __future__ import annotations

import pytest

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.errors import InvalidTransition, PermissionRefused
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.review import review_decide
from inference.artifacts import artifact_path, artifact_put
from inference.models import ModelVersion, ServingPointerEvent
from inference.monitoring.models import MonitoringAlert, PredictionLog
from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.canary import canary_stage_advance
from inference.runtime import runtime_cache_clear
from inference.selectors import serving_version
from tests.conftest import audit_actions, readings_add
from tests.monitoring.conftest import cohort, deploy, on_canary


def _tamper(version: ModelVersion) -> bytes:
    path = artifact_path(version.sha256, suffix=".onnx")
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    runtime_cache_clear()  # a fresh worker process: the next load re-reads and re-verifies the file
    return original


def _served_arm(patient: Patient) -> str:
    rec = evaluation_run(patient=patient)
    assert rec is not None
    return rec.arm


def test_a_tampered_production_model_falls_back_to_rules_only_and_everything_goes_to_review(
    patient: Patient, deployed_model: ModelVersion, clinician: User, password: str
) -> None:
    _tamper(deployed_model)
    readings_add(patient, [(121, 77)] * 8)  # would be a confident, minor "maintain" with a working model
    rec = evaluation_run(patient=patient)
    assert rec is not None
    assert (rec.arm, rec.tier, rec.status, rec.tier_reasons) == ("rules_only", "major", "pending_review", ["no_model"])
    assert (rec.action, rec.to_step, rec.confidence, rec.probabilities, rec.top_factors) == (
        "maintain", rec.from_step, 0.0, {}, [],
    )  # fmt: skip
    assert rec.model_version == deployed_model  # the refused version, recorded with the rules-only arm
    assert not PredictionLog.objects.exists()  # no model output exists to monitor
    alert = MonitoringAlert.objects.get()
    assert (alert.kind, alert.status, alert.model_version, alert.details["error"]) == (
        "model_integrity", "open", deployed_model, "ArtifactTampered",
    )  # fmt: skip
    assert "alert.opened" in audit_actions(object_type="monitoring_alert")
    assert audit_actions(object_type="recommendation", object_id=str(rec.pk)) == [
        "recommendation.created", "recommendation.queued",
    ]  # fmt: skip
    # A clinician decides; the decision is delivered and becomes a label as usual.
    decision = review_decide(
        actor=clinician, recommendation=rec, outcome="accepted", reason="Readings at target.", password=password
    )
    assert decision.to_step == rec.from_step


def test_the_version_stays_held_until_an_engineer_restores_it_and_acknowledges(
    care_team: CareTeam, patient: Patient, deployed_model: ModelVersion, ml_engineer: User, clinician: User
) -> None:
    original = _tamper(deployed_model)
    readings_add(patient, [(150, 92)] * 8)
    assert _served_arm(patient) == "rules_only"
    [other] = cohort(care_team, 1)
    readings_add(other, [(150, 92)] * 8)
    assert _served_arm(other) == "rules_only"
    alert = MonitoringAlert.objects.get()
    assert alert.occurrences == 2  # pages once, counts the rest
    assert audit_actions(object_type="monitoring_alert") == ["alert.opened"]

    with pytest.raises(InvalidTransition, match="still fail their hash"):
        monitoring_alert_acknowledge(actor=ml_engineer, alert_id=alert.pk)
    with pytest.raises(PermissionRefused):
        monitoring_alert_acknowledge(actor=clinician, alert_id=alert.pk)

    artifact_put(original, suffix=".onnx")  # the engineer restores the artifact from the registry's copy
    [third] = cohort(care_team, 1)
    readings_add(third, [(150, 92)] * 8)
    assert _served_arm(third) == "rules_only"  # still held

    monitoring_alert_acknowledge(actor=ml_engineer, alert_id=alert.pk)
    [fourth] = cohort(care_team, 1)
    readings_add(fourth, [(150, 92)] * 8)
    rec = evaluation_run(patient=fourth)
    assert rec is not None and (rec.arm, rec.model_version) == ("production", deployed_model)
    assert audit_actions(object_type="monitoring_alert", outcome="success") == ["alert.opened", "alert.acknowledged"]
    assert audit_actions(object_type="monitoring_alert", outcome="denied") == ["alert.acknowledged"] * 2


def test_a_missing_artifact_is_treated_like_a_tampered_one(patient: Patient, deployed_model: ModelVersion) -> None:
    artifact_path(deployed_model.sha256, suffix=".onnx").unlink()
    runtime_cache_clear()
    readings_add(patient, [(150, 92)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.arm == "rules_only"
    assert MonitoringAlert.objects.get().details["error"] == "ArtifactMissing"


def test_a_tampered_canary_is_rolled_back_and_its_patient_is_reviewed(
    care_team: CareTeam, deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    for _ in range(3):
        canary_stage_advance(actor=ml_engineer)  # 100 %: every patient is on the canary
    _tamper(candidate_model)
    [first, second] = cohort(care_team, 2)
    assert on_canary(first, candidate_model, 100)
    readings_add(first, [(150, 92)] * 8)
    rec = evaluation_run(patient=first)
    assert rec is not None and (rec.arm, rec.model_version, rec.tier) == ("rules_only", candidate_model, "major")
    assert serving_version(arm="canary") is None
    rollback = ServingPointerEvent.objects.filter(arm="canary").latest("set_at")
    assert (rollback.is_rollback, rollback.note) == (True, "model_integrity_failure")
    readings_add(second, [(150, 92)] * 8)
    after = evaluation_run(patient=second)
    assert after is not None and (after.arm, after.model_version) == ("production", deployed_model)
