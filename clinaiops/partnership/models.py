from __future__ import annotations

from django.conf import settings
from django.db import models

from clinaiops.care.models import Patient
from clinaiops.core.crypto.fields import EncryptedTextField
from clinaiops.partnership.goals import GOAL_SPECS, GoalKindCode


class GoalKind(models.TextChoices):
    SODIUM = GoalKindCode.SODIUM.value, GOAL_SPECS[GoalKindCode.SODIUM].label
    ACTIVITY = GoalKindCode.ACTIVITY.value, GOAL_SPECS[GoalKindCode.ACTIVITY].label
    SLEEP = GoalKindCode.SLEEP.value, GOAL_SPECS[GoalKindCode.SLEEP].label
    ADHERENCE = GoalKindCode.ADHERENCE.value, GOAL_SPECS[GoalKindCode.ADHERENCE].label


class CheckInKind(models.TextChoices):
    """What a patient reports day by day; adherence comes from the dose log instead."""

    SODIUM = GoalKind.SODIUM.value, GoalKind.SODIUM.label
    ACTIVITY = GoalKind.ACTIVITY.value, GoalKind.ACTIVITY.label
    SLEEP = GoalKind.SLEEP.value, GoalKind.SLEEP.label


class LifestyleGoal(models.Model):
    """A lifestyle goal the clinician agrees with the patient (the BP target lives on Patient). Changing a goal's
    target updates it in place; ending it keeps the row (ended_at), so the history stays, and the ledger holds
    every change."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lifestyle_goals")
    kind = models.CharField(max_length=16, choices=GoalKind.choices)
    target_value = models.DecimalField(max_digits=7, decimal_places=1)
    unit = models.CharField(max_length=32)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind"], condition=models.Q(ended_at__isnull=True), name="goal_one_active_per_kind"
            ),
            models.CheckConstraint(condition=models.Q(target_value__gt=0), name="goal_target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} goal of {self.patient_id}"


class GoalCheckIn(models.Model):
    """A patient's own report for one day (salt, minutes active, hours slept), for goal progress. One per kind
    and day; a correction replaces it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="goal_checkins")
    kind = models.CharField(max_length=16, choices=CheckInKind.choices)
    day = models.DateField()
    value = models.DecimalField(max_digits=7, decimal_places=1)
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "kind", "day"], name="checkin_one_per_kind_day"),
            models.CheckConstraint(condition=models.Q(value__gte=0), name="checkin_value_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} check-in {self.day}"


class CareNote(models.Model):
    """A clinician's note on a patient. Append-only: a correction is a new note. Private to the care team unless
    `visible_to_patient`; the text is encrypted at rest and never enters the ledger (only its digest)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="care_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField()
    body = EncryptedTextField()
    visible_to_patient = models.BooleanField(default=False)

    class Meta:
        ordering = ["-written_at", "-pk"]
        indexes = [models.Index(fields=["patient", "visible_to_patient", "written_at"])]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.patient_id}"


class FollowUpPlan(models.Model):
    """When the care team last followed the patient up, and a clinician's override of the rule's next date.
    The rule itself (clinaiops.partnership.followup) is computed from the data each time, never stored."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="followup_plan")
    last_followup_on = models.DateField(null=True, blank=True)
    last_followup_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_due_on = models.DateField(null=True, blank=True)
    override_reason = EncryptedTextField(blank=True, default="")
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # An override always says who set it and when (its reason is required by the service).
            models.CheckConstraint(
                condition=models.Q(override_due_on__isnull=True)
                | (models.Q(override_by__isnull=False) & models.Q(override_at__isnull=False)),
                name="followup_override_attributed",
            ),
        ]

    def __str__(self) -> str:
        return f"follow-up plan of {self.patient_id}"
