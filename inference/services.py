"""Model-lifecycle writes: labels, dataset snapshots, training runs, registration, approval and serving."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.core.canonical import canonical_bytes, canonical_sha256
from clinaiops.core.errors import InvalidTransition, NotFound, ValidationFailed
from clinaiops.core.models import User
from governance.audit.models import AuditAction
from governance.audit.services import audit_record
from inference.artifacts import artifact_get, artifact_put
from inference.feature_source import feature_window_load
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION, feature_matrix, feature_vector
from inference.models import (
    APPROVAL_TRANSITIONS,
    CLASS_ORDER,
    ApprovalState,
    Arm,
    DatasetSnapshot,
    ModelVersion,
    RunStatus,
    ServingPointer,
    ServingPointerEvent,
    TrainingLabel,
    TrainingRun,
)
from inference.quality import snapshot_quality
from inference.training import DEFAULT_PARAMS, PARITY_TOLERANCE, model_train

ProgressCallback = Callable[[int, str], None]


def age_band(age: int) -> str:
    if age < 45:
        return "<45"
    if age < 65:
        return "45-64"
    if age < 75:
        return "65-74"
    return "75+"


def sensitive_attributes(patient: Patient, as_of: datetime) -> dict[str, str]:
    return {
        "sex": patient.sex,
        "age_band": age_band(as_of.year - patient.birth_year),
        "race_ethnicity": patient.race_ethnicity,
        "skin_tone": f"type {patient.skin_tone}",
    }


def label_record(
    *, patient: Patient, as_of: datetime, from_step: int, to_step: int, provenance: str, source_ref: str
) -> TrainingLabel | None:
    """Record what was decided at a decision point, with the features as of that moment. Idempotent on
    source_ref. Caller holds the transaction."""
    if TrainingLabel.objects.filter(source_ref=source_ref).exists():
        return None
    features = feature_vector(feature_window_load(patient=patient, as_of=as_of, current_step=from_step))
    delta = to_step - from_step
    label = CLASS_ORDER[1 + (delta > 0) - (delta < 0)]
    try:
        with transaction.atomic():
            created = TrainingLabel.objects.create(
                patient=patient,
                as_of=as_of,
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                from_step=from_step,
                label=label,
                provenance=provenance,
                source_ref=source_ref,
                created_at=timezone.now(),
            )
    except IntegrityError:  # concurrent retry of the same source
        return None
    audit_record(
        action=AuditAction.LABEL_RECORDED,
        object_type="training_label",
        object_id=created.pk,
        system_reason="decision_feedback",
        payload={"patient_id": patient.pk, "source_ref": source_ref, "label": label, "provenance": provenance},
    )
    return created


def _snapshot_rows(labels: list[TrainingLabel]) -> list[dict[str, Any]]:
    return [
        {
            "label_id": label.pk,
            "as_of": label.as_of,
            "features": {name: label.features[name] for name in FEATURE_NAMES},
            "label": label.label,
            "provenance": label.provenance,
            "sensitive": sensitive_attributes(label.patient, label.as_of),
        }
        for label in labels
    ]


@transaction.atomic
def dataset_snapshot_create(*, actor: User | None, until: datetime | None = None) -> DatasetSnapshot:
    """Freeze every label up to `until` into a content-addressed snapshot with its data-quality report."""
    labels = list(
        TrainingLabel.objects.filter(feature_set_version=FEATURE_SET_VERSION, as_of__lte=until or timezone.now())
        .select_related("patient")
        .order_by("as_of", "pk")
    )
    if not labels:
        raise ValidationFailed("There are no labels to snapshot yet.", code="empty_snapshot")
    rows = _snapshot_rows(labels)
    data = canonical_bytes({"feature_set_version": FEATURE_SET_VERSION, "rows": rows})
    sha256 = artifact_put(data, suffix=".json")
    existing = DatasetSnapshot.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    quality = snapshot_quality(rows)
    snapshot = DatasetSnapshot.objects.create(
        sha256=sha256,
        feature_set_version=FEATURE_SET_VERSION,
        created_at=timezone.now(),
        created_by=actor,
        time_start=labels[0].as_of,
        time_end=labels[-1].as_of,
        row_count=len(rows),
        provenance_counts=dict(Counter(row["provenance"] for row in rows)),
        class_counts=dict(Counter(row["label"] for row in rows)),
        quality_report=quality.report,
        quality_passed=quality.passed,
    )
    audit_record(
        action=AuditAction.SNAPSHOT_CREATED,
        object_type="dataset_snapshot",
        object_id=snapshot.pk,
        actor=actor,
        system_reason="" if actor else "scheduled",
        payload={"sha256": sha256, "rows": len(rows), "quality_passed": quality.passed},
    )
    return snapshot


def snapshot_load(snapshot: DatasetSnapshot) -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = json.loads(artifact_get(snapshot.sha256, suffix=".json"))["rows"]
    return rows


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(settings.BASE_DIR),
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    return importlib.metadata.version("clinaiops")


def library_versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "shap", "django")
    return {name: importlib.metadata.version(name) for name in names}


@transaction.atomic
def training_run_create(
    *,
    actor: User | None,
    snapshot: DatasetSnapshot,
    family: str = "logistic",
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> TrainingRun:
    if not snapshot.quality_passed:
        failed = [name for name, check in snapshot.quality_report["checks"].items() if not check["passed"]]
        raise ValidationFailed(
            "This snapshot failed its data-quality gate and cannot be trained on.",
            fields={"snapshot": [f"Failed check: {name}" for name in failed]},
            code="quality_gate_failed",
        )
    if family not in DEFAULT_PARAMS:
        raise ValidationFailed("Unknown model family.", fields={"family": [f"Choose one of {sorted(DEFAULT_PARAMS)}."]})
    run = TrainingRun.objects.create(
        snapshot=snapshot,
        family=family,
        params={**DEFAULT_PARAMS[family], **(params or {})},
        seed=seed,
        code_version=code_version(),
        library_versions=library_versions(),
        requested_by=actor,
        created_at=timezone.now(),
    )
    audit_record(
        action=AuditAction.TRAINING_STARTED,
        object_type="training_run",
        object_id=run.pk,
        actor=actor,
        system_reason="" if actor else "scheduled",
        payload={"snapshot_sha256": snapshot.sha256, "family": family, "seed": seed},
    )
    return run


def training_run_execute(*, run_id: int, progress: ProgressCallback | None = None) -> TrainingRun:
    """Train, export to ONNX, check parity and register. Safe to call twice: only a queued run starts."""
    report = progress or (lambda pct, msg: None)
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), progress=5, message="loading snapshot"
    )
    run = TrainingRun.objects.select_related("snapshot").get(pk=run_id)
    if claimed != 1:
        return run
    try:
        report(5, "loading snapshot")
        rows = snapshot_load(run.snapshot)
        X = feature_matrix([row["features"] for row in rows])
        y = np.asarray([CLASS_ORDER.index(row["label"]) for row in rows], dtype=np.int64)
        report(20, f"fitting {run.family} on {len(rows)} rows")
        fitted = model_train(X, y, family=run.family, params=run.params, seed=run.seed)
        report(70, "exported to ONNX; parity checked")
        buffer = io.BytesIO()
        np.save(buffer, fitted.background)
        with transaction.atomic():
            version = model_version_register(
                run=run,
                onnx_bytes=fitted.onnx_bytes,
                sklearn_bytes=fitted.sklearn_bytes,
                background_bytes=buffer.getvalue(),
                metrics=fitted.metrics,
                parity=fitted.parity_max_abs_diff,
            )
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SUCCEEDED, progress=100, message="registered", metrics=fitted.metrics,
                finished_at=timezone.now(),
            )  # fmt: skip
            audit_record(
                action=AuditAction.TRAINING_FINISHED,
                object_type="training_run",
                object_id=run.pk,
                system_reason="training_task",
                payload={"model_sha256": version.sha256, "status": RunStatus.SUCCEEDED},
            )
        report(100, f"registered {version.short_hash}")
    except Exception as exc:  # task boundary: record the failure, never leave the run "running"
        with transaction.atomic():
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}"[:200], finished_at=timezone.now()
            )
            audit_record(
                action=AuditAction.TRAINING_FINISHED,
                object_type="training_run",
                object_id=run.pk,
                system_reason="training_task",
                payload={"status": RunStatus.FAILED, "error": type(exc).__name__},
            )
        raise
    run.refresh_from_db()
    return run


def model_version_register(
    *,
    run: TrainingRun,
    onnx_bytes: bytes,
    sklearn_bytes: bytes,
    background_bytes: bytes,
    metrics: dict[str, float],
    parity: float,
) -> ModelVersion:
    """Store the artifacts content-addressed and register the version; then run the gates that exist so far
    (ONNX parity, data quality) and move it to validated or rejected."""
    sha256 = artifact_put(onnx_bytes, suffix=".onnx")
    existing = ModelVersion.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    gates: dict[str, dict[str, Any]] = {
        "onnx_parity": {"value": parity, "bound": PARITY_TOLERANCE, "passed": parity <= PARITY_TOLERANCE},
        "data_quality": {"snapshot_sha256": run.snapshot.sha256, "passed": run.snapshot.quality_passed},
    }
    version = ModelVersion.objects.create(
        sha256=sha256,
        sklearn_sha256=artifact_put(sklearn_bytes, suffix=".joblib"),
        background_sha256=artifact_put(background_bytes, suffix=".npy"),
        family=run.family,
        feature_set_version=run.snapshot.feature_set_version,
        feature_names=list(FEATURE_NAMES),
        classes=list(CLASS_ORDER),
        training_run=run,
        metrics=metrics,
        gates=gates,
        parity_max_abs_diff=parity,
        created_at=timezone.now(),
    )
    audit_record(
        action=AuditAction.MODEL_REGISTERED,
        object_type="model_version",
        object_id=version.pk,
        system_reason="training_task",
        payload={"sha256": sha256, "run_id": run.pk, "gates_digest": canonical_sha256(gates)},
    )
    all_passed = all(gate["passed"] for gate in gates.values())
    model_version_transition(
        version=version,
        to_state=ApprovalState.VALIDATED if all_passed else ApprovalState.REJECTED,
        actor=None,
        reason="gates",
    )
    return version


def model_version_transition(*, version: ModelVersion, to_state: str, actor: User | None, reason: str) -> ModelVersion:
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if to_state not in APPROVAL_TRANSITIONS[locked.approval_state]:
            allowed = sorted(APPROVAL_TRANSITIONS[locked.approval_state]) or ["none"]
            raise InvalidTransition(
                f"A {locked.approval_state} model cannot become {to_state}; allowed: {', '.join(allowed)}."
            )
        previous = locked.approval_state
        ModelVersion.objects.filter(pk=version.pk).update(approval_state=to_state)
        audit_record(
            action=AuditAction.MODEL_TRANSITIONED,
            object_type="model_version",
            object_id=version.pk,
            actor=actor,
            system_reason="" if actor else reason,
            payload={"from": previous, "to": to_state, "reason": reason},
        )
    version.approval_state = to_state
    return version


def serving_pointer_set(*, arm: str, version: ModelVersion | None, actor: User | None, reason: str) -> None:
    """Point an arm at a version (or clear it). Only validated or approved versions may serve."""
    if arm not in Arm.values:
        raise ValidationFailed("Unknown arm.", fields={"arm": [f"Choose one of {', '.join(Arm.values)}."]})
    if version is not None and version.approval_state not in {ApprovalState.VALIDATED, ApprovalState.APPROVED}:
        raise InvalidTransition(f"A {version.approval_state} model cannot serve; it must pass its gates first.")
    with transaction.atomic():
        current = ServingPointer.objects.select_for_update().filter(arm=arm).first()
        previous = current.model_version if current else None
        now = timezone.now()
        if version is None:
            ServingPointer.objects.filter(arm=arm).delete()
        else:
            ServingPointer.objects.update_or_create(arm=arm, defaults={"model_version": version, "since": now})
        ServingPointerEvent.objects.create(
            arm=arm, model_version=version, previous_version=previous, set_at=now, set_by=actor, reason=reason
        )
        audit_record(
            action=AuditAction.SERVING_POINTER_SET,
            object_type="serving_pointer",
            object_id=arm,
            actor=actor,
            system_reason="" if actor else reason,
            payload={
                "to_sha256": version.sha256 if version else None,
                "from_sha256": previous.sha256 if previous else None,
                "reason": reason,
            },
        )


def model_version_find(prefix: str) -> ModelVersion:
    if len(prefix) < 6:
        raise ValidationFailed("Give at least 6 characters of the model hash.", fields={"version": ["Too short."]})
    matches = list(ModelVersion.objects.filter(sha256__startswith=prefix.lower())[:2])
    if not matches:
        raise NotFound(f"No model version starts with {prefix}.")
    if len(matches) > 1:
        raise ValidationFailed("That prefix matches more than one version.", fields={"version": ["Ambiguous."]})
    return matches[0]
