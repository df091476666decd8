"""Model-lifecycle writes: labels, dataset snapshots, training runs, registration, approval and serving."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.models import Patient
from clinaiops.core.canonical import canonical_bytes, canonical_sha256, sha256_hex
from clinaiops.core.errors import Conflict, InvalidTransition, NotFound, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from inference.artifacts import artifact_put
from inference.feature_source import feature_window_load
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION, feature_matrix, feature_vector
from inference.gates import GateOutcome, gates_evaluate
from inference.manifest import SignedManifest, manifest_content, manifest_sign
from inference.models import (
    APPROVAL_TRANSITIONS,
    CLASS_ORDER,
    TITRATION_LINE,
    ApprovalState,
    Arm,
    ChangeControlPlan,
    DatasetSnapshot,
    ModelFamily,
    ModelVersion,
    RunStatus,
    ServingPointer,
    ServingPointerEvent,
    TrainingLabel,
    TrainingRun,
)
from inference.quality import snapshot_quality
from inference.selectors import model_version_for_run
from inference.selectors import snapshot_load as snapshot_load  # re-exported for existing callers
from inference.training import DEFAULT_PARAMS, FittedModel, model_train

ProgressCallback = Callable[[int, str], None]

# Who may move a serving pointer by hand, and who may roll one back.
PROMOTER_ROLES = frozenset({Role.ML_ENGINEER})
ROLLBACK_ROLES = frozenset({Role.ML_ENGINEER, Role.SAFETY_OFFICER})
# DESIGN §3: production and canary reach patients, so they serve only versions with both sign-offs; shadow is
# logged and never shown, so a validated candidate may run there to gather evidence before sign-off.
SERVABLE_STATES: dict[str, frozenset[str]] = {
    Arm.PRODUCTION: frozenset({ApprovalState.APPROVED}),
    Arm.CANARY: frozenset({ApprovalState.APPROVED}),
    Arm.SHADOW: frozenset({ApprovalState.VALIDATED, ApprovalState.APPROVED}),
}


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
    """Train, export to ONNX, run the gates, sign the manifest and register. Safe to call twice: only a queued
    run starts."""
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
        report(60, "exported to ONNX; running the gates")
        # The gates take seconds: run them before the transaction, which holds the audit ledger's lock.
        prepared = _registration_prepare(run=run, fitted=fitted, rows=rows)
        report(90, "gates done; registering")
        with transaction.atomic():
            version = _registration_commit(prepared)
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SUCCEEDED, progress=100, message="registered", metrics=fitted.metrics,
                model_sha256=version.sha256, finished_at=timezone.now(),
            )  # fmt: skip
            audit_record(
                action=AuditAction.TRAINING_FINISHED,
                object_type="training_run",
                object_id=run.pk,
                system_reason="training_task",
                payload={"model_sha256": version.sha256, "status": RunStatus.SUCCEEDED},
            )
        report(100, f"registered {version.short_hash} ({version.approval_state})")
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


def training_run_register(*, run_id: int, progress: ProgressCallback | None = None) -> ModelVersion:
    """The version a training run registered, running a queued run first. Idempotent: training registers the
    version itself, so for a finished run this only finds it."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"There is no training run {run_id}.")
    if run.status == RunStatus.QUEUED:
        run = training_run_execute(run_id=run.pk, progress=progress)
    if run.status == RunStatus.RUNNING:
        raise Conflict(f"Training run {run.pk} is still running; it registers its model when it finishes.")
    if run.status == RunStatus.FAILED:
        raise ValidationFailed(
            f"Training run {run.pk} failed ({run.message or 'no message'}); start a new run.", code="run_failed"
        )
    version = model_version_for_run(run)
    if version is None:
        raise NotFound(f"Training run {run.pk} finished without a registered model version.")
    return version


@dataclass(frozen=True)
class _PreparedRegistration:
    run: TrainingRun
    sha256: str
    sklearn_sha256: str
    background_sha256: str
    metrics: dict[str, float]
    parity: float
    outcome: GateOutcome | None  # None: the registry already holds these bytes
    manifest: SignedManifest | None


def _registration_prepare(
    *, run: TrainingRun, fitted: FittedModel, rows: list[dict[str, Any]]
) -> _PreparedRegistration:
    buffer = io.BytesIO()
    np.save(buffer, fitted.background)
    sha256 = artifact_put(fitted.onnx_bytes, suffix=".onnx")
    sklearn_sha256 = artifact_put(fitted.sklearn_bytes, suffix=".joblib")
    background_sha256 = artifact_put(buffer.getvalue(), suffix=".npy")
    if ModelVersion.objects.filter(sha256=sha256).exists():
        return _PreparedRegistration(run, sha256, sklearn_sha256, background_sha256, fitted.metrics,
                                     fitted.parity_max_abs_diff, None, None)  # fmt: skip
    outcome = gates_evaluate(
        run=run, feature_names=list(FEATURE_NAMES), onnx_bytes=fitted.onnx_bytes,
        sklearn_bytes=fitted.sklearn_bytes, candidate_sha256=sha256, rows=rows,
    )  # fmt: skip
    signed = manifest_sign(
        manifest_content(
            run=run, sha256=sha256, sklearn_sha256=sklearn_sha256, background_sha256=background_sha256,
            feature_names=list(FEATURE_NAMES), classes=list(CLASS_ORDER), metrics=fitted.metrics,
            gates=outcome.gates,
        )
    )  # fmt: skip
    return _PreparedRegistration(
        run, sha256, sklearn_sha256, background_sha256, fitted.metrics, fitted.parity_max_abs_diff, outcome, signed
    )


def _registration_commit(prepared: _PreparedRegistration) -> ModelVersion:
    """Create the version with its gates and signed manifest, then move it to validated or rejected. Runs in the
    caller's transaction, so the version, its audit events and the run's status commit together."""
    existing = ModelVersion.objects.filter(sha256=prepared.sha256).first()
    if existing is not None:
        return existing
    outcome, signed = prepared.outcome, prepared.manifest
    if outcome is None or signed is None:  # registered by a concurrent run after the check in prepare
        return ModelVersion.objects.get(sha256=prepared.sha256)
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                sha256=prepared.sha256,
                sklearn_sha256=prepared.sklearn_sha256,
                background_sha256=prepared.background_sha256,
                family=prepared.run.family,
                feature_set_version=prepared.run.snapshot.feature_set_version,
                feature_names=list(FEATURE_NAMES),
                classes=list(CLASS_ORDER),
                training_run=prepared.run,
                metrics=prepared.metrics,
                gates=outcome.gates,
                parity_max_abs_diff=outcome.gates["onnx_parity"]["max_abs_diff"],
                created_at=timezone.now(),
                manifest_text=signed.text,
                manifest_sha256=signed.sha256,
                manifest_signature=signed.signature,
                manifest_key_id=signed.key_id,
            )
    except IntegrityError:  # the same bytes registered concurrently: content addressing makes them one version
        return ModelVersion.objects.get(sha256=prepared.sha256)
    audit_record(
        action=AuditAction.MODEL_REGISTERED,
        object_type="model_version",
        object_id=version.pk,
        system_reason="training_task",
        payload={
            "sha256": version.sha256,
            "run_id": prepared.run.pk,
            "manifest_sha256": signed.sha256,
            "manifest_key_id": signed.key_id,
            "gates_digest": canonical_sha256(outcome.gates),
        },
    )
    model_version_transition(
        version=version,
        to_state=ApprovalState.VALIDATED if outcome.validated else ApprovalState.REJECTED,
        actor=None,
        reason="gates",
        detail={"failed_gates": outcome.failed, "needs_full_review": bool(outcome.review_reasons)},
    )
    return version


def model_version_register(
    *,
    run: TrainingRun,
    fitted: FittedModel,
) -> ModelVersion:
    """Store the artifacts content-addressed, run every gate (inference.gates), sign the manifest, register the
    version and move it to validated (all hard gates pass) or rejected (naming the failed gates). Registering
    the same ONNX bytes again returns the existing version."""
    prepared = _registration_prepare(run=run, fitted=fitted, rows=snapshot_load(run.snapshot))
    with transaction.atomic():
        return _registration_commit(prepared)


def model_version_transition(
    *, version: ModelVersion, to_state: str, actor: User | None, reason: str, detail: dict[str, Any] | None = None
) -> ModelVersion:
    """Move a version along APPROVAL_TRANSITIONS (the only edit a registered version ever gets). Approval is
    not reachable from here: it takes the two sign-offs (governance.signoffs → `model_version_approve`)."""
    if to_state == ApprovalState.APPROVED:
        raise InvalidTransition(
            "A model version is approved only by two sign-offs (an ML engineer and a clinical safety officer); "
            "use `manage.py signoff`."
        )
    return _transition(version=version, to_state=to_state, actor=actor, reason=reason, detail=detail)


def _transition(
    *, version: ModelVersion, to_state: str, actor: User | None, reason: str, detail: dict[str, Any] | None
) -> ModelVersion:
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
            payload={"from": previous, "to": to_state, "reason": reason, **(detail or {})},
        )
    version.approval_state = to_state
    return version


def model_version_approve(*, version: ModelVersion, actor: User, signoff_ids: list[int]) -> ModelVersion:
    """validated → approved, for governance.signoffs only: it calls this in the transaction that records the
    second sign-off (inference may not import governance, so the sign-offs themselves are checked there)."""
    if len(signoff_ids) != 2:
        raise InvalidTransition("Approval needs exactly two sign-offs.")
    return _transition(
        version=version,
        to_state=ApprovalState.APPROVED,
        actor=actor,
        reason="two_signoffs",
        detail={"signoff_ids": sorted(signoff_ids)},
    )


def _servable_or_refuse(arm: str, version: ModelVersion) -> None:
    allowed = SERVABLE_STATES[arm]
    if version.approval_state in allowed:
        return
    if version.approval_state == ApprovalState.VALIDATED:
        raise InvalidTransition(
            f"The {arm} arm serves only approved versions; {version.short_hash} is validated and needs two "
            "sign-offs first (an ML engineer and a clinical safety officer)."
        )
    raise InvalidTransition(
        f"A {version.approval_state} model cannot serve on the {arm} arm; it must be {' or '.join(sorted(allowed))}."
    )


def _pointer_move(
    *,
    arm: str,
    version: ModelVersion | None,
    actor: User | None,
    reason: str,
    is_rollback: bool = False,
    note: str = "",
    system_reason: str = "",
) -> ServingPointerEvent:
    """Move one arm's pointer and record the move. Caller holds the transaction and the pointer lock."""
    current = ServingPointer.objects.filter(arm=arm).first()
    previous = current.model_version if current else None
    now = timezone.now()
    if version is None:
        ServingPointer.objects.filter(arm=arm).delete()
    else:
        ServingPointer.objects.update_or_create(arm=arm, defaults={"model_version": version, "since": now})
    event = ServingPointerEvent.objects.create(
        arm=arm, model_version=version, previous_version=previous, set_at=now, set_by=actor, reason=reason,
        is_rollback=is_rollback, note=note,
    )  # fmt: skip
    payload: dict[str, Any] = {
        "to_sha256": version.sha256 if version else None,
        "from_sha256": previous.sha256 if previous else None,
        "reason": reason,
        "event_id": event.pk,
    }
    if is_rollback:
        payload["rollback"] = True
        payload["note_sha256"] = sha256_hex(note.encode("utf-8"))  # the words stay on the event, not in the ledger
    audit_record(
        action=AuditAction.SERVING_POINTER_SET,
        object_type="serving_pointer",
        object_id=arm,
        actor=actor,
        system_reason="" if actor else (system_reason or reason),
        payload=payload,
    )
    return event


def _arm_or_refuse(arm: str) -> None:
    if arm not in Arm.values:
        raise ValidationFailed("Unknown arm.", fields={"arm": [f"Choose one of {', '.join(Arm.values)}."]})


def serving_pointer_set(*, arm: str, version: ModelVersion | None, actor: User | None, reason: str) -> None:
    """Point an arm at a version (or clear it). Production and canary take only approved versions; shadow also
    takes validated ones (SERVABLE_STATES)."""
    _arm_or_refuse(arm)
    with transaction.atomic():
        ServingPointer.objects.select_for_update().filter(arm=arm).first()
        if version is not None:
            # Re-read under the lock: a version retired a moment ago must not start serving.
            version = ModelVersion.objects.select_for_update().get(pk=version.pk)
            _servable_or_refuse(arm, version)
        _pointer_move(arm=arm, version=version, actor=actor, reason=reason)


def model_version_promote(*, version: ModelVersion, arm: str, actor: User) -> None:
    """An ML engineer points an arm at a version (DESIGN §3: promotion is a pointer move, separate from
    approval). Refusals are audited."""
    _arm_or_refuse(arm)
    if actor.role not in PROMOTER_ROLES:
        audit_record_denied(
            action=AuditAction.SERVING_POINTER_SET, object_type="serving_pointer", object_id=arm, actor=actor,
            reason="wrong_role",
        )  # fmt: skip
        raise PermissionRefused("Only an ML engineer can promote a model version.")
    try:
        serving_pointer_set(arm=arm, version=version, actor=actor, reason="promote")
    except InvalidTransition:
        audit_record_denied(
            action=AuditAction.SERVING_POINTER_SET, object_type="serving_pointer", object_id=arm, actor=actor,
            reason=f"not_servable_{version.approval_state}",
        )  # fmt: skip
        raise


def _served_before(arm: str) -> tuple[bool, ModelVersion | None]:
    """Replay the arm's history as a stack: a move pushes, a rollback pops. The entry under the top is what
    served before the current version. Returns (anything to roll back to?, that version or None)."""
    stack: list[int | None] = []
    events = (
        ServingPointerEvent.objects.filter(arm=arm)
        .order_by("set_at", "pk")
        .values_list("model_version_id", "is_rollback")
    )
    for version_id, is_rollback in events:
        if is_rollback and stack:
            stack.pop()
            if stack and stack[-1] == version_id:
                continue
        stack.append(version_id)
    if len(stack) < 2:
        # One entry: the arm has served only what it serves now. Rolling that back leaves the arm empty,
        # which is the safe state (rules only, every proposal to review); nothing at all: nothing to undo.
        return (bool(stack) and stack[-1] is not None), None
    target_id = stack[-2]
    return True, None if target_id is None else ModelVersion.objects.get(pk=target_id)


def serving_rollback(*, arm: str, actor: User, reason: str) -> ServingPointerEvent:
    """Point an arm back at the version that served before the current one (from the pointer history), in one
    audited action. Only an ML engineer or a clinical safety officer may do it."""
    _arm_or_refuse(arm)
    if actor.role not in ROLLBACK_ROLES:
        audit_record_denied(
            action=AuditAction.SERVING_POINTER_SET, object_type="serving_pointer", object_id=arm, actor=actor,
            reason="rollback_wrong_role",
        )  # fmt: skip
        raise PermissionRefused("Only an ML engineer or a clinical safety officer can roll back a deployment.")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why you are rolling back.", fields={"reason": ["This field is required."]})
    return _rollback(arm=arm, actor=actor, note=reason[:200])


def serving_rollback_automatic(*, arm: str, system_reason: str) -> ServingPointerEvent:
    """The system's rollback, for the canary circuit breaker (inference.monitoring): the same move as
    `serving_rollback`, recorded as a rollback by the system with `system_reason` as its code. Recording it as a
    rollback keeps a later human rollback from re-deploying the version the breaker took down."""
    _arm_or_refuse(arm)
    return _rollback(arm=arm, actor=None, note=system_reason[:200])


def _rollback(*, arm: str, actor: User | None, note: str) -> ServingPointerEvent:
    with transaction.atomic():
        ServingPointer.objects.select_for_update().filter(arm=arm).first()
        possible, target = _served_before(arm)
        if not possible:
            raise InvalidTransition(f"Nothing serves on the {arm} arm, so there is nothing to roll back.")
        if target is not None:
            target = ModelVersion.objects.select_for_update().get(pk=target.pk)
            _servable_or_refuse(arm, target)
        return _pointer_move(
            arm=arm, version=target, actor=actor, reason="rollback", is_rollback=True, note=note,
            system_reason="" if actor else note,
        )  # fmt: skip


def model_version_find(prefix: str) -> ModelVersion:
    if len(prefix) < 6:
        raise ValidationFailed("Give at least 6 characters of the model hash.", fields={"version": ["Too short."]})
    matches = list(ModelVersion.objects.filter(sha256__startswith=prefix.lower())[:2])
    if not matches:
        raise NotFound(f"No model version starts with {prefix}.")
    if len(matches) > 1:
        raise ValidationFailed("That prefix matches more than one version.", fields={"version": ["Ambiguous."]})
    return matches[0]


def change_control_plan_create(
    *,
    actor: User,
    allowed_families: list[str],
    allowed_feature_set_versions: list[str],
    performance_floor: float,
    fairness_ceiling: float,
    model_line: str = TITRATION_LINE,
) -> ChangeControlPlan:
    """A clinical safety officer declares what a retrain of `model_line` may change without a full review.
    Plans are never edited: each call adds the next version, and the gates use the newest."""
    if actor.role != Role.SAFETY_OFFICER:
        audit_record_denied(
            action=AuditAction.POLICY_CREATED, object_type="change_control_plan", object_id=model_line, actor=actor,
            reason="wrong_role",
        )  # fmt: skip
        raise PermissionRefused("Only a clinical safety officer can declare a change-control plan.")
    problems: dict[str, list[str]] = {}
    unknown = sorted(set(allowed_families) - set(ModelFamily.values))
    if not allowed_families or unknown:
        problems["allowed_families"] = [f"Choose from {', '.join(ModelFamily.values)}."]
    if not allowed_feature_set_versions:
        problems["allowed_feature_set_versions"] = ["Name at least one feature-set version."]
    if not 0.0 <= performance_floor <= 1.0:
        problems["performance_floor"] = ["A balanced accuracy between 0 and 1."]
    if not 0.0 <= fairness_ceiling <= 1.0:
        problems["fairness_ceiling"] = ["An equalized-odds difference between 0 and 1."]
    if problems:
        raise ValidationFailed("This change-control plan is not valid.", fields=problems)
    with transaction.atomic():
        latest = (
            ChangeControlPlan.objects.select_for_update().filter(model_line=model_line).order_by("-version").first()
        )
        plan = ChangeControlPlan.objects.create(
            model_line=model_line,
            version=(latest.version + 1) if latest else 1,
            allowed_families=sorted(set(allowed_families)),
            allowed_feature_set_versions=sorted(set(allowed_feature_set_versions)),
            performance_floor=performance_floor,
            fairness_ceiling=fairness_ceiling,
            created_at=timezone.now(),
            created_by=actor,
        )
        audit_record(
            action=AuditAction.POLICY_CREATED,
            object_type="change_control_plan",
            object_id=plan.pk,
            actor=actor,
            payload={
                "model_line": model_line,
                "version": plan.version,
                "allowed_families": plan.allowed_families,
                "allowed_feature_set_versions": plan.allowed_feature_set_versions,
                "performance_floor": performance_floor,
                "fairness_ceiling": fairness_ceiling,
            },
        )
    return plan
