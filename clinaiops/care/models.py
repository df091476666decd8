from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from clinaiops.core.crypto.blind_index import KIND_FAMILY_NAME, KIND_FULL_NAME, KIND_MRN
from clinaiops.core.crypto.fields import (
    BlindIndexField,
    EncryptedDateField,
    EncryptedTextField,
    update_fields_with_blind_indexes,
)
from clinaiops.core.regimen import MAX_STEP, MIN_STEP, regimen_label


class CareTeam(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="care_teams", blank=True)
    # The last person an unacknowledged P0 alert escalates to (clinaiops/care/escalation_chain.py).
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="care_teams_led"
    )

    def __str__(self) -> str:
        return self.name


class EscalationChainMember(models.Model):
    """One place on a care team's escalation chain: who an unacknowledged P0 alert goes to next, in `position`
    order. A team with no rows uses its clinicians in the order they joined; the lead always comes last."""

    team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="escalation_chain")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["team", "position"]
        constraints = [
            models.UniqueConstraint(fields=["team", "position"], name="escalation_chain_one_per_position"),
            models.UniqueConstraint(fields=["team", "user"], name="escalation_chain_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id}#{self.position}: {self.user_id}"


class Sex(models.TextChoices):
    FEMALE = "female"
    MALE = "male"


class Patient(models.Model):
    """A patient enrolled in home BP care. The pseudonymous code names the patient wherever an identifier is not
    needed (queue, ledger, datasets); the direct identifiers (name, date of birth, MRN) are encrypted at rest and
    shown only in the patient banner of the patient's own pages, which are audited reads (DESIGN §6)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="patient")
    code = models.CharField(max_length=16, unique=True)
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    # Direct identifiers (HIPAA §164.514(b)(2)(i)), AES-GCM envelopes. Empty only for patients enrolled before
    # they existed; patient_enroll requires them.
    given_name = EncryptedTextField(blank=True, default="")
    family_name = EncryptedTextField(blank=True, default="")
    date_of_birth = EncryptedDateField(null=True, blank=True)
    mrn = EncryptedTextField(blank=True, default="")
    # Keyed blind indexes for lookup (clinaiops.core.crypto.blind_index), recomputed on every save. The MRN's is
    # unique: one hospital number, one patient.
    mrn_index = BlindIndexField(kind=KIND_MRN, sources=["mrn"], unique=True)
    full_name_index = BlindIndexField(kind=KIND_FULL_NAME, sources=["given_name", "family_name"], db_index=True)
    family_name_index = BlindIndexField(kind=KIND_FAMILY_NAME, sources=["family_name"], db_index=True)
    sex = models.CharField(max_length=8, choices=Sex.choices)
    # Kept in the clear: the model's age feature needs it, and a year of birth is not an identifier under the HIPAA
    # safe harbour (§164.514(b)(2)(i)(C) removes all elements of dates *except the year*) (docs/security.md).
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

    def save(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = update_fields_with_blind_indexes(Patient, kwargs["update_fields"])
        super().save(*args, **kwargs)

    @property
    def regimen(self) -> str:
        return regimen_label(self.current_step)

    @property
    def banner_name(self) -> str:
        """The name as a patient banner shows it: "FAMILY, Given" (a family name in capitals is read first)."""
        if not (self.family_name or self.given_name):
            return ""
        return ", ".join(part for part in (self.family_name.upper(), self.given_name) if part)

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.now().date())

    def age_on(self, day: date) -> int | None:
        """Age in whole years on `day`, from the date of birth (the banner's age, not the model's feature)."""
        born = self.date_of_birth
        if born is None:
            return None
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


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
    # When the row last changed (stored, or a later FHIR heart rate filled it): what `?since=` syncs on.
    updated_at = models.DateTimeField(default=timezone.now)
    # The UTC offset the device sent with taken_at, in minutes east of UTC (null: not known), so the patient's own
    # wall-clock time is given back as sent; taken_at itself is stored as an instant.
    utc_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    # The sender's identifier of the measurement (a FHIR Observation.identifier, "system|value"); "" when none.
    # Kept here for the API's answers; its uniqueness per patient (a resent Bundle stores nothing twice, whatever
    # month it names) is ReadingIdentifier's key, since care_reading is partitioned by month on PostgreSQL and a
    # unique key there must include taken_at.
    identifier = models.CharField(max_length=255, blank=True, default="")

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
        indexes = [models.Index(fields=["patient", "taken_at"]), models.Index(fields=["patient", "updated_at"])]

    def __str__(self) -> str:
        return f"reading {self.pk}"


class ReadingIdentifier(models.Model):
    """The sender's identifier of a reading, once per patient (FHIR conditional create, `ifNoneExist`). A small
    table of its own, not partitioned: on PostgreSQL care_reading is partitioned by month of taken_at, and a unique
    key of a partitioned table must include taken_at, so it could only say "once per month"; a Bundle resent with
    the same identifier and another effective month would then be stored twice. This key says it once for all
    months, and the reading's insert claims it first, in the same statement (clinaiops.care.services)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    identifier = models.CharField(max_length=255)
    # No database foreign key: PostgreSQL can only reference a partitioned table through a key that includes the
    # partition key, (id, taken_at). The claim and its reading are written in one statement, and readings are never
    # deleted (PROTECT still stops the ORM from trying). Nothing looks a claim up by reading, so no index either.
    reading = models.ForeignKey(
        Reading, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "identifier"], name="reading_identifier_once_per_patient")
        ]

    def __str__(self) -> str:
        return f"{self.identifier} → reading {self.reading_id}"


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


class AlertDisposition(models.TextChoices):
    """What the person who acknowledged an alert did about it. The first four close a clinical (safety) alert;
    the access ones close a security (break-glass) alert; "other" needs the note to say what."""

    CONTACTED_PATIENT = "contacted_patient", "Contacted the patient"
    ADVISED_EMERGENCY = "advised_emergency", "Advised the emergency department"
    FALSE_READING = "false_reading", "False reading (device or technique)"
    ACCESS_JUSTIFIED = "access_justified", "Access was justified"
    ACCESS_REFERRED = "access_referred", "Access not justified: referred to the privacy officer"
    OTHER = "other", "Other (say what in the note)"


CLINICAL_DISPOSITIONS = (
    AlertDisposition.CONTACTED_PATIENT,
    AlertDisposition.ADVISED_EMERGENCY,
    AlertDisposition.FALSE_READING,
    AlertDisposition.OTHER,
)
SECURITY_DISPOSITIONS = (AlertDisposition.ACCESS_JUSTIFIED, AlertDisposition.ACCESS_REFERRED, AlertDisposition.OTHER)


class Alert(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    priority = models.CharField(max_length=4, choices=AlertPriority.choices)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    # No database foreign key (PostgreSQL cannot reference the partitioned care_reading by id alone): the alert is
    # opened in the transaction that stores its reading (loops.services.ingest), and readings are never deleted.
    reading = models.ForeignKey(Reading, null=True, blank=True, on_delete=models.PROTECT, db_constraint=False)
    opened_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    # Who must act now: the person the escalation chain last notified (clinaiops/loops/services/escalation.py).
    # `escalation_step` counts the people of the chain notified so far (1 once the first was, at opening);
    # `escalated_at` is the time of the last step. Once the chain is spent the whole care team is notified and
    # `escalation_done` stops the sweep.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts_owned"
    )
    escalation_step = models.PositiveSmallIntegerField(default=0)
    escalation_done = models.BooleanField(default=False)
    disposition = models.CharField(max_length=32, choices=AlertDisposition.choices, blank=True)
    # Clinician free text, encrypted at rest (DESIGN §6); the ledger holds only its keyed digest.
    acknowledgement_note = EncryptedTextField(blank=True, default="")
    # A break-glass alert names the grant it reports: who opened emergency access, why, and until when.
    break_glass_grant = models.ForeignKey(
        "BreakGlassGrant", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open safety alert of a kind per patient: a burst of crisis readings is one alert, not ten. Every
            # emergency access is its own security alert, though: a second clinician breaking the glass on the same
            # patient must not disappear into the first one's alert.
            models.UniqueConstraint(
                fields=["patient", "kind"],
                condition=models.Q(status="open") & ~models.Q(kind="break_glass"),
                name="alert_one_open_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.priority} {self.kind} ({self.status})"


class SymptomKind(models.TextChoices):
    DIZZINESS = "dizziness"
    SYNCOPE = "syncope"
    HEADACHE = "headache"
    CHEST_PAIN = "chest_pain"
    OTHER = "other"


class SymptomSeverity(models.TextChoices):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Symptom(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="symptoms")
    kind = models.CharField(max_length=16, choices=SymptomKind.choices)
    reported_at = models.DateTimeField()
    # How bad the patient says it is; "" when not given.
    severity = models.CharField(max_length=8, choices=SymptomSeverity.choices, blank=True, default="")
    # What the patient typed about it, encrypted; optional.
    note = EncryptedTextField(blank=True, default="")

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
    reason = EncryptedTextField()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "expires_at"])]

    def __str__(self) -> str:
        return f"break-glass {self.user_id} → {self.patient_id}"


class NotificationKind(models.TextChoices):
    ALERT_ASSIGNED = "alert_assigned", "A new alert is yours"
    ALERT_ESCALATED = "alert_escalated", "An alert was escalated to you"
    ALERT_TEAM = "alert_team", "An alert is still unacknowledged: the whole care team is notified"
    SECURITY_ALERT = "security_alert", "A security alert needs checking"


class NotificationInbox(models.TextChoices):
    CLINICAL = "clinical", "Clinical"
    SECURITY = "security", "Security"


class Notification(models.Model):
    """One message in a user's portal inbox. The inbox is the channel of record: the row is written in the
    transaction of the change it reports, and the external channels (email, a pager) are sent after commit
    (clinaiops/care/notifications.py). It names the alert, never the patient's identifiers."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    inbox = models.CharField(max_length=16, choices=NotificationInbox.choices)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    # The NOTIFIERS channels this notice reached (comma-separated names), and when all of them had: a channel that
    # failed is tried again by the escalation sweep, up to NOTIFICATION_MAX_ATTEMPTS times.
    delivered_channels = models.CharField(max_length=200, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "inbox", "read_at"]),
            models.Index(fields=["delivered_at", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id}"
