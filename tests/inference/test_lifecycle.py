from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import joblib
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.core.errors import InvalidTransition, ValidationFailed
from clinaiops.core.models import User
from inference.artifacts import ArtifactTampered, artifact_get, artifact_path, artifact_put
from inference.feature_source import feature_window_load, features_for_patient
from inference.features import FEATURE_NAMES, feature_vector
from inference.models import ApprovalState, ModelVersion, TrainingLabel
from inference.runtime import model_score
from inference.selectors import serving_version, serving_version_at, snapshot_load
from inference.services.datasets import dataset_snapshot_create, label_record
from inference.services.registry import model_version_transition
from inference.services.serving import serving_pointer_set
from inference.services.training import training_run_create, training_run_execute
from inference.training import onnx_parity, onnx_temperature
from tests.conftest import model_approve, readings_add


def test_onnx_and_sklearn_probabilities_agree_within_1e_5(trained_model: ModelVersion) -> None:
    pipeline = joblib.load(io.BytesIO(artifact_get(trained_model.sklearn_sha256, suffix=".joblib")))
    rows = snapshot_load(trained_model.training_run.snapshot)
    X = np.asarray([[row["features"][n] for n in FEATURE_NAMES] for row in rows], dtype=np.float32)
    onnx_bytes = artifact_get(trained_model.sha256, suffix=".onnx")
    parity = onnx_parity(pipeline, onnx_bytes, X, temperature=trained_model.metrics["temperature"])
    assert onnx_temperature(onnx_bytes) == pytest.approx(trained_model.metrics["temperature"], rel=1e-6)
    assert parity <= 1e-5
    assert trained_model.gates["onnx_parity"]["passed"]
    assert trained_model.approval_state == ApprovalState.VALIDATED


def test_model_version_is_addressed_by_its_onnx_hash(trained_model: ModelVersion) -> None:
    assert hashlib.sha256(artifact_get(trained_model.sha256, suffix=".onnx")).hexdigest() == trained_model.sha256


def test_training_run_records_lineage(trained_model: ModelVersion) -> None:
    run = trained_model.training_run
    assert run.seed == 11
    assert run.params["C"] == 1.0
    assert {"scikit-learn", "onnxruntime", "skl2onnx", "numpy"} <= set(run.library_versions)
    assert run.code_version
    assert run.snapshot.sha256 and run.snapshot.quality_passed


def test_same_snapshot_params_and_seed_give_identical_predictions(
    trained_model: ModelVersion, ml_engineer: User
) -> None:
    again = training_run_execute(
        run_id=training_run_create(actor=ml_engineer, snapshot=trained_model.training_run.snapshot, seed=11).pk
    )
    # Identical ONNX bytes → the same content address → the registry returns the same version.
    assert again.status == "succeeded"
    rows = snapshot_load(trained_model.training_run.snapshot)[:50]
    for row in rows:
        assert model_score(trained_model, row["features"]) == model_score(trained_model, row["features"])
    assert ModelVersion.objects.filter(sha256=trained_model.sha256).count() == 1


def test_tampered_artifact_is_refused(trained_model: ModelVersion) -> None:
    path = artifact_path(trained_model.sha256, suffix=".onnx")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactTampered):
        model_score(trained_model, dict.fromkeys(FEATURE_NAMES, 1.0))


def test_approval_transitions_outside_the_map_are_refused(trained_model: ModelVersion) -> None:
    with pytest.raises(InvalidTransition, match="cannot become registered"):
        model_version_transition(version=trained_model, to_state=ApprovalState.REGISTERED, actor=None, reason="test")
    model_version_transition(version=trained_model, to_state=ApprovalState.REJECTED, actor=None, reason="test")
    with pytest.raises(InvalidTransition):
        model_version_transition(version=trained_model, to_state=ApprovalState.APPROVED, actor=None, reason="test")


def test_rejected_model_cannot_serve(trained_model: ModelVersion, ml_engineer: User) -> None:
    model_version_transition(version=trained_model, to_state=ApprovalState.REJECTED, actor=None, reason="test")
    with pytest.raises(InvalidTransition):
        serving_pointer_set(arm="production", version=trained_model, actor=ml_engineer, reason="test")


def test_pointer_history_answers_which_version_served_when(deployed_model: ModelVersion, ml_engineer: User) -> None:
    before = timezone.now()
    serving_pointer_set(arm="production", version=None, actor=ml_engineer, reason="rollback")
    assert serving_version() is None
    assert serving_version_at(arm="production", at=before) == deployed_model


def test_training_and_serving_compute_the_same_features(patient: Patient) -> None:
    readings_add(patient, [(150, 95), (142, 88), (138, 86), (155, 97), (147, 91), (139, 85)])
    as_of = timezone.now()
    label = label_record(
        patient=patient, as_of=as_of, from_step=patient.current_step, to_step=patient.current_step + 1,
        provenance="clinician", source_ref="test:feature-parity",
    )  # fmt: skip
    assert label is not None
    assert TrainingLabel.objects.get(pk=label.pk).features == features_for_patient(patient=patient, as_of=as_of)
    assert label.label == "increase"


def test_features_ignore_readings_after_the_as_of_time(patient: Patient) -> None:
    readings_add(patient, [(130, 80)] * 4, end=timezone.now() - timedelta(days=1))
    as_of = timezone.now() - timedelta(hours=12)
    before = feature_vector(feature_window_load(patient=patient, as_of=as_of))
    readings_add(patient, [(190, 125)])
    assert feature_vector(feature_window_load(patient=patient, as_of=as_of)) == before


def test_snapshot_with_too_few_rows_fails_its_quality_gate_and_cannot_be_trained_on(
    patient: Patient, ml_engineer: User
) -> None:
    readings_add(patient, [(150, 95)] * 3)
    label_record(
        patient=patient, as_of=timezone.now(), from_step=2, to_step=3, provenance="clinician", source_ref="t:1"
    )
    snapshot = dataset_snapshot_create(actor=ml_engineer)
    assert not snapshot.quality_passed
    with pytest.raises(ValidationFailed) as caught:
        training_run_create(actor=ml_engineer, snapshot=snapshot)
    assert "Failed check: min_rows" in caught.value.fields["snapshot"]


def test_train_and_promote_commands(
    patient: Patient, ml_engineer: User, safety_officer: User, trained_model: ModelVersion
) -> None:
    with pytest.raises(CommandError, match="needs two sign-offs"):
        call_command("promote", trained_model.sha256[:10], actor=ml_engineer.username)
    model_approve(trained_model, ml_engineer, safety_officer)
    call_command("promote", trained_model.sha256[:10], actor=ml_engineer.username)
    assert serving_version() == trained_model
    with pytest.raises(CommandError, match="Only an ML engineer"):
        call_command("promote", trained_model.sha256[:10], actor=patient.user.username)
    with pytest.raises(CommandError, match="No model version"):
        call_command("promote", "abcdef123456", actor=ml_engineer.username)


def test_storing_the_same_artifact_again_repairs_a_damaged_file(trained_model: ModelVersion) -> None:
    good = artifact_get(trained_model.sha256, suffix=".onnx")
    path = artifact_path(trained_model.sha256, suffix=".onnx")
    path.write_bytes(b"garbage")
    assert artifact_put(good, suffix=".onnx") == trained_model.sha256
    assert artifact_get(trained_model.sha256, suffix=".onnx") == good
