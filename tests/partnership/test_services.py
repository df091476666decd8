"""Goals, notes and follow-up through their services: who may, what is stored, what the ledger holds."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.care.services import dose_log_store
from clinaiops.core.errors import NotFound, ValidationFailed
from clinaiops.core.models import User
from clinaiops.partnership.models import CareNote, FollowUpPlan, GoalCheckIn, LifestyleGoal
from clinaiops.partnership.selectors import (
    followup_status,
    followups_overdue,
    goal_progress_for,
    notes_for_patient_view,
)
from clinaiops.partnership.services import (
    care_note_write,
    followup_override_clear,
    followup_override_set,
    followup_record,
    goal_checkin_record,
    lifestyle_goal_end,
    lifestyle_goal_set,
)
from tests.conftest import audit_actions, readings_add
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _payloads(action: str) -> list[dict[str, Any]]:
    return [e.payload_data for e in AuditEvent.objects.filter(action=action).order_by("seq")]


# --- Goals ---------------------------------------------------------------------------------------------------


def test_care_team_clinician_sets_and_changes_a_goal_and_the_ledger_holds_no_value(
    patient: Patient, clinician: User
) -> None:
    goal = lifestyle_goal_set(actor=clinician, patient=patient, kind="sodium", target_value="1500")
    again = lifestyle_goal_set(actor=clinician, patient=patient, kind="sodium", target_value=Decimal("1800"))
    assert goal.pk == again.pk and LifestyleGoal.objects.get().target_value == Decimal("1800.0")
    assert LifestyleGoal.objects.get().unit == "mg a day"
    payloads = _payloads("goal.set")
    assert [p["created"] for p in payloads] == [True, False]
    assert all("1800" not in str(p) and "1500" not in str(p) for p in payloads)
    lifestyle_goal_end(actor=clinician, patient=patient, goal_id=goal.pk)
    assert LifestyleGoal.objects.get().ended_at is not None
    assert "goal.ended" in audit_actions()


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [("sodium", "100", "target_value"), ("sleep", "30", "target_value"), ("activity", "many", "target_value"),
     ("adherence", "NaN", "target_value"), ("smoking", "5", "kind")],
)  # fmt: skip
def test_implausible_goal_is_refused_at_its_field_and_nothing_is_stored(
    patient: Patient, clinician: User, kind: str, value: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        lifestyle_goal_set(actor=clinician, patient=patient, kind=kind, target_value=value)
    assert field in refused.value.fields
    assert value not in refused.value.message
    assert not LifestyleGoal.objects.exists() and "goal.set" not in audit_actions()


def test_clinician_of_another_team_and_the_patient_cannot_set_goals_or_write_notes(
    patient: Patient, unassigned_clinician: User
) -> None:
    for actor in (unassigned_clinician, patient.user):
        with pytest.raises(NotFound):
            lifestyle_goal_set(actor=actor, patient=patient, kind="sleep", target_value="7")
        with pytest.raises(NotFound):
            care_note_write(actor=actor, patient=patient, body="hello", visible_to_patient=True)
        with pytest.raises(NotFound):
            followup_override_set(actor=actor, patient=patient, due_on=timezone.localdate(), reason="because")
    assert not LifestyleGoal.objects.exists() and not CareNote.objects.exists()
    assert not FollowUpPlan.objects.exists()
    assert (
        AuditEvent.objects.filter(
            action__in=["goal.set", "note.written", "followup.overridden"], outcome="denied"
        ).count()
        == 6
    )


def test_progress_comes_from_the_data_or_says_no_data(patient: Patient, clinician: User) -> None:
    readings_add(patient, [(120, 75)] * 8 + [(140, 90)] * 2)
    today = timezone.localdate()
    for days_ago, taken in enumerate([True, True, True, False]):
        dose_log_store(patient=patient, day=today - timedelta(days=days_ago), taken=taken)
    for kind, target in (("adherence", "90"), ("sleep", "7"), ("activity", "150"), ("sodium", "2000")):
        lifestyle_goal_set(actor=clinician, patient=patient, kind=kind, target_value=target)
    goal_checkin_record(actor=patient.user, patient=patient, kind="sleep", day=today, value="7.5")
    goal_checkin_record(actor=patient.user, patient=patient, kind="sleep", day=today - timedelta(days=1), value="6.5")
    goal_checkin_record(actor=patient.user, patient=patient, kind="activity", day=today, value="30")
    progress = {p.kind: p for p in goal_progress_for(patient)}
    assert (progress["bp_target"].current, progress["bp_target"].status) == ("80 % of readings in range", "met")
    assert (progress["adherence"].current, progress["adherence"].status) == ("75% of doses", "not_met")
    assert progress["adherence"].basis == "3 of 4 logged doses taken in the last 28 days"
    assert (progress["sleep"].current, progress["sleep"].status) == ("7 hours a night", "met")
    # 30 minutes on one day is 30 minutes over the (at least) one week the check-ins cover
    assert (progress["activity"].current, progress["activity"].status) == ("30 minutes a week", "not_met")
    assert (progress["sodium"].current, progress["sodium"].status) == ("No data yet", "no_data")


def test_only_the_patient_records_their_own_check_in(patient: Patient, other_patient: Patient, clinician: User) -> None:
    with pytest.raises(NotFound):
        goal_checkin_record(actor=other_patient.user, patient=patient, kind="sleep", day=timezone.localdate(), value=7)
    with pytest.raises(NotFound):
        goal_checkin_record(actor=clinician, patient=patient, kind="sleep", day=timezone.localdate(), value=7)
    with pytest.raises(ValidationFailed) as refused:
        goal_checkin_record(actor=patient.user, patient=patient, kind="sleep", day=timezone.localdate(), value=30)
    assert "value" in refused.value.fields
    assert not GoalCheckIn.objects.exists()


# --- Notes ---------------------------------------------------------------------------------------------------


def test_notes_are_encrypted_and_the_patient_sees_only_the_visible_ones(patient: Patient, clinician: User) -> None:
    shared = care_note_write(actor=clinician, patient=patient, body="Walk 30 minutes daily.", visible_to_patient=True)
    care_note_write(actor=clinician, patient=patient, body="Query white-coat effect.", visible_to_patient=False)
    assert [n.pk for n in notes_for_patient_view(patient)] == [shared.pk]
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM partnership_carenote")
        stored = [row[0] for row in cursor.fetchall()]
    assert all("white-coat" not in s and "Walk" not in s for s in stored)
    payloads = _payloads("note.written")
    assert [p["visible_to_patient"] for p in payloads] == [True, False]
    assert all("Walk" not in str(p) for p in payloads)


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001])
def test_empty_or_overlong_note_is_refused(patient: Patient, clinician: User, body: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        care_note_write(actor=clinician, patient=patient, body=body, visible_to_patient=False)
    assert "body" in refused.value.fields and not CareNote.objects.exists()


# --- Follow-up -----------------------------------------------------------------------------------------------


def test_rule_date_override_and_recorded_follow_up(patient: Patient, clinician: User) -> None:
    readings_add(patient, [(120, 75)] * 10)  # stable
    status = followup_status(patient)
    assert status.rule.category == "stable" and not status.overridden
    assert status.due_on == date(2026, 1, 1) + timedelta(weeks=12)  # counted from enrolment
    due = timezone.localdate() + timedelta(days=10)
    followup_override_set(actor=clinician, patient=patient, due_on=due, reason="Review after holiday")
    status = followup_status(patient)
    assert (status.due_on, status.overridden, status.reason) == (
        due, True, "Set by Dr Assigned: Review after holiday",
    )  # fmt: skip
    assert not status.overdue
    assert followup_override_clear(actor=clinician, patient=patient)
    assert not followup_status(patient).overridden
    followup_override_set(actor=clinician, patient=patient, due_on=due, reason="Review after holiday")
    followup_record(actor=clinician, patient=patient, held_on=timezone.localdate())
    status = followup_status(patient)
    assert not status.overridden and status.due_on == timezone.localdate() + timedelta(weeks=12)
    assert audit_actions(action__startswith="followup.") == [
        "followup.overridden", "followup.override_cleared", "followup.overridden", "followup.recorded",
    ]  # fmt: skip
    assert all(due.isoformat() not in str(p) for p in _payloads("followup.overridden"))


@pytest.mark.parametrize(
    ("days", "reason", "field"),
    [(-1, "a good reason", "due_on"), (400, "a good reason", "due_on"), (5, "", "reason"), (5, "x" * 501, "reason")],
)
def test_bad_override_is_refused_at_its_field_and_nothing_is_stored(
    patient: Patient, clinician: User, days: int, reason: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        followup_override_set(
            actor=clinician, patient=patient, due_on=timezone.localdate() + timedelta(days=days), reason=reason
        )
    assert field in refused.value.fields
    assert not FollowUpPlan.objects.exists() and "followup.overridden" not in audit_actions()


def test_future_follow_up_cannot_be_recorded(patient: Patient, clinician: User) -> None:
    with pytest.raises(ValidationFailed) as refused:
        followup_record(actor=clinician, patient=patient, held_on=timezone.localdate() + timedelta(days=1))
    assert "held_on" in refused.value.fields


def test_overdue_follow_ups_are_the_care_teams_only(
    patient: Patient,
    other_patient: Patient,
    clinician: User,
    unassigned_clinician: User,
    safety_officer: User,
    django_assert_num_queries: Any,
) -> None:
    # Enrolled on 1 Jan 2026 with no readings: "too few readings", 4 weeks from enrolment, long overdue.
    followup_record(actor=unassigned_clinician, patient=other_patient, held_on=timezone.localdate())
    with django_assert_num_queries(4):
        overdue = followups_overdue(user=clinician)
    assert [(o.patient.code, o.category) for o in overdue] == [("P-0001", "Too few readings to judge")]
    assert overdue[0].due_on == date(2026, 1, 29)
    assert overdue[0].days_overdue == (timezone.localdate() - date(2026, 1, 29)).days
    assert overdue[0].reason.startswith("No readings in the last 28 days")
    assert followups_overdue(user=unassigned_clinician) == []  # their patient was just followed up
    assert followups_overdue(user=safety_officer) == [] and followups_overdue(user=patient.user) == []
    # More patients do not mean more queries.
    for _ in range(3):
        PatientFactory(care_team=patient.care_team)
    with django_assert_num_queries(4):
        assert len(followups_overdue(user=clinician)) == 4
    followup_record(actor=clinician, patient=patient, held_on=timezone.localdate())
    assert "P-0001" not in [o.patient.code for o in followups_overdue(user=clinician)]


def test_a_recent_alert_brings_the_follow_up_to_one_week(patient: Patient, clinician: User) -> None:
    readings_add(patient, [(120, 75)] * 9 + [(185, 100)])  # the last one is a crisis: a P0 alert
    status = followup_status(patient)
    assert status.rule.category == "alert" and status.rule.interval_weeks == 1


def test_demo_seed_writes_through_the_services(patient: Patient, clinician: User) -> None:
    from clinaiops.partnership.demo import partnership_demo_seed

    patients = [patient, *(PatientFactory(care_team=patient.care_team) for _ in range(11))]
    for p in patients[:6]:
        readings_add(p, [(122, 76)] * 10)  # stable
    readings_add(patients[8], [(122, 76)] * 5 + [(186, 104)])  # a crisis: a one-week follow-up
    counts = partnership_demo_seed(clinician=clinician, patients=patients)
    assert counts.followups == 12 and counts.overrides == 1 and counts.goals == 4 * 3 + 2
    assert counts.checkins == 2 * 7 * 3 and counts.notes == 3 + 2
    assert AuditEvent.objects.filter(action="followup.recorded").count() == 12
    assert notes_for_patient_view(patient).count() == 1
    # Followed up 0–11 days ago: only the patient with an alert (one week, followed up 8 days ago) is overdue.
    assert [(o.patient.pk, o.days_overdue) for o in followups_overdue(user=clinician)] == [(patients[8].pk, 1)]


def test_patient_page_panel_queries_are_pinned(
    patient: Patient, clinician: User, django_assert_num_queries: Any
) -> None:
    from clinaiops.partnership.selectors import care_plan_panel

    readings_add(patient, [(120, 75)] * 6 + [(185, 100)])
    care_note_write(actor=clinician, patient=patient, body="Private.", visible_to_patient=False)
    with django_assert_num_queries(5):  # readings, alerts, plan, goals, notes
        panel = care_plan_panel(patient)
    assert panel.followup.rule.category == "alert" and (panel.notes_total, panel.notes_visible) == (1, 0)
    lifestyle_goal_set(actor=clinician, patient=patient, kind="adherence", target_value="90")
    lifestyle_goal_set(actor=clinician, patient=patient, kind="sleep", target_value="7")
    with django_assert_num_queries(7):  # + check-ins, + dose log
        care_plan_panel(patient)
