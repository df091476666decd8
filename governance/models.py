from __future__ import annotations

from django.conf import settings
from django.db import models

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.crypto.fields import EncryptedTextField


class SignatureMeaning(models.TextChoices):
    REVIEWED = "reviewed"
    APPROVED = "approved"
    REJECTED = "rejected"
    MODIFIED = "modified"
    SIGNED_OFF = "signed_off"
    AUTHORED = "authored"
    # The stop switch (governance.stop): the signer stops, or resumes, the AI's part in care.
    STOPPED = "stopped"
    RESUMED = "resumed"


class Signature(models.Model):
    """An electronic signature (21 CFR 11.50/11.70): who, when (UTC), what it means, and the SHA-256 of the
    signed record's canonical content, so it cannot be transferred to another record or survive an edit."""

    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=150)
    signer_role = models.CharField(max_length=32)
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=16, choices=SignatureMeaning.choices)
    record_type = models.CharField(max_length=64)
    record_id = models.CharField(max_length=64)
    record_sha256 = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["record_type", "record_id"])]

    def __str__(self) -> str:
        return f"{self.printed_name} — {self.meaning} — {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def manifestation(self) -> str:
        return str(self)


class ApprovalPolicy(models.Model):
    """The global approval policy. Never edited: a change is a new version."""

    version = models.PositiveIntegerField(unique=True)
    # Safety thresholds (ACC/AHA 2017 hypertensive crisis ≥180/120; hypotension <90/60).
    crisis_sbp = models.PositiveSmallIntegerField(default=180)
    crisis_dbp = models.PositiveSmallIntegerField(default=120)
    hypotension_sbp = models.PositiveSmallIntegerField(default=90)
    hypotension_dbp = models.PositiveSmallIntegerField(default=60)
    hypotension_window_hours = models.PositiveSmallIntegerField(default=24)
    hypotension_min_readings = models.PositiveSmallIntegerField(default=2)
    # Ceilings for per-patient autonomy bounds, and the defaults a new patient gets.
    max_step_change = models.PositiveSmallIntegerField(default=1)
    min_step = models.PositiveSmallIntegerField(default=0)
    max_step = models.PositiveSmallIntegerField(default=6)
    min_confidence = models.FloatField(default=0.80)
    min_readings = models.PositiveSmallIntegerField(default=6)
    min_readings_window_days = models.PositiveSmallIntegerField(default=7)
    # When set, a change to this policy waits for a second, different clinical safety officer (issue 11).
    requires_second_signer = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    signature = models.OneToOneField(Signature, null=True, blank=True, on_delete=models.PROTECT)
    # Why this version was made, typed by the officer: encrypted at rest, a keyed digest in the ledger.
    change_reason = EncryptedTextField(blank=True, default="")
    # The countersignature, when the previous version required a second signer.
    second_signature = models.OneToOneField(
        Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"approval policy v{self.version}"


class PolicyChangeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a second signer"
    APPLIED = "applied", "Countersigned and in force"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PolicyChange(models.Model):
    """A signed approval-policy change waiting for a second signer, because the policy in force requires one.

    The proposer's signature covers the version it would become (`base_version` + 1); a different clinical safety
    officer's countersignature creates that version. If another version lands first the change cannot apply any
    more and must be withdrawn and proposed again, so nobody countersigns a diff against a policy that is gone."""

    base_policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT, related_name="+")
    values = models.JSONField()  # every policy setting of the proposed version
    requires_second_signer = models.BooleanField()
    reason = EncryptedTextField()
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    proposer_signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=PolicyChangeStatus.choices, default=PolicyChangeStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_signature = models.OneToOneField(
        Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdraw_reason = EncryptedTextField(blank=True, default="")
    policy = models.OneToOneField(
        ApprovalPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="pending_change"
    )

    class Meta:
        ordering = ["-proposed_at"]
        constraints = [
            # One change waits at a time: two pending diffs against the same version could not both apply.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="pending"), name="policy_change_one_pending"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="applied") | models.Q(policy__isnull=False),
                name="policy_change_applied_has_policy",
            ),
        ]

    def __str__(self) -> str:
        return f"policy change {self.pk} ({self.status})"


class AutonomyBounds(models.Model):
    """A version of one patient's autonomy bounds, set and signed by an assigned clinician."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="autonomy_bounds")
    version = models.PositiveIntegerField()
    autonomy_enabled = models.BooleanField(default=True)
    max_step_change = models.PositiveSmallIntegerField()
    min_step = models.PositiveSmallIntegerField()
    max_step = models.PositiveSmallIntegerField()
    min_confidence = models.FloatField()
    min_readings = models.PositiveSmallIntegerField()
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT)
    set_at = models.DateTimeField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["patient", "version"], name="bounds_version_per_patient")]
        verbose_name_plural = "autonomy bounds"

    def __str__(self) -> str:
        return f"bounds v{self.version} for patient {self.patient_id}"


class SignoffRole(models.TextChoices):
    """The two roles whose sign-offs promote a model version (DESIGN §3)."""

    ML_ENGINEER = "ml_engineer", "ML engineer"
    SAFETY_OFFICER = "safety_officer", "Clinical safety officer"


class ModelSignoff(models.Model):
    """One of the two e-signed sign-offs a validated model version needs before it is approved: one by an ML
    engineer, one by a clinical safety officer, two different people. The signature is bound to the version's
    signed-manifest hash, so it cannot be carried over to another version or survive a changed manifest. The
    safety officer's sign-off also carries the review findings it acknowledges (outside the change-control plan,
    fairness that could not be judged, …); they are part of the signed content."""

    model_version = models.ForeignKey("inference.ModelVersion", on_delete=models.PROTECT, related_name="signoffs")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="model_signoffs")
    role = models.CharField(max_length=32, choices=SignoffRole.choices)
    manifest_sha256 = models.CharField(max_length=64)
    acknowledged_review_reasons = models.JSONField(default=list)
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT)
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at"]
        constraints = [
            # The database, not only the service, guarantees one sign-off per role and two distinct people.
            models.UniqueConstraint(fields=["model_version", "role"], name="signoff_one_per_role"),
            models.UniqueConstraint(fields=["model_version", "signer"], name="signoff_one_per_signer"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} sign-off of model version {self.model_version_id}"


class AIStopScope(models.TextChoices):
    GLOBAL = "global", "Everyone"
    CARE_TEAM = "care_team", "One clinic"


class AIStop(models.Model):
    """A stop of the AI (EU AI Act art. 14(4)(e), human oversight), signed by a clinical safety officer, for
    everyone or for one clinic (care team). While it is in force (not resumed), evaluations of the patients in
    its scope use the rules alone and every proposal goes to a clinician (clinaiops.loops.services.evaluation).
    Resuming is a second signature on the same row; a stop is never deleted, so the rows are the history.

    `uuid` names the stop before it is stored, so the stop signature can be bound to it. The reasons are free
    text typed by the officer: encrypted at rest, and only as a keyed digest in the ledger (DESIGN §4)."""

    uuid = models.UUIDField(unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=AIStopScope.choices)
    care_team = models.ForeignKey(CareTeam, null=True, blank=True, on_delete=models.PROTECT, related_name="ai_stops")
    reason = EncryptedTextField()
    stopped_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stopped_at = models.DateTimeField()
    stop_signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resumed_at = models.DateTimeField(null=True, blank=True)
    resume_reason = EncryptedTextField(blank=True, default="")
    resume_signature = models.OneToOneField(
        Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-stopped_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(scope="global", care_team__isnull=True))
                | (models.Q(scope="care_team", care_team__isnull=False)),
                name="ai_stop_scope_matches_care_team",
            ),
            models.CheckConstraint(
                condition=(models.Q(resumed_at__isnull=True, resumed_by__isnull=True, resume_signature__isnull=True))
                | (models.Q(resumed_at__isnull=False, resumed_by__isnull=False, resume_signature__isnull=False)),
                name="ai_stop_resume_is_signed",
            ),
            # At most one stop in force per scope: two officers stopping at once cannot leave one stop resumable
            # while the other keeps the AI stopped unseen.
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(scope="global", resumed_at__isnull=True),
                name="ai_stop_one_global_in_force",
            ),
            models.UniqueConstraint(
                fields=["care_team"],
                condition=models.Q(scope="care_team", resumed_at__isnull=True),
                name="ai_stop_one_per_clinic_in_force",
            ),
        ]
        indexes = [models.Index(fields=["resumed_at", "scope"], name="ai_stop_in_force_idx")]

    def __str__(self) -> str:
        where = "everyone" if self.scope == AIStopScope.GLOBAL else f"care team {self.care_team_id}"
        return f"AI stop for {where} at {self.stopped_at:%Y-%m-%d %H:%M} UTC"

    @property
    def in_force(self) -> bool:
        return self.resumed_at is None
