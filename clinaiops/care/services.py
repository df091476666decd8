"""Writes to clinical records. Each writes its audit event in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.access import administrator_require, care_access_for, care_team_clinician_require
from clinaiops.care.escalation_chain import escalation_chain_for
from clinaiops.care.models import (
    CLINICAL_DISPOSITIONS,
    SECURITY_DISPOSITIONS,
    Alert,
    AlertDisposition,
    AlertKind,
    AlertPriority,
    AlertStatus,
    BreakGlassGrant,
    CareTeam,
    DoseLog,
    NotificationKind,
    Patient,
    Reading,
    ReadingIdentifier,
    RegimenChange,
    Symptom,
)
from clinaiops.care.notifications import alert_notify
from clinaiops.care.selectors import reading_with_identifier
from clinaiops.care.validation import reading_problems, target_problems
from clinaiops.core.crypto.blind_index import KIND_MRN, blind_index_candidates, mrn_normalise
from clinaiops.core.errors import Conflict, InvalidTransition, NotFound, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import MAX_STEP, MIN_STEP


@dataclass(frozen=True)
class ReadingInput:
    taken_at: datetime
    systolic: int
    diastolic: int
    heart_rate: int | None
    source: str
    # The offset the device sent with taken_at, minutes east of UTC (None: not known); given back as sent.
    utc_offset_minutes: int | None = None
    # The sender's identifier of the measurement (FHIR Observation.identifier as "system|value"); "" when none.
    identifier: str = ""


@dataclass(frozen=True)
class PatientIdentifiers:
    """A patient's direct identifiers, as the hospital's registration gives them. Stored encrypted; the MRN in its
    normalised form (no spaces or hyphens, capitals)."""

    given_name: str
    family_name: str
    date_of_birth: date
    mrn: str


MAX_NAME_LENGTH = 100
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def _identifier_problems(identifiers: PatientIdentifiers, *, birth_year: int | None) -> dict[str, list[str]]:
    """What is wrong with the identifiers, in words that never repeat them (error messages reach logs and screens)."""
    problems: dict[str, list[str]] = {}
    if not identifiers.family_name.strip():
        problems["family_name"] = ["Give the family name."]
    for name in ("given_name", "family_name"):
        if len(getattr(identifiers, name).strip()) > MAX_NAME_LENGTH:
            problems.setdefault(name, []).append(f"Keep it under {MAX_NAME_LENGTH} characters.")
    born = identifiers.date_of_birth
    if not EARLIEST_BIRTH_DATE <= born <= timezone.now().date():
        problems["date_of_birth"] = ["The date of birth is not plausible."]
    elif birth_year is not None and born.year != birth_year:
        problems["date_of_birth"] = ["The date of birth is not in the birth year given."]
    if mrn_normalise(identifiers.mrn) is None:
        problems["mrn"] = ["An MRN is 4 to 20 letters and digits (spaces and hyphens are ignored)."]
    return problems


def patient_enroll(
    *,
    actor: User | None,
    user: User,
    code: str,
    care_team: CareTeam,
    identifiers: PatientIdentifiers,
    sex: str,
    race_ethnicity: str,
    skin_tone: int,
    birth_year: int | None = None,
    diabetes: bool = False,
    ckd: bool = False,
    current_step: int = 0,
    target_sbp: int = 130,
    target_dbp: int = 80,
    enrolled_at: datetime | None = None,
) -> Patient:
    """Enrol a patient account in home BP care on a care team. The administrator (Django admin) does this;
    `actor=None` is the synthetic cohort's seeding. The identifiers are stored encrypted, with blind indexes for
    lookup; the birth year (the model's age feature) is taken from the date of birth, and checked against it when
    given. The ledger records neither."""
    administrator_require(actor=actor, action=AuditAction.PATIENT_ENROLLED, object_type="user", object_id=user.pk)
    if user.role != Role.PATIENT:
        raise ValidationFailed("Only a patient account can be enrolled.", fields={"user": ["Not a patient account."]})
    problems = target_problems(target_sbp=target_sbp, target_dbp=target_dbp)
    if problems:
        raise ValidationFailed("The BP target is not plausible.", fields=problems)
    problems = _identifier_problems(identifiers, birth_year=birth_year)
    if problems:
        raise ValidationFailed("The patient's identifiers are incomplete or not plausible.", fields=problems)
    mrn = mrn_normalise(identifiers.mrn)
    assert mrn is not None
    duplicate = Conflict("A patient with that MRN is already enrolled.", fields={"mrn": ["Already enrolled."]})
    # Every listed index key: during a rotation of the index key the other patient may still carry the old one.
    if Patient.objects.filter(mrn_index__in=blind_index_candidates(KIND_MRN, [mrn])).exists():
        raise duplicate
    try:
        with transaction.atomic():
            patient = Patient.objects.create(
                user=user,
                code=code,
                care_team=care_team,
                given_name=identifiers.given_name.strip(),
                family_name=identifiers.family_name.strip(),
                date_of_birth=identifiers.date_of_birth,
                mrn=mrn,
                sex=sex,
                birth_year=identifiers.date_of_birth.year,
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
                system_reason=_seeding(actor),
                payload={"care_team_id": care_team.pk, "step": current_step},
            )
    except IntegrityError:  # a concurrent enrolment of the same MRN won the unique index
        if Patient.objects.filter(mrn_index__in=blind_index_candidates(KIND_MRN, [mrn])).exists():
            raise duplicate from None
        raise
    return patient


# --- Who sees whom: care teams --------------------------------------------------------------------------


def _seeding(actor: User | None) -> str:
    """The system reason of a change the synthetic cohort's seeding makes (no actor), else none."""
    return "cohort_seed" if actor is None else ""


def care_team_create(*, actor: User | None, name: str) -> CareTeam:
    administrator_require(actor=actor, action=AuditAction.CARE_TEAM_CREATED, object_type="care_team", object_id="")
    with transaction.atomic():
        name = (name or "").strip()
        if not name:
            raise ValidationFailed("Name the care team.", fields={"name": ["Required."]})
        if CareTeam.objects.filter(name=name).exists():
            raise Conflict("A care team has that name.", fields={"name": ["Already used."]})
        team = CareTeam.objects.create(name=name)
        audit_record(
            action=AuditAction.CARE_TEAM_CREATED,
            object_type="care_team",
            object_id=team.pk,
            actor=actor,
            system_reason=_seeding(actor),
        )
        return team


def _care_team_membership_set(*, actor: User | None, team: CareTeam, user: User, member: bool) -> bool:
    action = AuditAction.CARE_TEAM_MEMBER_ADDED if member else AuditAction.CARE_TEAM_MEMBER_REMOVED
    administrator_require(actor=actor, action=action, object_type="care_team", object_id=team.pk)
    if member and user.role != Role.CLINICIAN:
        raise ValidationFailed("Only clinicians join care teams.", fields={"user": ["Not a clinician account."]})
    with transaction.atomic():
        if team.members.filter(pk=user.pk).exists() == member:
            return False
        (team.members.add if member else team.members.remove)(user)
        audit_record(
            action=action,
            object_type="care_team",
            object_id=team.pk,
            actor=actor,
            system_reason=_seeding(actor),
            payload={"user_id": user.pk},
        )
        return True


def care_team_member_add(*, actor: User | None, team: CareTeam, user: User) -> bool:
    """Make a clinician a member of a care team, which lets them see its patients. Returns False if they
    already were (nothing is written)."""
    return _care_team_membership_set(actor=actor, team=team, user=user, member=True)


def care_team_member_remove(*, actor: User | None, team: CareTeam, user: User) -> bool:
    """Take a clinician off a care team; they stop seeing its patients at once. Returns False if they were not
    a member."""
    return _care_team_membership_set(actor=actor, team=team, user=user, member=False)


def patient_team_assign(*, actor: User | None, patient: Patient, team: CareTeam) -> bool:
    """Move a patient to another care team: its members see the patient from now on, the old team's do not.
    Returns False if the patient is already on that team."""
    administrator_require(
        actor=actor, action=AuditAction.PATIENT_TEAM_ASSIGNED, object_type="patient", object_id=patient.pk
    )
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.care_team_id == team.pk:
            return False
        Patient.objects.filter(pk=patient.pk).update(care_team=team)
        audit_record(
            action=AuditAction.PATIENT_TEAM_ASSIGNED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            system_reason=_seeding(actor),
            payload={"from_care_team_id": locked.care_team_id, "to_care_team_id": team.pk},
        )
        patient.care_team = team
        return True


def patient_target_set(*, actor: User, patient: Patient, target_sbp: int, target_dbp: int) -> bool:
    """A clinician on the care team sets the patient's home BP target, which the trend chart, the features and
    the patient's wording measure against. Returns False if nothing changed. The ledger holds keyed digests of
    the old and new targets, never the values."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.PATIENT_TARGET_SET)
    with transaction.atomic():
        problems = target_problems(target_sbp=target_sbp, target_dbp=target_dbp)
        if problems:
            raise ValidationFailed("The BP target is not plausible.", fields=problems)
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        before = [locked.target_sbp, locked.target_dbp]
        if before == [target_sbp, target_dbp]:
            return False
        Patient.objects.filter(pk=patient.pk).update(target_sbp=target_sbp, target_dbp=target_dbp)
        audit_record(
            action=AuditAction.PATIENT_TARGET_SET,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            payload={"before_hmac": audit_digest(before), "after_hmac": audit_digest([target_sbp, target_dbp])},
        )
        patient.target_sbp, patient.target_dbp = target_sbp, target_dbp
        return True


# --- Readings, alerts, regimen ---------------------------------------------------------------------------


def reading_store(*, patient: Patient, data: ReadingInput, now: datetime | None = None) -> tuple[Reading, bool]:
    """Validate and store one reading; returns (reading, created). A resend of the same measurement (same
    patient, time and source, or the same sender's identifier, with the same values) returns the stored one;
    different values for the same measurement are a conflict. The caller holds the transaction and writes the
    audit event."""
    now = now or timezone.now()
    problems = reading_problems(
        taken_at=data.taken_at,
        systolic=data.systolic,
        diastolic=data.diastolic,
        heart_rate=data.heart_rate,
        now=now,
    )
    if problems:
        raise ValidationFailed("The reading is not plausible and was not stored.", fields=problems)
    reading = Reading(
        patient=patient,
        taken_at=data.taken_at,
        systolic=data.systolic,
        diastolic=data.diastolic,
        heart_rate=data.heart_rate,
        source=data.source,
        received_at=now,
        updated_at=now,
        utc_offset_minutes=data.utc_offset_minutes,
        identifier=data.identifier,
    )
    if _reading_insert_unless_stored(reading):
        return reading, True
    # Already stored: under its natural key, or (FHIR ifNoneExist) under the sender's identifier, in any month.
    existing = Reading.objects.filter(patient=patient, taken_at=data.taken_at, source=data.source).first()
    if existing is None and data.identifier:
        existing = reading_with_identifier(patient=patient, identifier=data.identifier)
    if existing is None:
        # The insert met a row this statement could not see yet (a snapshot older than the concurrent commit,
        # as under REPEATABLE READ): the caller may try once more (loops.services.ingest._reading_store_once).
        raise Conflict("This reading was stored by a concurrent request.", code="duplicate_reading")
    if (existing.systolic, existing.diastolic, existing.heart_rate) == (data.systolic, data.diastolic, data.heart_rate):
        return existing, False
    raise Conflict(
        "A different reading from this source at this time is already stored.",
        fields={"taken_at": ["Already used by another reading from the same source."]},
    )


def _reading_insert_unless_stored(reading: Reading) -> bool:
    """Insert the reading in one statement, `INSERT … ON CONFLICT DO NOTHING RETURNING id`, and say whether it was
    new (its pk is then set). A unique key already taken (the natural key; with an identifier, the identifier's
    claim) makes it nothing, without an error and so without a savepoint: a resend racing its original waits on the
    key until the original commits, then inserts nothing and finds the stored row with the next statement (READ
    COMMITTED). The check constraints are not conflicts: reading_problems has refused what they would."""
    # Every column but the id, from the instance (which holds the model's defaults): a field added later is stored.
    fields = [field for field in Reading._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    # Only the model's own table and column names are spliced in, quoted; every value is a parameter.
    table, columns = quote(Reading._meta.db_table), ", ".join(quote(field.column) for field in fields)
    params = [field.get_db_prep_save(getattr(reading, field.attname), connection) for field in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    if not reading.identifier:
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING RETURNING {quote('id')}"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        stored = row[0] if row is not None else None
    elif connection.vendor == "postgresql":
        stored = _reading_insert_claiming_identifier(reading, table=table, columns=columns, params=params)
    else:
        # SQLite lets one writer in at a time, so the identifier checked in the insert's own statement stays free
        # until the claim below: two statements, no race.
        claims = quote(ReadingIdentifier._meta.db_table)
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT {placeholders} WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {claims} WHERE patient_id = %s AND identifier = %s) "
            f"ON CONFLICT DO NOTHING RETURNING {quote('id')}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, reading.patient_id, reading.identifier])
            row = cursor.fetchone()
        stored = row[0] if row is not None else None
        if stored is not None:
            ReadingIdentifier.objects.create(
                patient_id=reading.patient_id, identifier=reading.identifier, reading_id=stored
            )
    if stored is None:
        return False
    reading.pk = stored
    reading._state.adding = False
    reading._state.db = connection.alias
    # As Model.save() would: the receivers of a stored reading (the ops metrics' counter) must still hear of it.
    post_save.send(
        sender=Reading, instance=reading, created=True, update_fields=None, raw=False, using=connection.alias
    )
    return True


def _reading_insert_claiming_identifier(reading: Reading, *, table: str, columns: str, params: list[Any]) -> int | None:
    """PostgreSQL: claim the identifier and insert the reading in one statement; the stored reading's id, or None.

    The claim comes first, with the reading's id drawn from its sequence, and the reading is inserted only if the
    claim was made: the side table's unique key (patient, identifier) holds across months, which care_reading's
    keys cannot (they include taken_at), so a resend with the same identifier and any effective time inserts
    nothing, and of two concurrent ones the second waits on the key and then does nothing. A claim made for a
    reading the natural key refused (the same measurement already stored, under another identifier or none) is
    taken back, so no claim names a reading that does not exist."""
    quote = connection.ops.quote_name
    claims = quote(ReadingIdentifier._meta.db_table)
    values = ", ".join(["%s"] * len(params))
    sql = (
        f"WITH claim AS (INSERT INTO {claims} (patient_id, identifier, reading_id) "  # noqa: S608
        f"VALUES (%s, %s, nextval(pg_get_serial_sequence('{Reading._meta.db_table}', 'id'))) "
        "ON CONFLICT (patient_id, identifier) DO NOTHING RETURNING reading_id), "
        f"stored AS (INSERT INTO {table} ({quote('id')}, {columns}) SELECT claim.reading_id, {values} FROM claim "
        f"ON CONFLICT DO NOTHING RETURNING {quote('id')}) "
        "SELECT (SELECT reading_id FROM claim), (SELECT id FROM stored)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [reading.patient_id, reading.identifier, *params])
        claimed, stored = cursor.fetchone()
        if claimed is not None and stored is None:
            cursor.execute(
                f"DELETE FROM {claims} WHERE patient_id = %s AND identifier = %s AND reading_id = %s",  # noqa: S608
                [reading.patient_id, reading.identifier, claimed],
            )
    return int(stored) if stored is not None else None


def alert_open(*, patient: Patient, kind: AlertKind, reading: Reading | None, now: datetime) -> tuple[Alert, bool]:
    """Open a P0 alert unless one of this kind is already open for the patient. Caller holds the transaction."""
    existing = Alert.objects.filter(patient=patient, kind=kind, status=AlertStatus.OPEN).first()
    if existing is not None:
        return existing, False
    # The first person on the care team's escalation chain owns it from the start and is told at once; the sweep
    # moves it along the chain (clinaiops/loops/services/escalation.py).
    chain = escalation_chain_for(team=patient.care_team)
    owner = chain[0] if chain else None
    alert = Alert.objects.create(
        patient=patient,
        kind=kind,
        priority=AlertPriority.P0,
        reading=reading,
        opened_at=now,
        owner=owner,
        escalation_step=1 if owner else 0,
    )
    audit_record(
        action=AuditAction.ALERT_OPENED,
        object_type="alert",
        object_id=alert.pk,
        system_reason="safety_rule",
        payload={"patient_id": patient.pk, "kind": str(kind), "reading_id": reading.pk if reading else None},
    )
    if owner is not None:
        _alert_notified(alert=alert, recipients=[owner], kind=NotificationKind.ALERT_ASSIGNED, step=1)
    return alert, True


def _alert_notified(*, alert: Alert, recipients: list[User], kind: NotificationKind, step: int) -> None:
    """Notify and audit who was told (ids only), inside the caller's transaction."""
    alert_notify(recipients=recipients, kind=kind, alert=alert)
    audit_record(
        action=AuditAction.ALERT_NOTIFIED,
        object_type="alert",
        object_id=alert.pk,
        system_reason=str(kind),
        payload={"patient_id": alert.patient_id, "recipient_ids": sorted({u.pk for u in recipients}), "step": step},
    )


def _alert_acknowledge_require(*, alert: Alert, actor: User) -> None:
    """A break-glass alert is a security alert: the clinical safety officer acknowledges it. A safety alert
    belongs to the patient's clinicians: the care team, or whoever covers it under emergency access."""
    if alert.kind == AlertKind.BREAK_GLASS:
        allowed = actor.role == Role.SAFETY_OFFICER
    else:
        access = care_access_for(user=actor, patient=alert.patient)
        allowed = access.on_care_team or access.emergency
    if not allowed:
        audit_record_denied(
            action=AuditAction.ALERT_ACKNOWLEDGED, object_type="alert", object_id=alert.pk, actor=actor,
            reason="not_responsible",
        )  # fmt: skip
        raise NotFound("No such alert.")


MIN_ACK_NOTE = 3
MAX_ACK_NOTE = 2000


def alert_dispositions_for(alert: Alert) -> tuple[AlertDisposition, ...]:
    """The dispositions that can close this alert: clinical ones for a safety alert, access ones for a security
    (break-glass) alert."""
    return SECURITY_DISPOSITIONS if alert.kind == AlertKind.BREAK_GLASS else CLINICAL_DISPOSITIONS


def _acknowledgement_problems(alert: Alert, disposition: str, note: str) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if disposition not in {str(choice) for choice in alert_dispositions_for(alert)}:
        problems["disposition"] = ["Choose what was done about this alert."]
    if len(note) < MIN_ACK_NOTE:
        problems["note"] = ["Write a short note: what you did and why."]
    elif len(note) > MAX_ACK_NOTE:
        problems["note"] = [f"Keep it under {MAX_ACK_NOTE} characters."]
    return problems


def alert_acknowledge(*, alert: Alert, actor: User, disposition: str, note: str) -> Alert:
    """The responsible person acknowledges an open alert with what was done (a disposition) and a note. Stops
    its escalation. The note is stored encrypted; the ledger holds the disposition code and the note's digest."""
    _alert_acknowledge_require(alert=alert, actor=actor)
    note = (note or "").strip()
    problems = _acknowledgement_problems(alert, disposition, note)
    if problems:
        raise ValidationFailed("The acknowledgement is incomplete.", fields=problems)
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_at=timezone.now(),
            acknowledged_by=actor,
            disposition=disposition,
            acknowledgement_note=note,  # encrypted by the field on the way to the database
        )
        if updated != 1:
            raise InvalidTransition("This alert is no longer open.")
        audit_record(
            action=AuditAction.ALERT_ACKNOWLEDGED,
            object_type="alert",
            object_id=alert.pk,
            actor=actor,
            payload={"patient_id": alert.patient_id, "disposition": disposition, "note_hmac": audit_digest(note)},
        )
    alert.refresh_from_db()
    return alert


def autonomy_pause(*, patient: Patient, cause: str) -> None:
    """Pause autonomous delivery. Always a conditional UPDATE, never a check of the in-memory flag: the UPDATE takes
    the patient's row lock, so it orders itself with `autonomy_resume` (which locks the row, then checks for open
    alerts). Either the resume commits first and this pauses again, or this commits first and the resume then sees
    the alert and is refused; a stale `patient` object can no longer leave autonomy running beside an open alert."""
    paused = Patient.objects.filter(pk=patient.pk, autonomy_paused=False).update(autonomy_paused=True) == 1
    patient.autonomy_paused = True
    if not paused:
        return
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


_SAFETY_ALERT_KINDS = (AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION)


def autonomy_resume(*, actor: User, patient: Patient) -> bool:
    """A clinician on the care team resumes autonomous delivery after reviewing the safety event that paused it.
    Returns False if autonomy was not paused. Refused while a P0 safety alert is still open: autonomy stays paused
    until the alert is acknowledged (issue 10, safety invariants)."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.AUTONOMY_RESUMED)
    with transaction.atomic():
        Patient.objects.select_for_update().only("pk").get(pk=patient.pk)
        if Alert.objects.filter(
            patient=patient, priority=AlertPriority.P0, status=AlertStatus.OPEN, kind__in=_SAFETY_ALERT_KINDS
        ).exists():
            raise InvalidTransition(
                "A safety alert is still open for this patient; acknowledge it before resuming autonomy.",
                code="safety_alert_open",
            )
        if Patient.objects.filter(pk=patient.pk, autonomy_paused=True).update(autonomy_paused=False) != 1:
            return False
        patient.autonomy_paused = False
        audit_record(action=AuditAction.AUTONOMY_RESUMED, object_type="patient", object_id=patient.pk, actor=actor)
    return True


MAX_NOTE_LENGTH = 2000


def symptom_store(*, patient: Patient, kind: str, reported_at: datetime, note: str = "", severity: str = "") -> Symptom:
    """Store a symptom with the patient's optional note (encrypted at rest). The caller holds the transaction and
    writes the audit event, which may carry only a keyed digest of the note."""
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationFailed(
            "The note is too long.", fields={"note": [f"Keep it under {MAX_NOTE_LENGTH} characters."]}
        )
    return Symptom.objects.create(patient=patient, kind=kind, reported_at=reported_at, note=note, severity=severity)


@transaction.atomic
def dose_log_store(*, patient: Patient, day: date, taken: bool, actor: User | None = None) -> DoseLog:
    """Record whether the day's dose was taken (one entry per day; a correction replaces it). Doses are logged
    by the patient, so `actor` defaults to the patient's account. Adherence is clinical, so the ledger holds a
    keyed digest of the entry, not whether it was taken."""
    dose, created = DoseLog.objects.update_or_create(
        patient=patient, day=day, defaults={"taken": taken, "step": patient.current_step}
    )
    audit_record(
        action=AuditAction.DOSE_LOGGED,
        object_type="dose_log",
        object_id=dose.pk,
        actor=actor or patient.user,
        payload={
            "patient_id": patient.pk,
            "created": created,
            "entry_hmac": audit_digest([day.isoformat(), taken, dose.step]),
        },
    )
    return dose


BREAK_GLASS_MINUTES = 60
MIN_BREAK_GLASS_REASON = 10


def break_glass_open(*, actor: User, patient_code: str, reason: str) -> BreakGlassGrant:
    """Grant a clinician temporary access to a patient outside their care teams. The typed reason is kept on
    the grant (the audit payload holds only its keyed digest), and every grant raises its own P1 security alert
    for the clinical safety officer, naming the grant. What the grant allows is in clinaiops.care.access."""
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
            payload={"grant_id": grant.pk, "reason_hmac": audit_digest(reason), "minutes": BREAK_GLASS_MINUTES},
        )
        alert = Alert.objects.create(
            patient=patient,
            kind=AlertKind.BREAK_GLASS,
            priority=AlertPriority.P1,
            opened_at=now,
            break_glass_grant=grant,
        )
        audit_record(
            action=AuditAction.ALERT_OPENED,
            object_type="alert",
            object_id=alert.pk,
            system_reason="break_glass",
            payload={"patient_id": patient.pk, "kind": AlertKind.BREAK_GLASS, "grant_id": grant.pk},
        )
        # A security alert goes to the clinical safety officers' security inbox, never to a clinical one.
        officers = list(User.objects.filter(role=Role.SAFETY_OFFICER, is_active=True).order_by("pk"))
        if officers:
            _alert_notified(alert=alert, recipients=officers, kind=NotificationKind.SECURITY_ALERT, step=0)
    return grant


def patient_search_record(*, actor: User, patient_ids: list[int]) -> None:
    """A staff search by identifier shows names and MRNs, so it is accounted for like a record view: who searched
    and which patients the results showed. Never the search term: it is an identifier itself."""
    with transaction.atomic():
        audit_record(
            action=AuditAction.PATIENT_SEARCHED,
            object_type="patient",
            actor=actor,
            payload={"results": len(patient_ids), "patient_ids": sorted(patient_ids)},
        )
