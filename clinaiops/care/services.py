"""Writes to clinical records. Each writes its audit event in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.models import (
    Alert,
    AlertKind,
    AlertPriority,
    AlertStatus,
    BreakGlassGrant,
    CareTeam,
    DoseLog,
    Patient,
    Reading,
    RegimenChange,
    Symptom,
)
from clinaiops.care.validation import reading_problems
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import Conflict, InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import MAX_STEP, MIN_STEP


@dataclass(frozen=True)
class ReadingInput:
    taken_at: datetime
    systolic: int
    diastolic: int
    heart_rate: int | None
    source: str


@transaction.atomic
def patient_enroll(
    *,
    actor: User | None,
    user: User,
    code: str,
    care_team: CareTeam,
    sex: str,
    birth_year: int,
    race_ethnicity: str,
    skin_tone: int,
    diabetes: bool = False,
    ckd: bool = False,
    current_step: int = 0,
    target_sbp: int = 130,
    target_dbp: int = 80,
    enrolled_at: datetime | None = None,
) -> Patient:
    if user.role != Role.PATIENT:
        raise ValidationFailed("Only a patient account can be enrolled.", fields={"user": ["Not a patient account."]})
    patient = Patient.objects.create(
        user=user,
        code=code,
        care_team=care_team,
        sex=sex,
        birth_year=birth_year,
        race_ethnicity=race_ethnicity,
        skin_tone=skin_tone,
        diabetes=diabetes,
        ckd=ckd,
        current_step=current_step,
        target_sbp=target_sbp,
        target_dbp=target_dbp,
        enrolled_at=enrolled_at or timezone.now(),
    )
    audit_record(
        action=AuditAction.PATIENT_ENROLLED,
        object_type="patient",
        object_id=patient.pk,
        actor=actor,
        system_reason="cohort_seed" if actor is None else "",
        payload={"care_team_id": care_team.pk, "step": current_step},
    )
    return patient


def reading_store(*, patient: Patient, data: ReadingInput, now: datetime | None = None) -> tuple[Reading, bool]:
    """Validate and store one reading; returns (reading, created). A resend of the same measurement (same
    patient, time and source, same values) returns the stored one; different values for the same natural
    key are a conflict. The caller holds the transaction and writes the audit event."""
    problems = reading_problems(
        taken_at=data.taken_at,
        systolic=data.systolic,
        diastolic=data.diastolic,
        heart_rate=data.heart_rate,
        now=now or timezone.now(),
    )
    if problems:
        raise ValidationFailed("The reading is not plausible and was not stored.", fields=problems)
    existing = Reading.objects.filter(patient=patient, taken_at=data.taken_at, source=data.source).first()
    if existing is not None:
        if (existing.systolic, existing.diastolic, existing.heart_rate) == (
            data.systolic,
            data.diastolic,
            data.heart_rate,
        ):
            return existing, False
        raise Conflict(
            "A different reading from this source at this time is already stored.",
            fields={"taken_at": ["Already used by another reading from the same source."]},
        )
    try:
        with transaction.atomic():
            reading = Reading.objects.create(
                patient=patient,
                taken_at=data.taken_at,
                systolic=data.systolic,
                diastolic=data.diastolic,
                heart_rate=data.heart_rate,
                source=data.source,
                received_at=now or timezone.now(),
            )
    except IntegrityError as exc:  # a concurrent resend won the race
        raise Conflict("This reading was stored by a concurrent request.", code="duplicate_reading") from exc
    return reading, True


def alert_open(*, patient: Patient, kind: AlertKind, reading: Reading | None, now: datetime) -> tuple[Alert, bool]:
    """Open a P0 alert unless one of this kind is already open for the patient. Caller holds the transaction."""
    existing = Alert.objects.filter(patient=patient, kind=kind, status=AlertStatus.OPEN).first()
    if existing is not None:
        return existing, False
    alert = Alert.objects.create(patient=patient, kind=kind, priority=AlertPriority.P0, reading=reading, opened_at=now)
    audit_record(
        action=AuditAction.ALERT_OPENED,
        object_type="alert",
        object_id=alert.pk,
        system_reason="safety_rule",
        payload={"patient_id": patient.pk, "kind": str(kind), "reading_id": reading.pk if reading else None},
    )
    return alert, True


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: User) -> Alert:
    updated = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=actor
    )
    if updated != 1:
        raise InvalidTransition("This alert is no longer open.")
    audit_record(
        action=AuditAction.ALERT_ACKNOWLEDGED,
        object_type="alert",
        object_id=alert.pk,
        actor=actor,
        payload={"patient_id": alert.patient_id},
    )
    alert.refresh_from_db()
    return alert


def autonomy_pause(*, patient: Patient, cause: str) -> None:
    if patient.autonomy_paused:
        return
    Patient.objects.filter(pk=patient.pk).update(autonomy_paused=True)
    patient.autonomy_paused = True
    audit_record(
        action=AuditAction.AUTONOMY_PAUSED,
        object_type="patient",
        object_id=patient.pk,
        system_reason="safety_rule",
        payload={"cause": cause},
    )


@transaction.atomic
def regimen_change(
    *,
    patient: Patient,
    to_step: int,
    actor: User | None,
    cause: str,
    at: datetime | None = None,
    system_reason: str = "patient_acted_on_recommendation",
) -> None:
    if not MIN_STEP <= to_step <= MAX_STEP:
        raise ValidationFailed("That step is not on the regimen ladder.", fields={"to_step": ["Off the ladder."]})
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    if locked.current_step == to_step:
        return
    RegimenChange.objects.create(
        patient=locked,
        from_step=locked.current_step,
        to_step=to_step,
        changed_at=at or timezone.now(),
        changed_by=actor,
        cause=cause,
    )
    audit_record(
        action=AuditAction.REGIMEN_CHANGED,
        object_type="patient",
        object_id=patient.pk,
        actor=actor,
        system_reason="" if actor else system_reason,
        payload={"from_step": locked.current_step, "to_step": to_step, "cause": cause},
    )
    Patient.objects.filter(pk=patient.pk).update(current_step=to_step)
    patient.current_step = to_step


@transaction.atomic
def autonomy_resume(*, actor: User, patient: Patient) -> None:
    """A clinician resumes autonomous delivery after reviewing the safety event that paused it."""
    if actor.role != Role.CLINICIAN or not patient.care_team.members.filter(pk=actor.pk).exists():
        raise PermissionRefused("Only a clinician on this patient's care team can resume autonomy.")
    if Patient.objects.filter(pk=patient.pk, autonomy_paused=True).update(autonomy_paused=False) != 1:
        return
    patient.autonomy_paused = False
    audit_record(action=AuditAction.AUTONOMY_RESUMED, object_type="patient", object_id=patient.pk, actor=actor)


def symptom_store(*, patient: Patient, kind: str, reported_at: datetime) -> Symptom:
    return Symptom.objects.create(patient=patient, kind=kind, reported_at=reported_at)


def dose_log_store(*, patient: Patient, day: date, taken: bool) -> DoseLog:
    dose, _ = DoseLog.objects.update_or_create(
        patient=patient, day=day, defaults={"taken": taken, "step": patient.current_step}
    )
    return dose


BREAK_GLASS_MINUTES = 60
MIN_BREAK_GLASS_REASON = 10


def break_glass_open(*, actor: User, patient_code: str, reason: str) -> BreakGlassGrant:
    """Grant a clinician temporary access to a patient outside their care teams. The typed reason is kept on
    the grant (not in the audit payload, which holds only its digest) and a P1 alert goes to the safety
    officer."""
    if actor.role != Role.CLINICIAN:
        raise PermissionRefused("Only clinicians can use emergency access.")
    reason = (reason or "").strip()
    if len(reason) < MIN_BREAK_GLASS_REASON:
        raise ValidationFailed(
            "Say why you need emergency access.",
            fields={"reason": [f"Give a reason of at least {MIN_BREAK_GLASS_REASON} characters."]},
        )
    patient = Patient.objects.filter(code=(patient_code or "").strip().upper()).first()
    if patient is None:
        raise ValidationFailed("No patient has that code.", fields={"patient_code": ["Unknown patient code."]})
    now = timezone.now()
    with transaction.atomic():
        grant = BreakGlassGrant.objects.create(
            user=actor,
            patient=patient,
            reason=reason,
            granted_at=now,
            expires_at=now + timedelta(minutes=BREAK_GLASS_MINUTES),
        )
        audit_record(
            action=AuditAction.BREAK_GLASS,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            payload={"grant_id": grant.pk, "reason_sha256": canonical_sha256(reason), "minutes": BREAK_GLASS_MINUTES},
        )
        existing = Alert.objects.filter(patient=patient, kind=AlertKind.BREAK_GLASS, status=AlertStatus.OPEN).first()
        if existing is None:
            alert = Alert.objects.create(
                patient=patient, kind=AlertKind.BREAK_GLASS, priority=AlertPriority.P1, opened_at=now
            )
            audit_record(
                action=AuditAction.ALERT_OPENED,
                object_type="alert",
                object_id=alert.pk,
                system_reason="break_glass",
                payload={"patient_id": patient.pk, "kind": AlertKind.BREAK_GLASS, "grant_id": grant.pk},
            )
    return grant
