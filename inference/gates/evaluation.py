"""Running the gates for a candidate: gather the evidence (its validation rows, the production model, the
change-control plan, the bounds in settings), then let each gate module judge it.

Every gate is judged on the artifact that would serve: the ONNX model's probabilities on the candidate's own
validation rows (the seeded split recorded in its manifest). Reads only: call it outside any transaction (it
takes seconds, and the audit ledger serializes writers).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.utils import timezone

from inference.artifacts import ArtifactMissing, ArtifactTampered, artifact_get
from inference.calibration import multiclass_metrics
from inference.fairness import FairnessBounds
from inference.gates.calibration import calibration_gate
from inference.gates.change_control import ChangeControlTerms, change_control_gate
from inference.gates.data_quality import data_quality_gate
from inference.gates.fairness import SENSITIVE_ATTRIBUTES, fairness_gate
from inference.gates.non_inferiority import (
    HeldOutRescore,
    NonInferiorityGateResult,
    RescoreFailed,
    held_out_positions,
    held_out_rescore,
    non_inferiority_gate,
)
from inference.gates.onnx_parity import onnx_parity_gate
from inference.gates.outcome import GateOutcome
from inference.manifest import manifest_trusted
from inference.models import CLASS_ORDER, ModelVersion, TrainingRun
from inference.selectors import SnapshotRow, change_control_plan_current, serving_version
from inference.services.datasets import model_snapshot_rows, snapshot_rows_attested
from inference.training import (
    PARITY_TOLERANCE,
    onnx_parity,
    onnx_probabilities,
    onnx_temperature,
    train_validation_split,
)


def fairness_bounds() -> FairnessBounds:
    return FairnessBounds(
        max_equalized_odds_difference=float(settings.MODEL_GATE_FAIRNESS_MAX_EOD),
        max_demographic_parity_difference=float(settings.MODEL_GATE_FAIRNESS_MAX_DPD),
        min_group_ratio=float(settings.MODEL_GATE_FAIRNESS_MIN_RATIO),
        min_group_size=int(settings.MODEL_GATE_FAIRNESS_MIN_GROUP),
        min_rate_rows=int(settings.MODEL_GATE_FAIRNESS_MIN_RATE_ROWS),
        parity_judged=bool(settings.MODEL_GATE_FAIRNESS_PARITY_JUDGED),
    )


def gates_evaluate(
    *,
    run: TrainingRun,
    feature_names: Sequence[str],
    onnx_bytes: bytes,
    sklearn_bytes: bytes,
    candidate_sha256: str,
    rows: list[SnapshotRow] | None = None,
) -> GateOutcome:
    """Run every gate for a candidate built by `run`."""
    # joblib unpickles the sklearn pipeline, which imports scikit-learn: paid only when a candidate is gated.
    import joblib

    rows = rows if rows is not None else snapshot_rows_attested(run.snapshot)
    X = _matrix(rows, feature_names)
    y = np.asarray([CLASS_ORDER.index(row["label"]) for row in rows], dtype=np.int64)
    _, val_idx = train_validation_split(len(rows), run.seed)
    proba = _probabilities(onnx_bytes, X[val_idx])
    y_val = y[val_idx]
    candidate_metrics = multiclass_metrics(proba, y_val)
    snapshot = run.snapshot

    quality = data_quality_gate(
        snapshot_sha256=snapshot.sha256,
        quality_passed=snapshot.quality_passed,
        checks=snapshot.quality_report.get("checks", {}),
    )
    parity = onnx_parity_gate(
        # The temperature is read from the graph: the parity check then proves that the graph's calibration step
        # and the rest of it compute what the fitted pipeline with that temperature computes.
        max_abs_diff=onnx_parity(
            joblib.load(io.BytesIO(sklearn_bytes)), onnx_bytes, X, temperature=onnx_temperature(onnx_bytes)
        ),
        tolerance=PARITY_TOLERANCE,
        rows=len(rows),
    )
    inferiority = _non_inferiority(
        run=run, rows=rows, val_idx=val_idx, y=y, candidate_metrics=candidate_metrics, candidate_proba=proba,
        candidate_sha256=candidate_sha256,
    )  # fmt: skip
    calibration = calibration_gate(proba, y_val, max_ece=float(settings.MODEL_GATE_MAX_ECE))
    validation_rows = [rows[i] for i in val_idx]
    fairness = fairness_gate(
        y_true=[CLASS_ORDER[i] for i in y_val],
        y_pred=[CLASS_ORDER[i] for i in proba.argmax(axis=1)],
        sensitive={name: [row["sensitive"][name] for row in validation_rows] for name in SENSITIVE_ATTRIBUTES},
        positive_classes=tuple(settings.MODEL_GATE_FAIRNESS_POSITIVE_CLASSES),
        bounds=fairness_bounds(),
        enforced=bool(settings.MODEL_GATE_FAIRNESS_ENFORCED),
    )
    plan = change_control_plan_current()
    change_control = change_control_gate(
        plan=None
        if plan is None
        else ChangeControlTerms(
            id=plan.pk,
            model_line=plan.model_line,
            version=plan.version,
            allowed_families=tuple(plan.allowed_families),
            allowed_feature_set_versions=tuple(plan.allowed_feature_set_versions),
            performance_floor=plan.performance_floor,
            fairness_ceiling=plan.fairness_ceiling,
            signed=plan.signature_id is not None,
        ),
        family=run.family,
        feature_set_version=snapshot.feature_set_version,
        balanced_accuracy=candidate_metrics.get("balanced_accuracy"),
        max_equalized_odds_difference=fairness.max_equalized_odds_difference,
    )
    evaluated_at = timezone.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    results = (quality, parity, inferiority, calibration, fairness, change_control)
    return GateOutcome(tuple(replace(result, evaluated_at=evaluated_at) for result in results))


def model_version_gates_recompute(version: ModelVersion) -> GateOutcome:
    """The gates as they would come out now (against today's production model and plan). The stored gates
    are part of the signed manifest and never change; this is for `manage.py evaluate --recompute`."""
    run = TrainingRun.objects.select_related("snapshot").get(pk=version.training_run_id)
    signed = manifest_trusted(version)  # the hashes a trusted key signed, not the row's (issue 8 §2)
    return gates_evaluate(
        run=run,
        feature_names=list(signed.feature_names),
        onnx_bytes=artifact_get(signed.onnx_sha256, suffix=".onnx"),
        sklearn_bytes=artifact_get(signed.sklearn_sha256, suffix=".joblib"),
        candidate_sha256=signed.onnx_sha256,
        rows=model_snapshot_rows(version),
    )


def _matrix(rows: list[SnapshotRow], feature_names: Sequence[str]) -> npt.NDArray[np.float32]:
    return np.asarray([[row["features"][name] for name in feature_names] for row in rows], dtype=np.float32)


def _probabilities(onnx_bytes: bytes, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The served model's probabilities, widened to float64 and renormalised: float32 rows sum to 1 only to
    about 1e-7, which the metric functions would warn about."""
    proba = np.clip(onnx_probabilities(onnx_bytes, X).astype(np.float64), 0.0, 1.0)
    normalised: npt.NDArray[np.float64] = proba / proba.sum(axis=1, keepdims=True)
    return normalised


def _non_inferiority(
    *,
    run: TrainingRun,
    rows: list[SnapshotRow],
    val_idx: npt.NDArray[np.intp],
    y: npt.NDArray[np.int64],
    candidate_metrics: dict[str, float],
    candidate_proba: npt.NDArray[np.float64],
    candidate_sha256: str,
) -> NonInferiorityGateResult:
    margin = float(settings.MODEL_GATE_NONINFERIORITY_MARGIN)
    incumbent = serving_version()
    if incumbent is None or incumbent.sha256 == candidate_sha256:
        return non_inferiority_gate(
            margin=margin, candidate_metrics=candidate_metrics, incumbent_sha256=None, incumbent_metrics=None,
            rescored=None,
        )  # fmt: skip
    findings: list[str] = []
    rescored: HeldOutRescore | RescoreFailed | None = None
    if incumbent.feature_set_version != run.snapshot.feature_set_version:
        findings.append(
            f"non-inferiority: production uses feature set {incumbent.feature_set_version}, the candidate "
            f"{run.snapshot.feature_set_version}; production could not be re-scored on the same rows"
        )
    else:
        rescored = _rescore_incumbent(
            incumbent=incumbent, rows=rows, val_idx=val_idx, y=y, candidate_proba=candidate_proba, margin=margin
        )
    return non_inferiority_gate(
        margin=margin, candidate_metrics=candidate_metrics, incumbent_sha256=incumbent.sha256,
        incumbent_metrics=incumbent.metrics, rescored=rescored, findings=findings,
    )  # fmt: skip


def _rescore_incumbent(
    *,
    incumbent: ModelVersion,
    rows: list[SnapshotRow],
    val_idx: npt.NDArray[np.intp],
    y: npt.NDArray[np.int64],
    candidate_proba: npt.NDArray[np.float64],
    margin: float,
) -> HeldOutRescore | RescoreFailed:
    """Score production on the candidate's held-out rows and compare both models on the same rows."""
    incumbent_run = TrainingRun.objects.select_related("snapshot").get(pk=incumbent.training_run_id)
    try:
        # The hashes production's signed manifest names, not its rows' (issue 8 §2).
        incumbent_onnx = artifact_get(manifest_trusted(incumbent).onnx_sha256, suffix=".onnx")
        incumbent_rows = model_snapshot_rows(incumbent)
    except (ArtifactTampered, ArtifactMissing) as exc:
        # Nothing trustworthy to compare with: refuse rather than wave the candidate through.
        return RescoreFailed(str(exc))
    train_idx, _ = train_validation_split(len(incumbent_rows), incumbent_run.seed)
    minimum = int(settings.MODEL_GATE_MIN_RESCORE_ROWS)
    chosen, held_out_from_both = held_out_positions(
        validation_label_ids=[rows[i]["label_id"] for i in val_idx],
        incumbent_training_label_ids={incumbent_rows[i]["label_id"] for i in train_idx},
        y_validation=y[val_idx],
        n_classes=len(CLASS_ORDER),
        minimum=minimum,
    )
    idx = val_idx[chosen]
    incumbent_proba = _probabilities(incumbent_onnx, _matrix([rows[i] for i in idx], incumbent.feature_names))
    return held_out_rescore(
        candidate_proba=candidate_proba[chosen], incumbent_proba=incumbent_proba, y=y[idx],
        held_out_from_both=held_out_from_both, minimum=minimum, margin=margin,
    )  # fmt: skip
