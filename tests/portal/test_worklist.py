"""The review worklist and the alert pages (issue 11): triage order, age against the SLA, filters with counts,
"next item" after signing, overdue follow-ups, a pinned query count; the alert page with its readings, owner,
chain and history; acknowledging with a disposition and a note; separate clinical and security inboxes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from clinaiops.care.models import Alert, CareTeam, Notification, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.selectors import worklist, worklist_next_after
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make, readings_add
from tests.factories import PASSWORD, PatientFactory, UserFactory

Capture = Callable[..., Any]


def _patient(care_team: CareTeam, code: str) -> Patient:
    return PatientFactory(user=UserFactory(username=f"pat_{code}", role="patient"), care_team=care_team, code=code)


def _codes(page: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-rec="\d+">\s*<td>(P-[A-Z0-9]+)', page)


@pytest.fixture
def three_waiting(
    patient: Patient, care_team: CareTeam, deployed_model: ModelVersion, settings: Any
) -> dict[str, Recommendation]:
    """Three proposals waiting: P-0003 oldest but now near target; P-0001 well above target; P-0004 newest, with a
    crisis since (an open safety alert). P-0003's has waited past the 48-hour SLA."""
    settings.EVALUATION_ON_READING = False  # readings added below must not re-evaluate anyone
    settings.REVIEW_SLA_HOURS = 48
    near = _patient(care_team, "P-0003")
    crisis = _patient(care_team, "P-0004")
    recs = {"P-0003": pending_recommendation_make(near)}
    recs["P-0001"] = pending_recommendation_make(patient)
    recs["P-0004"] = pending_recommendation_make(crisis)
    readings_add(near, [(120, 74)] * 12, hours=6)
    readings_add(crisis, [(188, 121)], end=timezone.now() - timedelta(minutes=30))
    Recommendation.objects.filter(pk=recs["P-0003"].pk).update(created_at=timezone.now() - timedelta(hours=50))
    return recs


def test_the_worklist_puts_an_open_safety_alert_first_then_risk_then_age(
    three_waiting: dict[str, Recommendation], clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    items = worklist(user=clinician)
    assert [item.recommendation.patient.code for item in items] == ["P-0004", "P-0001", "P-0003"]
    assert items[0].safety_alert_open
    assert items[1].excess_mmhg > items[2].excess_mmhg
    page = portal_client_for(clinician).get("/queue/").content.decode()
    assert _codes(page) == ["P-0004", "P-0001", "P-0003"]
    assert "Open safety alert" in page


def test_each_item_shows_its_age_against_the_sla_and_overdue_ones_stand_out_in_words(
    three_waiting: dict[str, Recommendation], clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(clinician).get("/queue/").content.decode()
    overdue_row = re.search(r'<tr class="overdue[^"]*" data-rec="(\d+)">.*?</tr>', page, re.S)
    assert overdue_row is not None
    assert overdue_row.group(1) == str(three_waiting["P-0003"].pk)
    assert re.search(r"2 d 2 h — <span class=\"sla-overdue\">Overdue</span> by 2 h", overdue_row.group(0))
    reviews = page.split("Overdue follow-ups")[0]
    assert reviews.count('class="sla-overdue">Overdue</span> by') == 1
    assert len(re.findall(r"\d+ min — due in 1 d 2[34] h", reviews)) == 2
    assert "1 overdue" in page
    assert "A review is due within 48 hours" in page


def test_filters_narrow_the_worklist_and_each_option_has_a_count(
    three_waiting: dict[str, Recommendation], clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(clinician)
    page = client.get("/queue/").content.decode()
    assert re.search(r'data-facet="overdue:1">Overdue <span class="count">\(1\)</span>', page)
    assert re.search(r'data-facet="reason:too_few_readings">too few readings <span class="count">\(3\)</span>', page)
    assert re.search(r'data-facet="clinic:\d+">Clinic A <span class="count">\(3\)</span>', page)
    overdue = client.get("/queue/?overdue=1").content.decode()
    assert _codes(overdue) == ["P-0003"]
    assert "<strong>1</strong> shown with these filters" in overdue
    actions = {rec.action for rec in three_waiting.values()}
    action = sorted(actions)[0]
    by_action = _codes(client.get(f"/queue/?action={action}").content.decode())
    assert by_action and all(three_waiting[code].action == action for code in by_action)


def test_a_bad_filter_value_is_a_field_error_and_that_filter_is_not_applied(
    three_waiting: dict[str, Recommendation], clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    response = portal_client_for(clinician).get("/queue/?reason=%3Cscript%3E&clinic=abc&overdue=1")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Reason: Select a valid choice" in page
    assert "Clinic: Select a valid choice" in page
    assert "<script>" not in page  # nothing echoed
    assert _codes(page) == ["P-0003"]  # the valid filter still applies


def test_after_signing_the_worklist_offers_the_next_item(
    three_waiting: dict[str, Recommendation], clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    first = three_waiting["P-0004"]
    assert worklist_next_after(user=clinician, rec_id=first.pk) == three_waiting["P-0001"]
    client = portal_client_for(clinician)
    signed = client.post(
        f"/recommendations/{first.pk}/",
        {"outcome": "rejected", "reason": "Crisis first; titrate after", "password": PASSWORD},
    )
    assert signed.status_code == 302
    assert signed["Location"] == "/queue/"
    page = client.get("/queue/").content.decode()
    assert re.search(rf'Next item:</strong> <a href="/recommendations/{three_waiting["P-0001"].pk}/">P-0001', page), (
        page
    )
    assert _codes(page) == ["P-0001", "P-0003"]
    # Offered once: a later visit shows the worklist without it.
    assert "data-next-item" not in client.get("/queue/").content.decode()


def test_overdue_follow_ups_appear_in_the_worklist(
    patient: Patient, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    # The factory enrolled the patient on 1 January with no follow-up since, so the rule's date has passed.
    page = portal_client_for(clinician).get("/queue/").content.decode()
    assert 'Overdue follow-ups <span class="count">(1)</span>' in page
    assert re.search(r"<td>P-0001</td><td>Clinic A</td>.*?Overdue</span> by \d+ days", page, re.S)


def test_the_worklist_query_count_does_not_grow_with_the_worklist(
    three_waiting: dict[str, Recommendation],
    care_team: CareTeam,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    client = portal_client_for(clinician)
    with django_assert_num_queries(WORKLIST):
        assert client.get("/queue/?overdue=1").status_code == 200
    for code in ("P-0005", "P-0006"):
        pending_recommendation_make(_patient(care_team, code))
    with django_assert_num_queries(WORKLIST):
        page = client.get("/queue/").content.decode()
    assert len(_codes(page)) == 5


def test_other_roles_cannot_open_the_worklist(
    ml_engineer: User, safety_officer: User, patient: Patient, portal_client_for: Callable[[User], Client]
) -> None:
    for user in (ml_engineer, safety_officer, patient.user):
        assert portal_client_for(user).get("/queue/").status_code == 403


# --- The alert page ---------------------------------------------------------------------------------------


@pytest.fixture
def crisis_alert(patient: Patient, clinician: User, django_capture_on_commit_callbacks: Capture) -> Alert:
    with django_capture_on_commit_callbacks(execute=True):
        readings_add(patient, [(150, 92), (186, 112)])
    return Alert.objects.get(patient=patient, kind="hypertensive_crisis")


def test_the_alert_page_shows_the_triggering_readings_owner_chain_and_history(
    crisis_alert: Alert, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(clinician).get(f"/alerts/{crisis_alert.pk}/").content.decode()
    assert re.search(r'<tr class="trigger">.*?186/112.*?triggered this alert; crisis range', page, re.S)
    assert "150/92" in page
    assert "<strong>you</strong> (Dr Assigned)" in page
    assert "Dr Assigned — <strong>owner now</strong>" in page
    assert "Opened by the safety rule on a reading" in page
    assert "Notified: Dr Assigned" in page
    assert "Contacted the patient" in page and "Advised the emergency department" in page
    assert "Access was justified" not in page  # a security disposition is not offered for a clinical alert


def test_acknowledging_without_a_disposition_or_note_is_a_field_error_and_stores_nothing(
    crisis_alert: Alert, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(clinician)
    for data in ({}, {"disposition": "access_justified", "note": "x"}, {"disposition": "contacted_patient"}):
        response = client.post(f"/alerts/{crisis_alert.pk}/acknowledge/", data)
        assert response.status_code == 400
        assert 'class="errorlist' in response.content.decode()
    too_short = client.post(f"/alerts/{crisis_alert.pk}/acknowledge/", {"disposition": "other", "note": "ok"})
    assert "Write a short note" in too_short.content.decode()
    crisis_alert.refresh_from_db()
    assert (crisis_alert.status, crisis_alert.disposition) == ("open", "")

    done = client.post(
        f"/alerts/{crisis_alert.pk}/acknowledge/",
        {"disposition": "advised_emergency", "note": "Told to go to the ED now"},
        follow=True,
    )
    assert "Alert acknowledged." in done.content.decode()
    page = client.get(f"/alerts/{crisis_alert.pk}/").content.decode()
    assert "Advised the emergency department" in page
    assert "Told to go to the ED now" in page
    assert "Acknowledged: advised the emergency department (Dr Assigned)" in page
    assert "Acknowledge alert" not in page


def test_the_alert_page_is_refused_to_the_wrong_people(
    crisis_alert: Alert,
    unassigned_clinician: User,
    safety_officer: User,
    ml_engineer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    assert portal_client_for(unassigned_clinician).get(f"/alerts/{crisis_alert.pk}/").status_code == 404
    assert portal_client_for(safety_officer).get(f"/alerts/{crisis_alert.pk}/").status_code == 404
    assert portal_client_for(ml_engineer).get(f"/alerts/{crisis_alert.pk}/").status_code == 403
    refused = portal_client_for(unassigned_clinician).post(
        f"/alerts/{crisis_alert.pk}/acknowledge/", {"disposition": "contacted_patient", "note": "Not mine"}
    )
    assert refused.status_code == 404
    crisis_alert.refresh_from_db()
    assert crisis_alert.status == "open"


def test_clinical_and_security_notices_live_in_separate_inboxes(
    crisis_alert: Alert,
    patient: Patient,
    clinician: User,
    safety_officer: User,  # before the emergency access, so there is an officer to tell
    emergency_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    clinical = portal_client_for(clinician).get("/inbox/").content.decode()
    assert "Clinical inbox" in clinical
    assert f"P0 alert {crisis_alert.pk} for patient P-0001 is yours" in clinical
    assert "emergency access to patient" not in clinical
    security = portal_client_for(safety_officer).get("/inbox/").content.decode()
    assert "Security inbox" in security
    assert "emergency access to patient P-0001" in security
    assert f"alert {crisis_alert.pk} for" not in security
    # Opening the alert marks its notice read.
    assert Notification.objects.filter(recipient=clinician, read_at__isnull=True).count() == 1
    portal_client_for(clinician).get(f"/alerts/{crisis_alert.pk}/")
    assert Notification.objects.filter(recipient=clinician, read_at__isnull=True).count() == 0
    assert portal_client_for(patient.user).get("/inbox/").status_code == 403


def test_the_safety_officer_acknowledges_a_security_alert_with_an_access_disposition(
    patient: Patient, safety_officer: User, emergency_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    alert = Alert.objects.get(kind="break_glass")
    client = portal_client_for(safety_officer)
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "Access was justified" in page and "Contacted the patient" not in page
    assert "Covering a P0 alert overnight" in page
    assert (
        client.post(f"/alerts/{alert.pk}/acknowledge/", {"disposition": "false_reading", "note": "n/a"}).status_code
        == 400
    )
    done = client.post(
        f"/alerts/{alert.pk}/acknowledge/", {"disposition": "access_justified", "note": "Ward confirmed"}
    )
    assert done.status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.disposition) == ("acknowledged", "access_justified")


# Pinned per database (see tests/portal/test_query_counts.py): session, user, the stop-switch banner, the worklist
# (one query whatever its length) and the overdue follow-ups (clinaiops.partnership: the patients, then their
# readings, alerts and plans).
WORKLIST = {"postgresql": 8, "sqlite": 8}[connection.vendor]


def test_the_security_inbox_points_the_safety_officer_to_open_model_integrity_alerts(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    from django.db import transaction

    from inference.monitoring.services.integrity import model_integrity_failure_record

    client = portal_client_for(safety_officer)
    assert "No open model-integrity alerts" in client.get("/alerts/").content.decode()
    with transaction.atomic():
        model_integrity_failure_record(version=deployed_model, arm="production", error="HashMismatch")
    page = client.get("/alerts/").content.decode()
    assert "1 open model-integrity alert</strong>" in page
    assert 'href="/monitoring/alerts/"' in page
