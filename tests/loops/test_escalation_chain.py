"""Alerts that escalate (issue 11, DESIGN §2): an unacknowledged P0 moves along the care team's escalation chain,
each step notifies a person (portal inbox and email, without the patient's name) and is audited, two sweeps at
once take each step once, and security alerts go to the safety officer's inbox, never a clinical one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.escalation_chain import escalation_chain_for, escalation_chain_set
from clinaiops.care.models import Alert, CareTeam, Notification, Patient
from clinaiops.care.notifications import Notice, notifications_redeliver
from clinaiops.care.services import alert_acknowledge, break_glass_open
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.loops.services.escalation import alert_escalate_step, alerts_escalate
from tests.conftest import readings_add
from tests.factories import UserFactory

Capture = Callable[..., Any]


@pytest.fixture
def team_of_three(care_team: CareTeam, clinician: User, administrator: User) -> list[User]:
    """Clinic A: the assigned clinician (joined first), a second clinician, and a lead, who is last on the chain."""
    second = UserFactory(username="dr_second", role=Role.CLINICIAN, printed_name="Dr Second", email="second@x.test")
    lead = UserFactory(username="dr_lead", role=Role.CLINICIAN, printed_name="Dr Lead", email="lead@x.test")
    User.objects.filter(pk=clinician.pk).update(email="assigned@x.test")
    clinician.refresh_from_db()
    care_team.members.add(second)
    care_team.members.add(lead)
    escalation_chain_set(actor=administrator, team=care_team, members=[], lead=lead)
    return [clinician, second, lead]


def _crisis(patient: Patient, capture: Capture) -> Alert:
    with capture(execute=True):
        readings_add(patient, [(186, 112)])
    return Alert.objects.get(patient=patient, kind="hypertensive_crisis")


def _inbox(user: User) -> list[tuple[str, int | None]]:
    return list(Notification.objects.filter(recipient=user).order_by("pk").values_list("kind", "alert_id"))


def test_the_default_chain_is_the_team_in_joining_order_then_the_lead(
    care_team: CareTeam, team_of_three: list[User]
) -> None:
    clinician, second, lead = team_of_three
    assert escalation_chain_for(team=care_team) == [clinician, second, lead]
    care_team.members.remove(second)  # left the team: cannot see the patient, so is not woken for them
    assert escalation_chain_for(team=care_team) == [clinician, lead]


def test_an_alert_opens_owned_by_the_first_person_who_is_told_by_inbox_and_email_without_the_patients_name(
    patient: Patient, team_of_three: list[User], django_capture_on_commit_callbacks: Capture
) -> None:
    clinician, second, _lead = team_of_three
    mail.outbox.clear()
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    assert alert.owner == clinician
    assert _inbox(clinician) == [("alert_assigned", alert.pk)]
    assert _inbox(second) == []
    (message,) = mail.outbox
    assert message.to == ["assigned@x.test"]
    text = message.subject + message.body
    assert patient.code in text
    assert f"/alerts/{alert.pk}/" in message.body
    for identifier in (patient.family_name, patient.given_name, patient.mrn, "186", "crisis"):
        assert identifier.lower() not in text.lower(), identifier
    notified = AuditEvent.objects.get(action="alert.notified", object_id=str(alert.pk))
    assert notified.payload_data["recipient_ids"] == [clinician.pk]


def test_an_unacknowledged_p0_escalates_to_the_next_person_then_the_lead_then_the_whole_team(
    patient: Patient, team_of_three: list[User], settings: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.ALERT_ESCALATION_MINUTES = 15
    _clinician, second, lead = team_of_three
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    opened = alert.opened_at
    mail.outbox.clear()

    assert alerts_escalate(now=opened + timedelta(minutes=14)) == 0  # not yet due
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalate(now=opened + timedelta(minutes=16)) == 1
    alert.refresh_from_db()
    assert (alert.owner, alert.escalation_step) == (second, 2)
    assert _inbox(second) == [("alert_escalated", alert.pk)]
    assert [m.to for m in mail.outbox] == [["second@x.test"]]
    # Each step waits its own timeout from the last one, not from the opening.
    assert alerts_escalate(now=opened + timedelta(minutes=30)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalate(now=opened + timedelta(minutes=32)) == 1
    alert.refresh_from_db()
    assert alert.owner == lead
    assert [m.to for m in mail.outbox][-1] == ["lead@x.test"]

    # The chain is spent: everyone on the team is told once, and the sweep stops.
    assert alerts_escalate(now=opened + timedelta(minutes=48)) == 1
    assert alerts_escalate(now=opened + timedelta(hours=6)) == 0
    alert.refresh_from_db()
    assert alert.escalation_done
    assert alert.owner == lead
    for person in team_of_three:
        assert ("alert_team", alert.pk) in _inbox(person)

    steps = AuditEvent.objects.filter(action="alert.escalated", object_id=str(alert.pk)).order_by("seq")
    assert [(e.payload_data["step"], e.payload_data["to_user_id"]) for e in steps] == [
        (2, second.pk),
        (3, lead.pk),
        (4, None),
    ]
    assert sorted(steps.last().payload_data["recipient_ids"]) == sorted(u.pk for u in team_of_three)  # type: ignore[union-attr]


def test_a_configured_chain_is_used_in_its_order_and_only_an_administrator_sets_it(
    patient: Patient,
    care_team: CareTeam,
    team_of_three: list[User],
    administrator: User,
    unassigned_clinician: User,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    clinician, second, lead = team_of_three
    with pytest.raises(PermissionRefused):
        escalation_chain_set(actor=clinician, team=care_team, members=[second], lead=lead)
    with pytest.raises(ValidationFailed) as refused:
        escalation_chain_set(actor=administrator, team=care_team, members=[unassigned_clinician], lead=lead)
    assert "members" in refused.value.fields
    assert escalation_chain_for(team=care_team) == [clinician, second, lead]  # nothing stored

    escalation_chain_set(actor=administrator, team=care_team, members=[second, clinician], lead=lead)
    assert escalation_chain_for(team=care_team) == [second, clinician, lead]
    assert AuditEvent.objects.filter(action="care_team.escalation_chain_set", actor=administrator).count() == 2
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    assert alert.owner == second


def test_acknowledging_needs_a_disposition_and_a_note_and_stops_the_escalation(
    patient: Patient, team_of_three: list[User], settings: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.ALERT_ESCALATION_MINUTES = 15
    clinician, second, _ = team_of_three
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationFailed) as refused:
        alert_acknowledge(alert=alert, actor=clinician, disposition="access_justified", note="")
    assert set(refused.value.fields) == {"disposition", "note"}  # a security disposition cannot close a crisis
    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.acknowledgement_note) == ("open", "", "")

    alert_acknowledge(alert=alert, actor=clinician, disposition="advised_emergency", note="Sent to the ED by phone")
    alert.refresh_from_db()
    assert (alert.status, alert.get_disposition_display()) == ("acknowledged", "Advised the emergency department")
    assert alert.acknowledgement_note == "Sent to the ED by phone"
    event = AuditEvent.objects.get(action="alert.acknowledged")
    assert event.payload_data["disposition"] == "advised_emergency"
    assert "ED by phone" not in event.payload  # the note stays out of the ledger (its digest only)
    with connection.cursor() as cursor:  # and is encrypted at rest
        cursor.execute("SELECT acknowledgement_note FROM care_alert WHERE id = %s", [alert.pk])
        assert "ED by phone" not in cursor.fetchone()[0]
    assert alerts_escalate(now=alert.opened_at + timedelta(hours=3)) == 0
    assert _inbox(second) == []


def test_a_stale_sweep_cannot_take_a_step_twice(
    patient: Patient, care_team: CareTeam, team_of_three: list[User], django_capture_on_commit_callbacks: Capture
) -> None:
    _clinician, second, _lead = team_of_three
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    chain = escalation_chain_for(team=care_team)
    now = timezone.now() + timedelta(hours=1)
    assert alert_escalate_step(alert_id=alert.pk, seen_step=1, team=care_team, chain=chain, now=now)
    # A second sweep that read the alert at the same step loses its conditional update and notifies nobody.
    assert not alert_escalate_step(alert_id=alert.pk, seen_step=1, team=care_team, chain=chain, now=now)
    assert _inbox(second) == [("alert_escalated", alert.pk)]
    assert AuditEvent.objects.filter(action="alert.escalated").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_take_each_step_once(patient: Patient, team_of_three: list[User]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("two connections racing for a row lock are PostgreSQL's; SQLite serialises writers")
    _clinician, second, _lead = team_of_three
    readings_add(patient, [(186, 112)])
    alert = Alert.objects.get(patient=patient, kind="hypertensive_crisis")
    now = alert.opened_at + timedelta(hours=1)
    start = threading.Barrier(2)
    results: list[int] = []

    def sweep() -> None:
        try:
            start.wait()
            results.append(alerts_escalate(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert Notification.objects.filter(recipient=second, kind="alert_escalated").count() == 1
    assert AuditEvent.objects.filter(action="alert.escalated").count() == 1


class PagerForTest:
    """A second channel is one class (the Notifier protocol): this one keeps what a pager gateway would send."""

    channel = "pager"
    sent: ClassVar[list[Notice]] = []

    def deliver(self, notice: Notice) -> None:
        self.sent.append(notice)


class BrokenChannel:
    channel = "broken"

    def deliver(self, notice: Notice) -> None:
        raise ConnectionError("gateway down")


def test_a_pager_is_one_class_and_a_failing_channel_never_undoes_the_escalation(
    patient: Patient, team_of_three: list[User], settings: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    clinician, second, _ = team_of_three
    settings.NOTIFIERS = [f"{__name__}.BrokenChannel", f"{__name__}.PagerForTest"]
    PagerForTest.sent.clear()
    alert = _crisis(patient, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_escalate(now=alert.opened_at + timedelta(hours=1)) == 1
    assert [notice.recipient_id for notice in PagerForTest.sent] == [clinician.pk, second.pk]
    assert all(patient.family_name not in f"{notice.subject}{notice.body}" for notice in PagerForTest.sent)
    alert.refresh_from_db()
    assert alert.owner == second
    # The broken channel is tried again by the sweep, the pager is not sent twice, and the attempts are bounded.
    pending = Notification.objects.filter(delivered_at__isnull=True)
    assert sorted(pending.values_list("delivered_channels", flat=True)) == ["pager", "pager"]
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    later = timezone.now() + timedelta(minutes=5)
    assert notifications_redeliver(now=later) == 0
    assert notifications_redeliver(now=later) == 0
    assert notifications_redeliver(now=later) == 0  # a third attempt is not made: the cap is 3
    assert set(pending.values_list("delivery_attempts", flat=True)) == {3}
    assert len(PagerForTest.sent) == 2
    settings.NOTIFIERS = [f"{__name__}.PagerForTest"]  # the gateway is back (here: configured away)
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    assert notifications_redeliver(now=later) == 2
    assert not pending.exists()
    assert len(PagerForTest.sent) == 2


def test_a_security_alert_goes_to_the_safety_officers_security_inbox_and_never_escalates(
    patient: Patient,
    team_of_three: list[User],
    unassigned_clinician: User,
    safety_officer: User,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    User.objects.filter(pk=safety_officer.pk).update(email="safety@x.test")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering the ward tonight")
    alert = Alert.objects.get(kind="break_glass")
    assert list(Notification.objects.filter(recipient=safety_officer).values_list("inbox", "kind")) == [
        ("security", "security_alert")
    ]
    assert not Notification.objects.filter(recipient__in=team_of_three).exists()
    assert [m.to for m in mail.outbox] == [["safety@x.test"]]
    assert "Covering the ward" not in mail.outbox[0].body
    assert alerts_escalate(now=alert.opened_at + timedelta(days=2)) == 0


def test_the_admin_sets_the_chain_through_the_audited_service(
    care_team: CareTeam,
    team_of_three: list[User],
    administrator: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    clinician, second, lead = team_of_three
    admin = portal_client_for(administrator)
    body = {"action": "escalation_chain_set", "_selected_action": [care_team.pk], "apply": "Apply"}
    refused = admin.post("/admin/care/careteam/", {**body, "members": "dr_second, nobody_here", "lead": lead.pk})
    assert b"are not accounts" in refused.content
    assert escalation_chain_for(team=care_team) == [clinician, second, lead]
    done = admin.post(
        "/admin/care/careteam/", {**body, "members": "dr_second, dr_assigned", "lead": lead.pk}, follow=True
    )
    assert done.status_code == 200
    assert escalation_chain_for(team=care_team) == [second, clinician, lead]
    assert AuditEvent.objects.filter(action="care_team.escalation_chain_set", actor=administrator).exists()
