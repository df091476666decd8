from __future__ import annotations

from django.conf import settings
from django.db import models

from clinaiops.core.regimen import MAX_STEP, MIN_STEP, regimen_label


class CareTeam(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="care_teams", blank=True)

    def __str__(self) -> str:
        return self.name


class Sex(models.TextChoices):
    FEMALE = "female"
    MALE = "male"


class Patient(models.Model):
    """A patient enrolled in home BP care. Identified in the portal by a pseudonymous code; direct
    identifiers (name, date of birth, MRN) are not stored yet (see DESIGN §6 note in docs)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="patient")
    code = models.CharField(max_length=16, unique=True)
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    sex = models.CharField(max_length=8, choices=Sex.choices)
    birth_year = models.PositiveSmallIntegerField()
    race_ethnicity = models.CharField(max_length=16)
    skin_tone = models.PositiveSmallIntegerField(help_text="Fitzpatrick type 1–6")
    diabetes = models.BooleanField(default=False)
    ckd = models.BooleanField(default=False)
    current_step = models.PositiveSmallIntegerField(default=0)
    target_sbp = models.PositiveSmallIntegerField(default=130)
    target_dbp = models.PositiveSmallIntegerField(default=80)
    # Paused by a safety alert; resumed only by a clinician.
    autonomy_paused = models.BooleanField(default=False)
    enrolled_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_step__gte=MIN_STEP, current_step__lte=MAX_STEP),
                name="patient_step_on_ladder",
            ),
            models.CheckConstraint(
                condition=models.Q(skin_tone__gte=1, skin_tone__lte=6), name="patient_skin_tone_range"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def regimen(self) -> str:
        return regimen_label(self.current_step)


class ReadingSource(models.TextChoices):
    CUFF = "cuff", "Home cuff"
    PPG = "ppg", "PPG wearable"
    ECG = "ecg", "ECG wearable"
    MANUAL = "manual", "Manual entry"


class Reading(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="readings")
    taken_at = models.DateTimeField()
    systolic = models.PositiveSmallIntegerField()
    diastolic = models.PositiveSmallIntegerField()
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=ReadingSource.choices)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["taken_at"]
        constraints = [
            # A device resending the same measurement must not create a second reading (exactly once).
            models.UniqueConstraint(fields=["patient", "taken_at", "source"], name="reading_natural_key"),
            models.CheckConstraint(condition=models.Q(systolic__gte=50, systolic__lte=300), name="reading_sbp_range"),
            models.CheckConstraint(condition=models.Q(diastolic__gte=25, diastolic__lte=200), name="reading_dbp_range"),
            models.CheckConstraint(
                condition=models.Q(diastolic__lt=models.F("systolic")), name="reading_dbp_below_sbp"
            ),
        ]
        indexes = [models.Index(fields=["patient", "taken_at"])]

    def __str__(self) -> str:
        return f"reading {self.pk}"


class AlertKind(models.TextChoices):
    HYPERTENSIVE_CRISIS = "hypertensive_crisis", "Hypertensive crisis"
    SUSTAINED_HYPOTENSION = "sustained_hypotension", "Sustained hypotension"
    BREAK_GLASS = "break_glass", "Break-glass access"


class AlertPriority(models.TextChoices):
    P0 = "P0"
    P1 = "P1"


class AlertStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    priority = models.CharField(max_length=4, choices=AlertPriority.choices)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    reading = models.ForeignKey(Reading, null=True, blank=True, on_delete=models.PROTECT)
    opened_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open alert of a kind per patient: a burst of crisis readings is one alert, not ten.
            models.UniqueConstraint(
                fields=["patient", "kind"], condition=models.Q(status="open"), name="alert_one_open_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.priority} {self.kind} ({self.status})"


class SymptomKind(models.TextChoices):
    DIZZINESS = "dizziness"
    SYNCOPE = "syncope"
    HEADACHE = "headache"
    CHEST_PAIN = "chest_pain"
    OTHER = "other"


class Symptom(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="symptoms")
    kind = models.CharField(max_length=16, choices=SymptomKind.choices)
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-reported_at"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.reported_at:%Y-%m-%d %H:%M}"


class DoseLog(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="doses")
    day = models.DateField()
    taken = models.BooleanField()
    step = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["patient", "day"], name="dose_one_per_day")]

    def __str__(self) -> str:
        return f"dose {self.day} ({'taken' if self.taken else 'missed'})"


class RegimenChange(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="regimen_changes")
    from_step = models.PositiveSmallIntegerField()
    to_step = models.PositiveSmallIntegerField()
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    # What caused it, as "<object_type>:<id>" (for example "recommendation:42").
    cause = models.CharField(max_length=64)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"step {self.from_step}→{self.to_step}"


class BreakGlassGrant(models.Model):
    """Emergency access to a patient outside the reader's care teams: needs a typed reason, expires, is audited
    and alerts the clinical safety officer (DESIGN §6)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glass_grants")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass_grants")
    reason = models.TextField()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "expires_at"])]

    def __str__(self) -> str:
        return f"break-glass {self.user_id} → {self.patient_id}"
