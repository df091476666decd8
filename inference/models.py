from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models

from clinaiops.care.models import Patient
from inference.gates.outcome import GateOutcome, gate_outcome_load


class LabelProvenance(models.TextChoices):
    CLINICIAN = "clinician", "Clinician decision"
    OUTCOME = "outcome", "Observed outcome"
    SIMULATED = "simulated", "Simulated (synthetic cohort)"


class TitrationLabel(models.TextChoices):
    DECREASE = "decrease"
    MAINTAIN = "maintain"
    INCREASE = "increase"


CLASS_ORDER: tuple[str, ...] = (TitrationLabel.DECREASE, TitrationLabel.MAINTAIN, TitrationLabel.INCREASE)


class TrainingLabel(models.Model):
    """One labelled example: the features as of a decision point and what the clinician (or simulator) chose."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="training_labels")
    as_of = models.DateTimeField()
    feature_set_version = models.CharField(max_length=32)
    features = models.JSONField()
    from_step = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=16, choices=TitrationLabel.choices)
    provenance = models.CharField(max_length=16, choices=LabelProvenance.choices)
    # The record that produced the label, e.g. "review_decision:12"; unique so a retried task labels once.
    source_ref = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["as_of"]

    def __str__(self) -> str:
        return f"label {self.label} ({self.provenance})"


class DatasetSnapshot(models.Model):
    sha256 = models.CharField(max_length=64, unique=True)
    feature_set_version = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    time_start = models.DateTimeField()
    time_end = models.DateTimeField()
    row_count = models.PositiveIntegerField()
    provenance_counts = models.JSONField()
    class_counts = models.JSONField()
    quality_report = models.JSONField()
    quality_passed = models.BooleanField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"snapshot {self.sha256[:12]}"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ModelFamily(models.TextChoices):
    LOGISTIC = "logistic", "Multinomial logistic regression"
    GRADIENT_BOOSTING = "gradient_boosting", "Histogram gradient-boosted trees"


class TrainingRun(models.Model):
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="runs")
    family = models.CharField(max_length=32, choices=ModelFamily.choices)
    params = models.JSONField()
    seed = models.IntegerField()
    code_version = models.CharField(max_length=64)
    library_versions = models.JSONField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=200, blank=True)
    metrics = models.JSONField(default=dict)
    # The ONNX hash this run produced. Identical bytes from an earlier run are not registered twice (content
    # addressing), so this, not the version's training_run, says which version a run yielded.
    model_sha256 = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life (issue 8 §5): set when the run is queued or requeued, when a worker claims it, and every
    # TRAINING_HEARTBEAT_SECONDS while it trains. The sweeper (inference.services.training.training_runs_sweep)
    # requeues a queued run nobody picked up and a running one whose worker stopped beating.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requeue_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class ApprovalState(models.TextChoices):
    REGISTERED = "registered"
    VALIDATED = "validated"
    REJECTED = "rejected"
    APPROVED = "approved"
    RETIRED = "retired"


# DESIGN §3: registered → validated | rejected → approved → retired. Anything else is refused.
APPROVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    ApprovalState.REGISTERED: frozenset({ApprovalState.VALIDATED, ApprovalState.REJECTED}),
    ApprovalState.VALIDATED: frozenset({ApprovalState.APPROVED, ApprovalState.REJECTED}),
    ApprovalState.APPROVED: frozenset({ApprovalState.RETIRED}),
    ApprovalState.REJECTED: frozenset(),
    ApprovalState.RETIRED: frozenset(),
}


class ImmutableModelVersion(RuntimeError):
    """A registered model version is never edited: only its approval state moves, through the service."""


# Every version belongs to the one model line this system runs: the home-BP titration model. Change-control
# plans are declared per line, so a second model would get its own plans without touching this one's.
TITRATION_LINE = "bp-titration"


class ModelVersion(models.Model):
    """A trained model, addressed by the SHA-256 of its ONNX bytes. Immutable once registered except for its
    approval state, which moves only along APPROVAL_TRANSITIONS.

    The manifest (inference.manifest) is the canonical JSON of the artifact hashes and the whole lineage
    (snapshot, run parameters, seed, code and library versions, metrics, gates), Ed25519-signed. It is stored as
    text, not JSON, so the signed bytes are exactly the stored bytes."""

    sha256 = models.CharField(max_length=64, unique=True)
    sklearn_sha256 = models.CharField(max_length=64)
    background_sha256 = models.CharField(max_length=64)
    family = models.CharField(max_length=32, choices=ModelFamily.choices)
    feature_set_version = models.CharField(max_length=32)
    feature_names = models.JSONField()
    classes = models.JSONField()
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    metrics = models.JSONField()
    gates = models.JSONField(default=dict)
    parity_max_abs_diff = models.FloatField()
    approval_state = models.CharField(max_length=16, choices=ApprovalState.choices, default=ApprovalState.REGISTERED)
    created_at = models.DateTimeField()
    manifest_text = models.TextField(default="")
    manifest_sha256 = models.CharField(max_length=64, default="")
    manifest_signature = models.CharField(max_length=128, default="")  # base64 Ed25519 over manifest_text
    manifest_key_id = models.CharField(max_length=32, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.family}@{self.sha256[:12]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Registration is the only write; approval state moves by a guarded queryset update in the service.
        if not self._state.adding:
            raise ImmutableModelVersion(f"model version {self.short_hash} is registered and cannot be edited")
        super().save(*args, **kwargs)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.manifest_text) if self.manifest_text else {}
        return loaded

    @property
    def gate_outcome(self) -> GateOutcome:
        """The stored gates as typed results (inference.gates): verdict, failures, findings, summaries."""
        return gate_outcome_load(self.gates)

    @property
    def review_reasons(self) -> list[str]:
        """Why the gates say this version needs a full review (outside its change-control plan, fairness that
        could not be judged, …). The safety sign-off must acknowledge each one."""
        return self.gate_outcome.findings

    @property
    def failed_gates(self) -> list[str]:
        return self.gate_outcome.failed


class ChangeControlPlan(models.Model):
    """What a retrain of one model line may change without a full re-review (a predetermined change-control
    plan): the feature-set versions and families it may use, the balanced accuracy it must keep and the
    equalized-odds difference it must stay under. Declared by a clinical safety officer; never edited, a change
    is a new version."""

    model_line = models.CharField(max_length=64, default=TITRATION_LINE)
    version = models.PositiveIntegerField()
    allowed_feature_set_versions = models.JSONField()
    allowed_families = models.JSONField()
    performance_floor = models.FloatField(help_text="minimum balanced accuracy on the validation rows")
    fairness_ceiling = models.FloatField(help_text="maximum equalized-odds difference over judged attributes")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The safety officer's e-signature over the plan's canonical content (governance.change_control). An id, not
    # a foreign key: governance sits above inference (DESIGN §9). Null only for plans declared before plans were
    # signed; the change-control gate does not let those waive a full review.
    signature_id = models.PositiveBigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["model_line", "-version"]
        constraints = [models.UniqueConstraint(fields=["model_line", "version"], name="change_plan_version_per_line")]

    def __str__(self) -> str:
        return f"change-control plan {self.model_line} v{self.version}"


class Arm(models.TextChoices):
    PRODUCTION = "production"
    CANARY = "canary"
    SHADOW = "shadow"


class ServingPointer(models.Model):
    """Which version serves an arm: an alias, separate from approval (STYLE.md, mlflow)."""

    arm = models.CharField(max_length=16, choices=Arm.choices, unique=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    since = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.arm} → {self.model_version}"


class ServingPointerEvent(models.Model):
    """History of every pointer move: answers which version served an arm at any time."""

    arm = models.CharField(max_length=16, choices=Arm.choices)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_at = models.DateTimeField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.CharField(max_length=64)
    # A rollback undoes the move before it; the history replays these to know what served before (rollback
    # twice goes further back instead of flipping back to the version just rolled back).
    is_rollback = models.BooleanField(default=False)
    # The operator's words for a rollback; kept here, only a digest goes to the audit ledger (no free text there).
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-set_at"]

    def __str__(self) -> str:
        return f"{self.arm} → {self.model_version or 'none'} at {self.set_at:%Y-%m-%d %H:%M}"
