"""Drift reports against the production model's training snapshot; severe drift starts a candidate retraining
run (DESIGN §3 "Drift"). Nothing here promotes a model."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from inference.artifacts import ArtifactMissing, ArtifactTampered
from inference.drift import SEVERE, FeatureDrift, drift_report
from inference.models import Arm, ModelVersion, RunStatus, TrainingRun
from inference.monitoring.models import (
    DriftReport,
    DriftSeverity,
    MonitoringAlert,
    MonitoringAlertKind,
    MonitoringAlertStatus,
    PredictionLog,
)
from inference.monitoring.services.alerts import alert_raise
from inference.monitoring.services.integrity import model_integrity_failure_record
from inference.runtime import model_score
from inference.selectors import serving_version, serving_version_at
from inference.services.datasets import dataset_snapshot_create, model_snapshot_rows
from inference.services.training import training_run_create
from inference.tasks import training_run_execute_task

# Binary comorbidity flags are categories (chi-square); every other feature is a measurement (KS).
CATEGORICAL_FEATURES = frozenset({"diabetes", "ckd"})
DRIFT_BINS = 10
# Who may ask for a report; the daily schedule computes one with no actor.
DRIFT_ROLES = frozenset({Role.ML_ENGINEER, Role.SAFETY_OFFICER})
# Subgroups with fewer labelled decisions than this are counted but not compared: no accuracy is given for them
# and they are left out of the largest gap (a handful of decisions moves an accuracy by tens of points).
SUBGROUP_MIN_ROWS = 20
_SKIN_TONE_BANDS = {1: "I–II", 2: "I–II", 3: "III–IV", 4: "III–IV", 5: "V–VI", 6: "V–VI"}


def _finite_or_none(value: Any) -> Any:
    # JSON (and PostgreSQL jsonb) has no NaN or infinity.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value


def _drift_entry(entry: FeatureDrift) -> dict[str, Any]:
    return {key: _finite_or_none(value) for key, value in asdict(entry).items()}


def _predicted_classes(version: ModelVersion, rows: list[dict[str, float]]) -> np.ndarray:
    """The production model's most probable class for each row (its raw output, before the ladder limits)."""
    predicted = []
    for features in rows:
        probabilities = model_score(version, features)
        predicted.append(max(probabilities, key=lambda name: probabilities[name]))
    return np.asarray(predicted, dtype=object)


def _override_rates(logs: Any) -> dict[str, Any]:
    by_arm: dict[str, dict[str, Any]] = {}
    for arm, overridden in logs.values_list("arm", "overridden"):
        counts = by_arm.setdefault(arm, {"decisions": 0, "overridden": 0})
        counts["decisions"] += 1
        counts["overridden"] += int(bool(overridden))
    total = {
        "decisions": sum(c["decisions"] for c in by_arm.values()),
        "overridden": sum(c["overridden"] for c in by_arm.values()),
    }
    for counts in [*by_arm.values(), total]:
        counts["rate"] = counts["overridden"] / counts["decisions"] if counts["decisions"] else None
    return {"overall": total, "by_arm": dict(sorted(by_arm.items()))}


def _group_order(group: str) -> tuple[int, str]:
    # Skin-tone bands in Fitzpatrick order (I–II before III–IV), everything else alphabetically.
    bands = list(dict.fromkeys(_SKIN_TONE_BANDS.values()))
    return (bands.index(group) if group in bands else len(bands), group)


def _subgroup_performance(logs: Any) -> dict[str, Any]:
    """Accuracy of the model's proposed step against the clinician's final step, by sex and skin tone."""
    groups: dict[str, dict[str, list[int]]] = {"sex": {}, "skin_tone": {}}
    overall = [0, 0]
    for sex, skin_tone, proposed, final in logs.values_list(
        "patient__sex", "patient__skin_tone", "proposed_step", "final_step"
    ):
        correct = int(proposed == final)
        overall[0] += 1
        overall[1] += correct
        for attribute, group in (("sex", sex), ("skin_tone", _SKIN_TONE_BANDS.get(skin_tone, str(skin_tone)))):
            counts = groups[attribute].setdefault(group, [0, 0])
            counts[0] += 1
            counts[1] += correct
    result: dict[str, Any] = {
        "overall": {
            "n": overall[0],
            "correct": overall[1],
            "accuracy": overall[1] / overall[0] if overall[0] else None,
        },
        "min_rows": SUBGROUP_MIN_ROWS,
    }
    for attribute, by_group in groups.items():
        judged = [correct / n for n, correct in by_group.values() if n >= SUBGROUP_MIN_ROWS]
        result[attribute] = {
            "groups": [
                {
                    "group": group,
                    "n": n,
                    "correct": correct,
                    "compared": n >= SUBGROUP_MIN_ROWS,
                    "accuracy": correct / n if n >= SUBGROUP_MIN_ROWS else None,
                }
                for group, (n, correct) in sorted(by_group.items(), key=lambda item: _group_order(item[0]))
            ],
            "max_gap": max(judged) - min(judged) if len(judged) >= 2 else None,
        }
    return result


def drift_report_compute(
    *, window_days: int | None = None, as_of: datetime | None = None, actor: User | None = None
) -> DriftReport:
    """Compare the serving window with the production model's training snapshot and store the report.

    Current rows are the features of every proposal logged in the window; prediction drift compares the
    production model's output on the snapshot with its output on those rows. With fewer rows than
    DRIFT_MIN_CURRENT_ROWS the report says "insufficient_data" instead of a severity: PSI's small-sample
    bias alone reads "watch" at a few hundred rows (inference.drift). The report also carries the clinician
    override rate and subgroup accuracy in the window. Severe drift opens an alert and starts a candidate
    retraining run on a fresh snapshot; nothing is promoted.

    `actor` None is the daily schedule; a person must be an ML engineer or a clinical safety officer (a refusal
    is audited). The report is audited in the transaction that stores it.
    """
    if actor is not None and actor.role not in DRIFT_ROLES:
        audit_record_denied(
            action=AuditAction.DRIFT_REPORT_CREATED, object_type="drift_report", actor=actor, reason="wrong_role"
        )
        raise PermissionRefused("Only ML engineers and clinical safety officers can compute a drift report.")
    now = timezone.now()
    window_days = window_days or settings.DRIFT_WINDOW_DAYS
    version = serving_version(arm=Arm.PRODUCTION) if as_of is None else serving_version_at(arm=Arm.PRODUCTION, at=as_of)
    as_of = as_of or now
    if version is None:
        raise ValidationFailed(
            "No model serves production, so there is no training snapshot to compare with.",
            code="no_production_model",
        )
    run = TrainingRun.objects.select_related("snapshot").get(pk=version.training_run_id)
    names = list(version.feature_names)
    try:
        # The reference is the file the model's signed manifest names, never the snapshot row's hash.
        reference_rows = [row["features"] for row in model_snapshot_rows(version)]
    except (ArtifactTampered, ArtifactMissing) as exc:
        raise ValidationFailed(
            f"The production model's training snapshot cannot be trusted ({exc}); no drift report was made.",
            code="reference_snapshot_untrusted",
        ) from exc
    window_start = as_of - timedelta(days=window_days)
    current_rows: list[dict[str, float]] = list(
        PredictionLog.objects.filter(
            created_at__gt=window_start, created_at__lte=as_of, feature_set_version=version.feature_set_version
        )
        .order_by("pk")
        .values_list("features", flat=True)
    )
    decided = PredictionLog.objects.filter(decided_at__gt=window_start, decided_at__lte=as_of)
    severity: str = DriftSeverity.INSUFFICIENT_DATA
    features: list[dict[str, Any]] = []
    prediction: dict[str, Any] | None = None
    drifted: list[str] = []
    noise_floor: float | None = None
    integrity_error = ""
    if len(current_rows) >= settings.DRIFT_MIN_CURRENT_ROWS:
        reference = np.asarray([[row[name] for name in names] for row in reference_rows], dtype=np.float64)
        current = np.asarray([[row[name] for name in names] for row in current_rows], dtype=np.float64)
        predictions: tuple[np.ndarray | None, np.ndarray | None]
        try:
            predictions = (_predicted_classes(version, reference_rows), _predicted_classes(version, current_rows))
        except (ArtifactTampered, ArtifactMissing) as exc:
            # Input drift needs no model; prediction drift waits until the artifact is restored.
            predictions = (None, None)
            integrity_error = type(exc).__name__
        result = drift_report(
            reference,
            current,
            names,
            categorical=CATEGORICAL_FEATURES.intersection(names),
            reference_pred=predictions[0],
            current_pred=predictions[1],
            bins=DRIFT_BINS,
        )
        severity = result.severity
        features = [_drift_entry(entry) for entry in result.features]
        prediction = _drift_entry(result.prediction) if result.prediction is not None else None
        drifted = result.drifted()
        noise_floor = (DRIFT_BINS - 1) * (1 / len(reference_rows) + 1 / len(current_rows))
    with transaction.atomic():
        report = DriftReport.objects.create(
            created_at=now,
            as_of=as_of,
            window_start=window_start,
            window_days=window_days,
            model_version=version,
            reference_snapshot=run.snapshot,
            reference_sha256=run.snapshot.sha256,
            n_reference=len(reference_rows),
            n_current=len(current_rows),
            severity=severity,
            drifted=drifted,
            features=features,
            prediction=prediction,
            psi_noise_floor=noise_floor,
            override_rates=_override_rates(decided),
            subgroups=_subgroup_performance(decided.filter(model_version=version).exclude(final_step=None)),
            requested_by=actor,
        )
        audit_record(
            action=AuditAction.DRIFT_REPORT_CREATED,
            object_type="drift_report",
            object_id=report.pk,
            actor=actor,
            system_reason="" if actor else "scheduled",
            payload={
                "model_sha256": version.sha256,
                "reference_sha256": run.snapshot.sha256,
                "as_of": as_of,
                "window_days": window_days,
                "n_reference": len(reference_rows),
                "n_current": len(current_rows),
                "severity": severity,
                "drifted": drifted,
            },
        )
        if integrity_error:
            model_integrity_failure_record(version=version, arm=Arm.PRODUCTION, error=integrity_error)
        if severity == SEVERE:
            _drift_escalate(report=report, version=version, run=run, now=now)
    return report


def _drift_escalate(*, report: DriftReport, version: ModelVersion, run: TrainingRun, now: datetime) -> None:
    """Severe drift: alert ML engineers and start one candidate retraining run per alert. While the alert
    is open, later severe reports add to it instead of training again."""
    already_open = MonitoringAlert.objects.filter(dedup_key="drift_severe", status=MonitoringAlertStatus.OPEN).exists()
    candidate, note = (None, "alert_already_open") if already_open else _candidate_retraining_start(run)
    alert_raise(
        kind=MonitoringAlertKind.DRIFT_SEVERE,
        dedup_key="drift_severe",
        system_reason="drift_severe",
        details={
            "drift_report_id": report.pk,
            "drifted": report.drifted,
            "model_sha256": version.sha256,
            "retraining_run_id": candidate.pk if candidate else None,
            "retraining_note": note,
        },
        model_version=version,
        drift_report=report,
        now=now,
    )
    DriftReport.objects.filter(pk=report.pk).update(retraining_run=candidate, retraining_note=note)
    report.retraining_run, report.retraining_note = candidate, note


def _candidate_retraining_start(production_run: TrainingRun) -> tuple[TrainingRun | None, str]:
    """A fresh snapshot of every label so far (the newest clinician decisions included) and a training run
    with production's family, parameters and seed, executed on commit. The result is only registered and
    gated; promoting it needs the usual sign-offs."""
    try:
        snapshot = dataset_snapshot_create(actor=None)
    except ValidationFailed as exc:
        return None, exc.code
    if snapshot.pk == production_run.snapshot_id:
        return None, "no_new_labels"
    if not snapshot.quality_passed:
        return None, "snapshot_failed_quality"
    # Same snapshot, family, parameters and seed give the same model (DESIGN §3): one candidate is enough.
    for earlier in TrainingRun.objects.filter(
        snapshot=snapshot, family=production_run.family, seed=production_run.seed
    ).exclude(status=RunStatus.FAILED):
        if earlier.params == production_run.params:
            return None, "candidate_already_trained"
    try:
        candidate = training_run_create(
            actor=None,
            snapshot=snapshot,
            family=production_run.family,
            params=production_run.params,
            seed=production_run.seed,
        )
    except ValidationFailed as exc:
        return None, exc.code
    transaction.on_commit(partial(training_run_execute_task.delay, candidate.pk))
    return candidate, ""
