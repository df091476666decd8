"""The model that serves is the signed one (issue 8 §2), against someone who holds the app's database
credentials and can write to ARTIFACT_ROOT, but holds no model signing key.

Every attack here goes through raw SQL and plain file writes, as that attacker would, and is refused: the
evaluation falls back to rules only, the model_integrity alert opens, and nothing the forged artifact computed
reaches a patient."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from datetime import UTC
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.db import connection

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.canonical import canonical_bytes, sha256_hex
from clinaiops.core.errors import InvalidTransition, ValidationFailed
from clinaiops.core.models import User
from clinaiops.core.signing import Ed25519Key, public_key_b64, public_key_id
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation import evaluation_run
from governance.models import ModelSignoff
from inference.artifacts import (
    ArtifactTampered,
    ModelNotApproved,
    ModelUntrusted,
    artifact_fingerprint,
    artifact_path,
    artifact_put,
)
from inference.features import FEATURE_NAMES, feature_matrix
from inference.gates.evaluation import model_version_gates_recompute
from inference.manifest import APPROVAL_SUFFIX, approval_trusted, model_trust_problems
from inference.models import CLASS_ORDER, ModelVersion, RunStatus, ServingPointer
from inference.monitoring.models import CanaryState, MonitoringAlert, ShadowScore
from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.drift_reports import drift_report_compute
from inference.runtime import model_explain, model_score, model_verify
from inference.selectors import model_version_for_run, snapshot_load
from inference.services.datasets import SnapshotUntrusted
from inference.services.registry import model_version_transition
from inference.services.serving import serving_pointer_set
from inference.services.training import training_run_create, training_run_execute
from inference.tasks import _model_cache_fresh_in_child, _model_reverify_on_worker_start, model_reverify_task
from inference.training import model_train, onnx_probabilities
from tests.conftest import _synthetic_rows, readings_add
from tests.monitoring.conftest import cohort, cohort_split

AT_TARGET = [(121, 77)] * 8  # the genuine model proposes a confident, minor "maintain": delivered at once


@cache
def _forged() -> Any:
    """The attacker's model: the same features and classes, trained on the fixture's rows with decrease and
    increase swapped. A valid ONNX file that the runtime would happily load."""
    rows = _synthetic_rows(600, 3)
    X = feature_matrix([features for features, _ in rows])
    flipped = {"decrease": "increase", "increase": "decrease", "maintain": "maintain"}
    y = np.asarray([CLASS_ORDER.index(flipped[label]) for _, label in rows], dtype=np.int64)
    return model_train(X, y, family="logistic", params={"C": 1.0, "max_iter": 1000}, seed=11)


def _sql(statement: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _fresh(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.get(pk=version.pk)


def _evaluate(patient: Patient) -> Recommendation:
    readings_add(patient, AT_TARGET)
    rec = evaluation_run(patient=patient)
    assert rec is not None
    return rec


def _refused(rec: Recommendation, version: ModelVersion, error: str) -> None:
    """Rules only, for review, with the refused version named and its integrity alert open."""
    assert (rec.arm, rec.status, rec.tier, rec.tier_reasons) == ("rules_only", "pending_review", "major", ["no_model"])
    assert (rec.action, rec.to_step, rec.probabilities, rec.top_factors) == ("maintain", rec.from_step, {}, [])
    alert = MonitoringAlert.objects.get(kind="model_integrity", status="open")
    assert (alert.model_version_id, alert.details["error"]) == (version.pk, error)


def _flip_byte(path: Any) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --- the forgery of the issue -------------------------------------------------------------------------------


def test_a_forged_onnx_with_the_row_pointed_at_it_is_refused_and_nothing_it_computed_is_delivered(
    care_team: CareTeam, patient: Patient, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    genuine = _evaluate(patient)
    assert (genuine.arm, genuine.status) == ("production", "delivered")  # the cache is warm, as in a live worker
    forged = _forged()
    rows = _synthetic_rows(600, 3)
    lowered = feature_matrix([features for features, label in rows if label == "decrease"])
    forged_says = onnx_probabilities(forged.onnx_bytes, lowered).argmax(axis=1)
    assert (forged_says == CLASS_ORDER.index("increase")).mean() > 0.5  # it raises the dose where it should fall

    forged_sha256 = artifact_put(forged.onnx_bytes, suffix=".onnx")
    _sql("UPDATE inference_modelversion SET sha256 = %s WHERE id = %s", forged_sha256, deployed_model.pk)

    [victim, later] = cohort(care_team, 2)
    rec = _evaluate(victim)
    _refused(rec, deployed_model, "ModelUntrusted")
    assert not Recommendation.objects.filter(status="delivered").exclude(pk=genuine.pk).exists()
    assert not Recommendation.objects.exclude(pk=genuine.pk).exclude(arm="rules_only").exists()
    # The version stays held for everyone, and the alert cannot be acknowledged while the row is forged.
    assert _evaluate(later).arm == "rules_only"
    with pytest.raises(InvalidTransition):
        monitoring_alert_acknowledge(actor=ml_engineer, alert_id=MonitoringAlert.objects.get().pk)


@pytest.mark.parametrize("key_id", ["attacker", "trusted"])
def test_a_manifest_signed_by_an_untrusted_key_is_refused(
    patient: Patient, deployed_model: ModelVersion, settings: Any, key_id: str
) -> None:
    """The attacker re-signs a manifest naming the forged file with a key of their own, under its own id or
    under the trusted key's id. Trust comes from the environment only, so both are refused; the same manifest
    serves once an operator lists that key in MODEL_TRUSTED_PUBLIC_KEYS."""
    forged_sha256 = artifact_put(_forged().onnx_bytes, suffix=".onnx")
    content = json.loads(deployed_model.manifest_text)
    content["artifacts"]["onnx_sha256"] = forged_sha256
    data = canonical_bytes(content)
    private = Ed25519PrivateKey.generate()
    attacker = Ed25519Key(key_id=public_key_id(private.public_key()), private=private)
    named = attacker.key_id if key_id == "attacker" else deployed_model.manifest_key_id
    _sql(
        "UPDATE inference_modelversion SET sha256 = %s, manifest_text = %s, manifest_sha256 = %s, "
        "manifest_signature = %s, manifest_key_id = %s WHERE id = %s",
        forged_sha256, data.decode(), sha256_hex(data), attacker.sign(data), named, deployed_model.pk,
    )  # fmt: skip

    with pytest.raises(ModelUntrusted, match="not trusted" if key_id == "attacker" else "does not verify"):
        model_verify(_fresh(deployed_model))
    _refused(_evaluate(patient), deployed_model, "ModelUntrusted")

    if key_id == "attacker":  # the positive control: trust is exactly what the settings list
        settings.MODEL_TRUSTED_PUBLIC_KEYS = [f"{attacker.key_id}:{public_key_b64(attacker.public)}"]
        assert model_verify(_fresh(deployed_model)).onnx_sha256 == forged_sha256


def test_permuting_the_classes_on_the_row_is_refused(patient: Patient, deployed_model: ModelVersion) -> None:
    """The genuine file, read with decrease and increase swapped, would turn every decrease into an increase."""
    _evaluate(patient)
    _sql(
        "UPDATE inference_modelversion SET classes = %s WHERE id = %s",
        json.dumps(["increase", "maintain", "decrease"]), deployed_model.pk,
    )  # fmt: skip
    with pytest.raises(ModelUntrusted, match="differs from its signed manifest"):
        model_score(_fresh(deployed_model), dict.fromkeys(FEATURE_NAMES, 1.0))


def test_a_version_without_a_signed_manifest_never_serves(patient: Patient, deployed_model: ModelVersion) -> None:
    _sql(
        "UPDATE inference_modelversion SET manifest_text = '', manifest_signature = '' WHERE id = %s", deployed_model.pk
    )
    _refused(_evaluate(patient), deployed_model, "ModelUntrusted")


# --- cached sessions ---------------------------------------------------------------------------------------


def test_a_cached_session_whose_file_is_swapped_after_first_use_is_refused(
    care_team: CareTeam, patient: Patient, deployed_model: ModelVersion, settings: Any
) -> None:
    settings.MODEL_RESTAT_SECONDS = 0  # the next call re-stats at once (by default: at most a second later)
    assert _evaluate(patient).arm == "production"
    artifact_path(deployed_model.sha256, suffix=".onnx").write_bytes(_forged().onnx_bytes)  # same name, other bytes
    [next_patient] = cohort(care_team, 1)
    _refused(_evaluate(next_patient), deployed_model, "ArtifactTampered")


def test_a_swap_the_stat_check_cannot_see_is_caught_when_the_window_ends(
    deployed_model: ModelVersion, settings: Any
) -> None:
    """Between two full verifications a process trusts files whose (inode, size, mtime, ctime) did not change.
    Here the bytes change and the process is made to believe the fingerprint did not (as if the attacker could
    reset ctime): it serves until MODEL_REVERIFY_SECONDS have passed, then the next call hashes again."""
    from inference import runtime

    version = _fresh(deployed_model)
    row = dict.fromkeys(FEATURE_NAMES, 1.0)
    model_score(version, row)
    path = artifact_path(version.sha256, suffix=".onnx")
    _flip_byte(path)
    seen = runtime._verified[version.sha256]
    unseen = tuple(artifact_fingerprint(sha, suffix=suffix) for sha, suffix in seen.manifest.artifacts())
    runtime._verified[version.sha256] = replace(seen, fingerprints=unseen)
    assert set(model_score(version, row)) == set(CLASS_ORDER)  # inside the window: the in-memory session
    settings.MODEL_REVERIFY_SECONDS = 0  # the window has passed
    with pytest.raises(ArtifactTampered):
        model_score(version, row)
    assert version.sha256 not in runtime.runtime_cached_versions()  # the session is gone, not just refused


def test_the_scheduled_reverification_opens_the_alert_and_holds_the_version_everywhere(
    care_team: CareTeam, patient: Patient, deployed_model: ModelVersion
) -> None:
    assert _evaluate(patient).arm == "production"
    _flip_byte(artifact_path(deployed_model.sha256, suffix=".onnx"))
    assert model_reverify_task.delay().get() == {"verified": 0, "refused": [deployed_model.short_hash]}
    alert = MonitoringAlert.objects.get(kind="model_integrity", status="open")
    assert alert.details == {"model_sha256": deployed_model.sha256, "arm": "production", "error": "ArtifactTampered"}
    [next_patient] = cohort(care_team, 1)
    assert _evaluate(next_patient).arm == "rules_only"  # held by the open alert, in every process
    assert MonitoringAlert.objects.get().occurrences == 2


def test_each_worker_start_reverifies_and_each_pool_process_starts_cold(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    from inference import runtime

    model_score(_fresh(deployed_model), dict.fromkeys(FEATURE_NAMES, 1.0))
    assert runtime.runtime_cached_versions() == [deployed_model.sha256]
    _model_cache_fresh_in_child()
    assert runtime.runtime_cached_versions() == []
    _flip_byte(artifact_path(deployed_model.sklearn_sha256, suffix=".joblib"))
    _model_reverify_on_worker_start()
    assert MonitoringAlert.objects.get(kind="model_integrity").details["arm"] == "production"


def test_the_beat_schedule_reverifies_every_five_minutes_by_default() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["model-reverify"]
    assert entry == {"task": "inference.tasks.model_reverify", "schedule": 300.0}
    assert django_settings.MODEL_REVERIFY_SECONDS == 300


# --- the SHAP explainer's artifacts ------------------------------------------------------------------------


def test_a_tampered_shap_artifact_is_refused_before_it_is_unpickled(
    care_team: CareTeam, patient: Patient, deployed_model: ModelVersion, settings: Any
) -> None:
    settings.MODEL_RESTAT_SECONDS = 0
    assert _evaluate(patient).arm == "production"  # explainer loaded and cached
    _flip_byte(artifact_path(deployed_model.sklearn_sha256, suffix=".joblib"))
    with pytest.raises(ArtifactTampered):
        model_explain(_fresh(deployed_model), dict.fromkeys(FEATURE_NAMES, 1.0), "maintain")
    [next_patient] = cohort(care_team, 1)
    _refused(_evaluate(next_patient), deployed_model, "ArtifactTampered")


def test_a_forged_shap_pipeline_named_by_the_row_is_refused(patient: Patient, deployed_model: ModelVersion) -> None:
    """joblib runs code from the file it loads: a pipeline the manifest did not sign is never unpickled."""
    forged = artifact_put(_forged().sklearn_bytes, suffix=".joblib")
    _sql("UPDATE inference_modelversion SET sklearn_sha256 = %s WHERE id = %s", forged, deployed_model.pk)
    _refused(_evaluate(patient), deployed_model, "ModelUntrusted")


# --- dataset snapshots for training, gates and drift -------------------------------------------------------


def _forge_snapshot(version: ModelVersion) -> str:
    """Rewrite the model's training snapshot with flipped labels under a new hash and point its row at it."""
    snapshot = version.training_run.snapshot
    rows = snapshot_load(snapshot)
    flipped = {"decrease": "increase", "increase": "decrease", "maintain": "maintain"}
    forged_rows = [{**row, "label": flipped[row["label"]]} for row in rows]
    forged = artifact_put(
        canonical_bytes({"feature_set_version": snapshot.feature_set_version, "rows": forged_rows}), suffix=".json"
    )
    _sql("UPDATE inference_datasetsnapshot SET sha256 = %s WHERE id = %s", forged, snapshot.pk)
    return forged


def test_a_forged_snapshot_is_refused_for_drift(deployed_model: ModelVersion, ml_engineer: User) -> None:
    _forge_snapshot(deployed_model)
    with pytest.raises(ValidationFailed) as refused:
        drift_report_compute(actor=ml_engineer)
    assert refused.value.code == "reference_snapshot_untrusted"


def test_a_forged_snapshot_is_refused_for_the_gates(deployed_model: ModelVersion) -> None:
    _forge_snapshot(deployed_model)
    with pytest.raises(SnapshotUntrusted, match="differs from the signed manifest"):
        model_version_gates_recompute(_fresh(deployed_model))


def test_a_tampered_snapshot_file_is_refused_for_the_gates(deployed_model: ModelVersion) -> None:
    _flip_byte(artifact_path(deployed_model.training_run.snapshot.sha256, suffix=".json"))
    with pytest.raises(ArtifactTampered):
        model_version_gates_recompute(_fresh(deployed_model))


def test_training_refuses_a_snapshot_without_a_valid_attestation(
    deployed_model: ModelVersion, ml_engineer: User
) -> None:
    """The row now names a forged file of flipped labels: a new model trained on it would learn the attack."""
    snapshot = deployed_model.training_run.snapshot
    _forge_snapshot(deployed_model)
    snapshot.refresh_from_db()
    run = training_run_create(actor=ml_engineer, snapshot=snapshot, params={"C": 0.5}, seed=11)
    with pytest.raises(SnapshotUntrusted, match="no signed attestation"):
        training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "SnapshotUntrusted" in run.message


def test_an_attestation_from_an_untrusted_key_is_refused(deployed_model: ModelVersion, ml_engineer: User) -> None:
    snapshot = deployed_model.training_run.snapshot
    forged = _forge_snapshot(deployed_model)
    snapshot.refresh_from_db()
    content = {"schema": "clinaiops.snapshot-attestation/1", "sha256": forged, "feature_set_version":
               snapshot.feature_set_version, "rows": snapshot.row_count}  # fmt: skip
    private = Ed25519PrivateKey.generate()
    signature = base64.b64encode(private.sign(canonical_bytes(content))).decode()
    for key_id in (public_key_id(private.public_key()), deployed_model.manifest_key_id):
        artifact_path(forged, suffix=".json.sig").write_bytes(
            canonical_bytes({"content": content, "key_id": key_id, "signature": signature})
        )
        run = training_run_create(actor=ml_engineer, snapshot=snapshot, params={"C": 0.5}, seed=11)
        with pytest.raises(SnapshotUntrusted):
            training_run_execute(run_id=run.pk)


def test_the_forged_model_bytes_are_really_a_loadable_model() -> None:
    """Guards the tests above: the forgery is a real model, so a refusal is the runtime's doing."""
    session = ort.InferenceSession(_forged().onnx_bytes, providers=["CPUExecutionProvider"])
    out = session.run(["probabilities"], {"X": np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)})[0]
    assert out.shape == (1, 3)
    assert io.BytesIO(_forged().sklearn_bytes).getbuffer().nbytes > 0


# --- approval: the serving version is the one its two sign-offs approved -----------------------------------


def _promote_by_sql(version: ModelVersion, arm: str = "production") -> None:
    """The attacker with the database credentials: "approved" on the row and a serving pointer, no sign-offs."""
    _sql("UPDATE inference_modelversion SET approval_state = 'approved' WHERE id = %s", version.pk)
    _sql(
        "INSERT INTO inference_servingpointer (arm, model_version_id, since) VALUES (%s, %s, now()) "
        "ON CONFLICT (arm) DO UPDATE SET model_version_id = EXCLUDED.model_version_id, since = EXCLUDED.since",
        arm, version.pk,
    )  # fmt: skip


def _second_validated(deployed_model: ModelVersion, ml_engineer: User) -> ModelVersion:
    """Another version of the same lineage: trained, gated, validated and never signed off."""
    run = training_run_create(
        actor=ml_engineer, snapshot=deployed_model.training_run.snapshot, params={"C": 0.95}, seed=11
    )
    version = model_version_for_run(training_run_execute(run_id=run.pk))
    assert version is not None and version.approval_state == "validated"
    return version


def test_a_validated_version_promoted_by_sql_never_serves_a_patient(
    care_team: CareTeam, patient: Patient, trained_model: ModelVersion, ml_engineer: User
) -> None:
    assert trained_model.approval_state == "validated"
    assert model_trust_problems(trained_model) == []  # its manifest and files are genuine: only approval lacks
    _promote_by_sql(trained_model)
    version = _fresh(trained_model)
    with pytest.raises(ModelNotApproved, match="no signed approval attestation"):
        approval_trusted(version)

    rec = _evaluate(patient)
    _refused(rec, trained_model, "ModelNotApproved")
    assert rec.model_version_id == trained_model.pk
    assert not Recommendation.objects.filter(status="delivered").exists()
    assert not Recommendation.objects.exclude(arm="rules_only").exists()
    # The re-verification and the acknowledgement see the same gap.
    assert model_trust_problems(version) == [
        f"model {version.short_hash} has no signed approval attestation; it cannot serve patients"
    ]
    assert model_reverify_task.delay().get() == {"verified": 0, "refused": [version.short_hash]}
    with pytest.raises(InvalidTransition):
        monitoring_alert_acknowledge(actor=ml_engineer, alert_id=MonitoringAlert.objects.get().pk)
    [later] = cohort(care_team, 1)
    assert _evaluate(later).arm == "rules_only"


def test_a_genuinely_approved_version_carries_its_attestation_and_serves(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    signoffs = list(ModelSignoff.objects.filter(model_version=deployed_model).order_by("pk"))
    content = approval_trusted(deployed_model)
    assert content == {
        "schema": "clinaiops.model-approval/1",
        "model_version_id": deployed_model.pk,
        "onnx_sha256": deployed_model.sha256,
        "manifest_sha256": deployed_model.manifest_sha256,
        "state": "approved",
        "signoffs": [
            {"signoff_id": s.pk, "signature_id": s.signature_id, "role": s.role,
             "signed_at": s.signed_at.astimezone(UTC).isoformat()}
            for s in signoffs
        ],
    }  # fmt: skip
    assert {s["role"] for s in content["signoffs"]} == {"ml_engineer", "safety_officer"}
    assert model_trust_problems(deployed_model) == []
    rec = _evaluate(patient)
    assert (rec.arm, rec.status) == ("production", "delivered")
    assert not MonitoringAlert.objects.exists()


def test_an_approval_attestation_of_another_version_is_refused(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    """The attacker copies the genuine version's attestation beside the unapproved one's file."""
    other = _second_validated(deployed_model, ml_engineer)
    genuine = artifact_path(deployed_model.sha256, suffix=APPROVAL_SUFFIX).read_bytes()
    artifact_path(other.sha256, suffix=APPROVAL_SUFFIX).write_bytes(genuine)
    _promote_by_sql(other)
    with pytest.raises(ModelNotApproved, match="names another version"):
        approval_trusted(_fresh(other))
    _refused(_evaluate(patient), other, "ModelNotApproved")


@pytest.mark.parametrize("key_id", ["attacker", "trusted"])
def test_an_approval_attestation_signed_by_an_untrusted_key_is_refused(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User, settings: Any, key_id: str
) -> None:
    other = _second_validated(deployed_model, ml_engineer)
    content = json.loads(artifact_path(deployed_model.sha256, suffix=APPROVAL_SUFFIX).read_bytes())["content"]
    content.update(model_version_id=other.pk, onnx_sha256=other.sha256, manifest_sha256=other.manifest_sha256)
    private = Ed25519PrivateKey.generate()
    attacker = Ed25519Key(key_id=public_key_id(private.public_key()), private=private)
    named = attacker.key_id if key_id == "attacker" else deployed_model.manifest_key_id
    artifact_path(other.sha256, suffix=APPROVAL_SUFFIX).write_bytes(
        canonical_bytes({"content": content, "key_id": named, "signature": attacker.sign(canonical_bytes(content))})
    )
    _promote_by_sql(other)
    with pytest.raises(ModelNotApproved, match="not trusted" if key_id == "attacker" else "does not verify"):
        approval_trusted(_fresh(other))
    _refused(_evaluate(patient), other, "ModelNotApproved")

    if key_id == "attacker":  # the positive control: the same file is accepted once the settings trust the key
        settings.MODEL_TRUSTED_PUBLIC_KEYS = [f"{attacker.key_id}:{public_key_b64(attacker.public)}"]
        assert approval_trusted(_fresh(other))["onnx_sha256"] == other.sha256


def test_a_canary_promoted_by_sql_is_refused_and_rolled_back(
    care_team: CareTeam, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    other = _second_validated(deployed_model, ml_engineer)
    _promote_by_sql(other, arm="canary")
    [on], [off] = cohort_split(care_team, other, 5, 1)
    _refused(_evaluate(on), other, "ModelNotApproved")
    alert = MonitoringAlert.objects.get(kind="model_integrity", status="open")
    assert alert.details == {"model_sha256": other.sha256, "arm": "canary", "error": "ModelNotApproved"}
    assert _evaluate(off).arm == "production"  # the canary's patients only, and the canary is rolled back
    assert CanaryState.objects.get(model_version=other).status == "rolled_back"
    assert not ServingPointer.objects.filter(arm="canary", model_version=other).exists()
    assert not Recommendation.objects.filter(model_version=other).exclude(arm="rules_only").exists()


def test_a_validated_shadow_still_scores_beside_the_approved_production(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    other = _second_validated(deployed_model, ml_engineer)
    serving_pointer_set(arm="shadow", version=other, actor=ml_engineer, reason="test")
    assert model_trust_problems(other) == []  # no approval needed where no patient sees the output
    rec = _evaluate(patient)
    assert (rec.arm, rec.status) == ("production", "delivered")
    shadow = ShadowScore.objects.get()
    assert (shadow.model_version_id, shadow.served_version_id, shadow.recommendation_id) == (
        other.pk, deployed_model.pk, rec.pk,
    )  # fmt: skip
    assert model_reverify_task.delay().get() == {"verified": 2, "refused": []}
    assert not MonitoringAlert.objects.exists()


def test_retiring_an_approved_version_revokes_its_attestation(deployed_model: ModelVersion) -> None:
    path = artifact_path(deployed_model.sha256, suffix=APPROVAL_SUFFIX)
    assert path.exists()
    model_version_transition(version=deployed_model, to_state="retired", actor=None, reason="test")
    assert not path.exists()
    _sql("UPDATE inference_modelversion SET approval_state = 'approved' WHERE id = %s", deployed_model.pk)
    with pytest.raises(ModelNotApproved, match="no signed approval attestation"):
        approval_trusted(_fresh(deployed_model))
