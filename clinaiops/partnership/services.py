"""Writes of the patient–clinician loop. Each checks who may act, validates, writes, and records its audit
event in the same transaction. The ledger gets ids and keyed digests, never note text, reasons, goal values or
dates (a date about a patient is an identifier under the HIPAA safe harbour)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.access import care_team_clinician_require
from clinaiops.care.models import Patient
from clinaiops.core.errors import NotFound, ValidationFailed
from clinaiops.core.models import User
from clinaiops.partnership.goals import CHECKIN_LIMITS, GOAL_SPECS, GoalKindCode, quantity
from clinaiops.partnership.models import CareNote, CheckInKind, FollowUpPlan, GoalCheckIn, GoalKind, LifestyleGoal

MAX_NOTE_LENGTH = 4000
MIN_OVERRIDE_REASON = 5
MAX_OVERRIDE_REASON = 500
# An override further out than a year is a forgotten patient, not a plan.
MAX_OVERRIDE_DAYS = 365
# A follow-up is recorded on the day it happened, or catching up on the last month; so is a check-in.
MAX_FOLLOWUP_BACKDATE_DAYS = 31
MAX_CHECKIN_BACKDATE_DAYS = 31


def _decimal(value: object, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed("That is not a number.", fields={field: ["Enter a number."]}) from None
    if not number.is_finite():
        raise ValidationFailed("That is not a number.", fields={field: ["Enter a number."]})
    return number


def _goal_kind(kind: str) -> GoalKindCode:
    if kind not in GoalKind.values:
        raise ValidationFailed("Unknown goal.", fields={"kind": ["Choose one of the goals listed."]})
    return GoalKindCode(kind)


def lifestyle_goal_set(*, actor: User, patient: Patient, kind: str, target_value: object) -> LifestyleGoal:
    """A clinician on the care team sets (or changes) a lifestyle goal's target. One active goal per kind."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.GOAL_SET)
    code = _goal_kind(kind)
    spec = GOAL_SPECS[code]
    target = _decimal(target_value, "target_value")
    if not spec.minimum <= target <= spec.maximum:
        raise ValidationFailed(
            "That target is outside the plausible range.",
            fields={
                "target_value": [
                    f"For {spec.label.lower()}, enter {quantity(spec.minimum, '')} to "
                    f"{quantity(spec.maximum, spec.unit)}."
                ]
            },
        )
    target = target.quantize(Decimal("0.1"))
    now = timezone.now()
    with transaction.atomic():
        Patient.objects.select_for_update().only("pk").get(pk=patient.pk)
        goal = LifestyleGoal.objects.filter(patient=patient, kind=code.value, ended_at__isnull=True).first()
        created = goal is None
        if goal is None:
            goal = LifestyleGoal.objects.create(
                patient=patient, kind=code.value, target_value=target, unit=spec.unit, set_by=actor, set_at=now
            )
        else:
            goal.target_value, goal.unit, goal.set_by, goal.set_at = target, spec.unit, actor, now
            goal.save(update_fields=["target_value", "unit", "set_by", "set_at"])
        audit_record(
            action=AuditAction.GOAL_SET,
            object_type="lifestyle_goal",
            object_id=goal.pk,
            actor=actor,
            payload={
                "patient_id": patient.pk,
                "kind": code.value,
                "created": created,
                "target_hmac": audit_digest(str(target)),
            },
        )
    return goal


def lifestyle_goal_end(*, actor: User, patient: Patient, goal_id: int) -> LifestyleGoal:
    """A clinician on the care team ends a goal (kept, with its end time)."""
    care_team_clinician_require(
        actor=actor, patient=patient, action=AuditAction.GOAL_ENDED, object_type="lifestyle_goal", object_id=goal_id
    )
    with transaction.atomic():
        goal = (
            LifestyleGoal.objects.select_for_update().filter(pk=goal_id, patient=patient, ended_at__isnull=True).first()
        )
        if goal is None:
            raise NotFound("No such goal.")
        goal.ended_at = timezone.now()
        goal.save(update_fields=["ended_at"])
        audit_record(
            action=AuditAction.GOAL_ENDED,
            object_type="lifestyle_goal",
            object_id=goal.pk,
            actor=actor,
            payload={"patient_id": patient.pk, "kind": goal.kind},
        )
    return goal


def goal_checkin_record(*, actor: User, patient: Patient, kind: str, day: date, value: object) -> GoalCheckIn:
    """The patient reports one day's salt, activity or sleep (the patient API of the next issue calls this).
    Only the patient themself may; a second report for the same day and kind replaces the first."""
    if patient.user_id != actor.pk:
        audit_record_denied(
            action=AuditAction.GOAL_CHECKIN_RECORDED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            reason="not_own_record",
        )
        raise NotFound("No such patient.")
    if kind not in CheckInKind.values:
        raise ValidationFailed("Unknown check-in.", fields={"kind": ["Report salt, activity or sleep."]})
    code = GoalKindCode(kind)
    number = _decimal(value, "value")
    low, high = CHECKIN_LIMITS[code]
    if not low <= number <= high:
        unit = GOAL_SPECS[code].checkin_unit
        raise ValidationFailed(
            "That value is not plausible.", fields={"value": [f"Enter {quantity(low, '')} to {quantity(high, unit)}."]}
        )
    today = timezone.localdate()
    if day > today or day < today - timedelta(days=MAX_CHECKIN_BACKDATE_DAYS):
        raise ValidationFailed("That day is not allowed.", fields={"day": ["Report today or one of the last 31 days."]})
    with transaction.atomic():
        checkin, created = GoalCheckIn.objects.update_or_create(
            patient=patient,
            kind=code.value,
            day=day,
            defaults={"value": number.quantize(Decimal("0.1")), "reported_at": timezone.now()},
        )
        audit_record(
            action=AuditAction.GOAL_CHECKIN_RECORDED,
            object_type="goal_checkin",
            object_id=checkin.pk,
            actor=actor,
            payload={
                "patient_id": patient.pk,
                "kind": code.value,
                "created": created,
                "entry_hmac": audit_digest([day.isoformat(), str(checkin.value)]),
            },
        )
    return checkin


def care_note_write(*, actor: User, patient: Patient, body: str, visible_to_patient: bool) -> CareNote:
    """A clinician on the care team writes a note: private to the care team unless `visible_to_patient`."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.NOTE_WRITTEN)
    text = (body or "").strip()
    if not text:
        raise ValidationFailed("The note is empty.", fields={"body": ["Write the note."]})
    if len(text) > MAX_NOTE_LENGTH:
        raise ValidationFailed(
            "The note is too long.", fields={"body": [f"Keep it under {MAX_NOTE_LENGTH} characters."]}
        )
    with transaction.atomic():
        note = CareNote.objects.create(
            patient=patient, author=actor, written_at=timezone.now(), body=text, visible_to_patient=visible_to_patient
        )
        audit_record(
            action=AuditAction.NOTE_WRITTEN,
            object_type="care_note",
            object_id=note.pk,
            actor=actor,
            payload={
                "patient_id": patient.pk,
                "visible_to_patient": visible_to_patient,
                "body_hmac": audit_digest(text),
            },
        )
    return note


def _plan_locked(patient: Patient) -> FollowUpPlan:
    FollowUpPlan.objects.get_or_create(patient=patient)
    return FollowUpPlan.objects.select_for_update().get(patient=patient)


def followup_override_set(
    *, actor: User, patient: Patient, due_on: date, reason: str, today: date | None = None
) -> FollowUpPlan:
    """A clinician on the care team sets the next follow-up date by hand, with a reason; it replaces the rule's
    date until the next follow-up is recorded (or the override is cleared)."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.FOLLOWUP_OVERRIDDEN)
    today = today or timezone.localdate()
    problems: dict[str, list[str]] = {}
    if due_on < today:
        problems["due_on"] = ["Choose today or a later date."]
    elif due_on > today + timedelta(days=MAX_OVERRIDE_DAYS):
        problems["due_on"] = ["Choose a date within the next year."]
    text = (reason or "").strip()
    if len(text) < MIN_OVERRIDE_REASON:
        problems["reason"] = ["Say why the date differs from the rule."]
    elif len(text) > MAX_OVERRIDE_REASON:
        problems["reason"] = [f"Keep it under {MAX_OVERRIDE_REASON} characters."]
    if problems:
        raise ValidationFailed("The follow-up date was not changed.", fields=problems)
    with transaction.atomic():
        plan = _plan_locked(patient)
        plan.override_due_on, plan.override_reason = due_on, text
        plan.override_by, plan.override_at = actor, timezone.now()
        plan.save(update_fields=["override_due_on", "override_reason", "override_by", "override_at"])
        audit_record(
            action=AuditAction.FOLLOWUP_OVERRIDDEN,
            object_type="followup_plan",
            object_id=plan.pk,
            actor=actor,
            payload={
                "patient_id": patient.pk,
                "due_on_hmac": audit_digest(due_on.isoformat()),
                "reason_hmac": audit_digest(text),
            },
        )
    return plan


def followup_override_clear(*, actor: User, patient: Patient) -> bool:
    """Back to the rule's date. Returns False if there was no override."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.FOLLOWUP_OVERRIDE_CLEARED)
    with transaction.atomic():
        plan = _plan_locked(patient)
        if plan.override_due_on is None:
            return False
        plan.override_due_on, plan.override_reason, plan.override_by, plan.override_at = None, "", None, None
        plan.save(update_fields=["override_due_on", "override_reason", "override_by", "override_at"])
        audit_record(
            action=AuditAction.FOLLOWUP_OVERRIDE_CLEARED,
            object_type="followup_plan",
            object_id=plan.pk,
            actor=actor,
            payload={"patient_id": patient.pk},
        )
    return True


def followup_record(*, actor: User, patient: Patient, held_on: date, today: date | None = None) -> FollowUpPlan:
    """A clinician on the care team records that the follow-up took place: the next one is counted from it, and
    any override is used up."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.FOLLOWUP_RECORDED)
    today = today or timezone.localdate()
    if held_on > today:
        raise ValidationFailed(
            "That date is in the future.", fields={"held_on": ["A follow-up cannot be recorded ahead."]}
        )
    if held_on < today - timedelta(days=MAX_FOLLOWUP_BACKDATE_DAYS):
        raise ValidationFailed(
            "That date is too long ago.", fields={"held_on": ["Record a follow-up within a month of it."]}
        )
    with transaction.atomic():
        plan = _plan_locked(patient)
        plan.last_followup_on, plan.last_followup_by = held_on, actor
        plan.override_due_on, plan.override_reason, plan.override_by, plan.override_at = None, "", None, None
        plan.save(
            update_fields=[
                "last_followup_on", "last_followup_by", "override_due_on", "override_reason", "override_by",
                "override_at",
            ]
        )  # fmt: skip
        audit_record(
            action=AuditAction.FOLLOWUP_RECORDED,
            object_type="followup_plan",
            object_id=plan.pk,
            actor=actor,
            payload={"patient_id": patient.pk, "held_on_hmac": audit_digest(held_on.isoformat())},
        )
    return plan
