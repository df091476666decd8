"""Deployment monitoring (DESIGN §3 "Deployment arms" and "Drift").

What each arm predicted and how clinicians judged it, what the shadow model would have said, canary stages
and circuit-breaker trips, drift reports, and alerts for ML engineers.

Records here name recommendations by id only. The loops sit above inference (DESIGN §9), so they pass what
monitoring needs into its services; monitoring never reads their tables.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from clinaiops.care.models import Patient
from inference.models import DatasetSnapshot, ModelVersion, TrainingRun

# The arm a recommendation records when no model could be trusted and only the safety rules ran. Every such
# recommendation waits for a clinician (DESIGN §3 "Serving": a tampered artifact falls back to rules only).
RULES_ONLY_ARM = "rules_only"


class PredictionLog(models.Model):
    """One proposal a model made, kept for monitoring.

    It holds the inputs and output (for drift), the arm and version (for the canary comparison) and, later,
    the clinician's judgement and whether the model's advice reached the patient (for override and error
    rates). The recommendation's own audit event already records the proposal; this is a monitoring copy.
    """

    recommendation_id = models.PositiveBigIntegerField(unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    arm = models.CharField(max_length=16)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    feature_set_version = models.CharField(max_length=32)
    features = models.JSONField()
    probabilities = models.JSONField()
    action = models.CharField(max_length=16)
    from_step = models.PositiveSmallIntegerField()
    proposed_step = models.PositiveSmallIntegerField()
    tier = models.CharField(max_length=8)
    created_at = models.DateTimeField()
    # When the model's own advice reached the patient: at once for a minor proposal, on acceptance for a
    # reviewed one. Never set when a clinician overrode it: what reached the patient then was not the model's.
    advice_delivered_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_outcome = models.CharField(max_length=16, blank=True)
    final_step = models.PositiveSmallIntegerField(null=True, blank=True)
    # True when the clinician modified or rejected the proposal; None until a clinician decides.
    overridden = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["arm", "created_at"]),
            models.Index(fields=["created_at"]),
            models.Index(fields=["decided_at"]),
        ]

    def __str__(self) -> str:
        return f"prediction for recommendation {self.recommendation_id} ({self.arm})"


class ShadowScore(models.Model):
    """What the shadow model would have proposed. Never shown to a patient or a clinician: the monitoring
    pages show only how often it agreed with what was served."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    served_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    served_arm = models.CharField(max_length=16)
    recommendation_id = models.PositiveBigIntegerField()
    probabilities = models.JSONField()
    action = models.CharField(max_length=16)
    served_action = models.CharField(max_length=16)
    agreed = models.BooleanField()
    scored_at = models.DateTimeField()

    class Meta:
        ordering = ["-scored_at"]
        indexes = [models.Index(fields=["scored_at"])]

    def __str__(self) -> str:
        return f"shadow {self.model_version_id}: {self.action} (served {self.served_action})"


# DESIGN §3: the canary serves a sticky 5 → 20 → 50 → 100 % of patients. Stages move only forward, one at a
# time; a rollback ends the deployment instead.
CANARY_STAGES: tuple[int, ...] = (5, 20, 50, 100)
CANARY_STAGE_TRANSITIONS: dict[int, int] = {5: 20, 20: 50, 50: 100}


class CanaryStatus(models.TextChoices):
    ACTIVE = "active"
    ROLLED_BACK = "rolled_back", "Rolled back"


class CanaryState(models.Model):
    """The stage of one canary deployment: the canary pointer set to `model_version` at `started_at` (the
    pointer's `since`). Setting the pointer again, even to the same version, is a new deployment that starts
    again at the first stage. A deployment with no row yet is at the first stage: the row is written when
    something changes it (a stage advance or a rollback), never on the recommendation path."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    stage_percent = models.PositiveSmallIntegerField(default=CANARY_STAGES[0])
    status = models.CharField(max_length=16, choices=CanaryStatus.choices, default=CanaryStatus.ACTIVE)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "started_at"], name="canary_state_one_per_deployment"),
            models.CheckConstraint(
                condition=models.Q(stage_percent__in=CANARY_STAGES), name="canary_state_stage_is_a_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"canary {self.model_version_id} at {self.stage_percent} % ({self.status})"


class CircuitBreakerEvent(models.Model):
    """The circuit breaker rolled a canary back: which rates tripped it and the numbers it saw."""

    # One trip per deployment: the first one ends it, so a concurrent second check cannot record another.
    canary = models.OneToOneField(CanaryState, on_delete=models.PROTECT, related_name="breaker_event")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    tripped_at = models.DateTimeField()
    reasons = models.JSONField()  # ["override_rate", "error_rate"]
    metrics = models.JSONField()  # {"canary": {...}, "production": {...}}
    thresholds = models.JSONField()

    class Meta:
        ordering = ["-tripped_at"]

    def __str__(self) -> str:
        return f"circuit breaker tripped on {', '.join(self.reasons)}"


class DriftSeverity(models.TextChoices):
    STABLE = "stable"
    WATCH = "watch"
    SEVERE = "severe"
    INSUFFICIENT_DATA = "insufficient_data", "Too few rows to judge"


class DriftReport(models.Model):
    """One drift run: the serving window against the production model's training snapshot (DESIGN §3)."""

    created_at = models.DateTimeField()
    as_of = models.DateTimeField()
    window_start = models.DateTimeField()
    window_days = models.PositiveSmallIntegerField()
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    reference_snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="+")
    reference_sha256 = models.CharField(max_length=64)
    n_reference = models.PositiveIntegerField()
    n_current = models.PositiveIntegerField()
    severity = models.CharField(max_length=24, choices=DriftSeverity.choices)
    drifted = models.JSONField(default=list)  # names of the severe features (and "prediction")
    # One entry per feature: psi, test, statistic, p values, effect size, severity and the histograms.
    features = models.JSONField(default=list)
    prediction = models.JSONField(null=True, blank=True)
    # PSI that sampling noise alone produces on average at these sizes, (bins − 1)·(1/n + 1/m) (inference.drift).
    psi_noise_floor = models.FloatField(null=True, blank=True)
    override_rates = models.JSONField(default=dict)
    subgroups = models.JSONField(default=dict)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retraining_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Why a severe report started no retraining run, as a code ("alert_already_open", "no_new_labels", …).
    retraining_note = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"drift report {self.pk} ({self.severity})"


class MonitoringAlertKind(models.TextChoices):
    MODEL_INTEGRITY = "model_integrity", "Model artifact failed its hash"
    DRIFT_SEVERE = "drift_severe", "Severe drift"
    CANARY_ROLLED_BACK = "canary_rolled_back", "Canary rolled back by the circuit breaker"


class MonitoringAlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class MonitoringAlert(models.Model):
    """An alert for ML engineers. Care-team alerts belong to one patient and live in clinaiops.care; these
    concern a model or a deployment."""

    kind = models.CharField(max_length=32, choices=MonitoringAlertKind.choices)
    status = models.CharField(max_length=16, choices=MonitoringAlertStatus.choices, default=MonitoringAlertStatus.OPEN)
    # At most one open alert per key, so a condition every evaluation runs into pages once and counts the rest.
    dedup_key = models.CharField(max_length=100)
    occurrences = models.PositiveIntegerField(default=1)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    drift_report = models.ForeignKey(
        DriftReport, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    breaker_event = models.ForeignKey(
        CircuitBreakerEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    details = models.JSONField(default=dict)  # codes, ids and numbers only: never PHI
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=models.Q(status="open"),
                name="monitoring_alert_one_open_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"
