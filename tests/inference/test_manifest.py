"""Signed manifests: what they cover, and that any edit to the row, the manifest or an artifact is detected."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inference.artifacts import artifact_path
from inference.manifest import manifest_verify, model_signing_key
from inference.models import ImmutableModelVersion, ModelVersion, TrainingRun


def test_a_registered_version_carries_a_signed_manifest_of_its_artifacts_and_lineage(
    trained_model: ModelVersion,
) -> None:
    manifest = trained_model.manifest
    run = trained_model.training_run

    assert manifest_verify(trained_model).ok
    assert manifest["artifacts"] == {
        "onnx_sha256": trained_model.sha256,
        "sklearn_sha256": trained_model.sklearn_sha256,
        "background_sha256": trained_model.background_sha256,
    }
    assert manifest["family"] == "logistic" and manifest["params"] == run.params and manifest["seed"] == 11
    assert manifest["snapshot"]["sha256"] == run.snapshot.sha256
    assert manifest["feature_set_version"] == "bp-features/2"
    assert manifest["feature_names"] == trained_model.feature_names
    assert manifest["classes"] == ["decrease", "maintain", "increase"]
    assert manifest["code_version"] == run.code_version
    assert manifest["library_versions"]["scikit-learn"]
    assert manifest["metrics"] == trained_model.metrics and manifest["gates"] == trained_model.gates
    assert trained_model.manifest_key_id == model_signing_key().key_id


def test_editing_the_stored_manifest_is_detected(trained_model: ModelVersion) -> None:
    edited = json.loads(trained_model.manifest_text)
    edited["gates"]["fairness"]["passed"] = False
    ModelVersion.objects.filter(pk=trained_model.pk).update(manifest_text=json.dumps(edited))

    result = manifest_verify(ModelVersion.objects.get(pk=trained_model.pk))

    assert not result.ok
    assert "manifest signature does not verify" in result.problems
    assert "manifest text does not match its recorded hash" in result.problems


def test_editing_the_gates_on_the_row_is_detected(trained_model: ModelVersion) -> None:
    gates = dict(trained_model.gates)
    gates["calibration"] = {**gates["calibration"], "ece": 0.01}
    ModelVersion.objects.filter(pk=trained_model.pk).update(gates=gates)

    result = manifest_verify(ModelVersion.objects.get(pk=trained_model.pk))

    assert not result.ok
    assert result.problems == ("the stored record differs from its signed manifest in: gates",)


def test_editing_the_training_lineage_is_detected(trained_model: ModelVersion) -> None:
    TrainingRun.objects.filter(pk=trained_model.training_run_id).update(seed=12)
    result = manifest_verify(ModelVersion.objects.get(pk=trained_model.pk))
    assert not result.ok and "seed" in str(result)


@pytest.mark.parametrize(("field", "suffix"), [("sha256", ".onnx"), ("sklearn_sha256", ".joblib")])
def test_a_modified_artifact_file_is_detected(trained_model: ModelVersion, field: str, suffix: str) -> None:
    path = artifact_path(getattr(trained_model, field), suffix=suffix)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))

    result = manifest_verify(trained_model)

    assert not result.ok
    assert any("does not match its hash" in problem for problem in result.problems)


def test_a_manifest_signed_by_an_untrusted_key_is_refused(trained_model: ModelVersion, settings: Any) -> None:
    settings.MODEL_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()  # a different key now signs
    result = manifest_verify(trained_model)
    assert not result.ok and "is not trusted" in str(result)


def test_a_rotated_out_key_stays_trusted_for_verification(trained_model: ModelVersion, settings: Any) -> None:
    old = model_signing_key()
    public = base64.b64encode(old.public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    settings.MODEL_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()
    settings.MODEL_TRUSTED_PUBLIC_KEYS = [f"{old.key_id}:{public}"]
    assert manifest_verify(trained_model).ok


def test_a_registered_version_cannot_be_saved_again(trained_model: ModelVersion) -> None:
    trained_model.metrics = {"balanced_accuracy": 1.0}
    with pytest.raises(ImmutableModelVersion):
        trained_model.save()
    assert ModelVersion.objects.get(pk=trained_model.pk).metrics != {"balanced_accuracy": 1.0}
