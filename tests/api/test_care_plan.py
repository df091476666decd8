"""The patient's care plan in the mobile API (issue 12): goals with progress and trend, the notes the patient may
read, the next follow-up with its reason, the care team. Personas: the patient, another patient, the assigned
clinician (refused: this API is for patients), and the care team's members as the patient sees them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.escalation_chain import escalation_chain_set
from clinaiops.care.models import Patient
from clinaiops.core.models import Role, User
from clinaiops.partnership.models import CareNote
from clinaiops.partnership.services import (
    care_note_write,
    followup_override_set,
    goal_checkin_record,
    lifestyle_goal_set,
)
from tests.conftest import readings_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CARE_PLAN_URLS = ["/api/v1/goals/", "/api/v1/notes/", "/api/v1/follow-up/", "/api/v1/care-team/"]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture
def patient_client(patient: Patient, api_client_for: Callable[[User], APIClient]) -> APIClient:
    return api_client_for(patient.user)


def _note(clinician: User, patient: Patient, body: str, *, visible: bool, days_ago: int = 0) -> CareNote:
    note = care_note_write(actor=clinician, patient=patient, body=body, visible_to_patient=visible)
    if days_ago:
        # Written earlier: the service stamps "now", so the test moves the stamp back (no clock library here).
        CareNote.objects.filter(pk=note.pk).update(written_at=timezone.now() - timedelta(days=days_ago))
    return note


# --- Goals ---------------------------------------------------------------------------------------------------


def test_patient_sees_goals_in_their_words_with_progress_and_trend(
    patient: Patient, clinician: User, patient_client: APIClient
) -> None:
    lifestyle_goal_set(actor=clinician, patient=patient, kind="sodium", target_value="1500")
    today = timezone.localdate()
    # 30 days ago falls in the 28 days before the current window; yesterday in the current one.
    goal_checkin_record(actor=patient.user, patient=patient, kind="sodium", day=today - timedelta(days=30), value=2500)
    goal_checkin_record(actor=patient.user, patient=patient, kind="sodium", day=today - timedelta(days=1), value=1800)
    readings_add(patient, [(124, 76)] * 6)

    body = patient_client.get("/api/v1/goals/").json()

    assert body["window_days"] == 28
    bp, sodium = body["results"]
    assert bp["kind"] == "bp_target" and bp["goal"] == "Keep your blood pressure below 130/80"
    assert bp["status"] == "met" and bp["status_text"] == "You are on track."
    assert bp["current"] == "100 % of readings in range"
    assert bp["trend"] == "unknown" and bp["previous"] is None  # no readings in the 4 weeks before
    assert sodium["goal"] == "Keep salt (sodium) to at most 1,500 mg a day"
    assert sodium["current"] == "1,800 mg a day" and sodium["previous"] == "2,500 mg a day"
    assert sodium["status"] == "not_met" and sodium["status_text"] == "Not there yet; keep going."
    assert sodium["trend"] == "improving" and sodium["trend_text"] == "Better than the 4 weeks before"
    assert 0 < sodium["progress"] < 1


def test_a_goal_without_data_says_so_instead_of_guessing(
    patient: Patient, clinician: User, patient_client: APIClient
) -> None:
    lifestyle_goal_set(actor=clinician, patient=patient, kind="sleep", target_value="7")
    sleep = patient_client.get("/api/v1/goals/").json()["results"][1]
    assert sleep["status"] == "no_data" and sleep["current"] == "No data yet"
    assert sleep["progress"] is None and sleep["trend"] == "unknown"
    assert sleep["status_text"] == "We have no information on this yet."


def test_another_patients_goals_never_appear(
    patient: Patient, other_patient: Patient, unassigned_clinician: User, patient_client: APIClient
) -> None:
    lifestyle_goal_set(actor=unassigned_clinician, patient=other_patient, kind="activity", target_value="150")
    kinds = [goal["kind"] for goal in patient_client.get("/api/v1/goals/").json()["results"]]
    assert kinds == ["bp_target"]


def test_goals_queries_do_not_grow_with_the_data(
    patient: Patient, clinician: User, patient_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    for kind, target in (("sodium", "1500"), ("activity", "150"), ("sleep", "7"), ("adherence", "90")):
        lifestyle_goal_set(actor=clinician, patient=patient, kind=kind, target_value=target)
    readings_add(patient, [(128, 78)] * 3)
    with django_assert_max_num_queries(GOALS_MAX_QUERIES):
        assert len(patient_client.get("/api/v1/goals/").json()["results"]) == 5
    readings_add(patient, [(128, 78)] * 20, end=timezone.now() - timedelta(days=2))
    with django_assert_max_num_queries(GOALS_MAX_QUERIES):
        assert len(patient_client.get("/api/v1/goals/").json()["results"]) == 5


# --- Notes ---------------------------------------------------------------------------------------------------


def test_patient_sees_only_the_notes_marked_for_them_newest_first(
    patient: Patient, clinician: User, patient_client: APIClient
) -> None:
    _note(clinician, patient, "Keep walking after dinner.", visible=True, days_ago=3)
    _note(clinician, patient, "Query white-coat effect; discuss ABPM.", visible=False)
    _note(clinician, patient, "Well done on the salt this month.", visible=True)

    response = patient_client.get("/api/v1/notes/")

    body = response.json()
    assert body["count"] == 2
    assert [n["text"] for n in body["results"]] == ["Well done on the salt this month.", "Keep walking after dinner."]
    assert body["results"][0]["author"] == {"name": "Dr Assigned", "role": "Clinician"}
    assert b"white-coat" not in response.content  # the clinician-only note, in no field


def test_notes_filter_by_day_inclusive(patient: Patient, clinician: User, patient_client: APIClient) -> None:
    _note(clinician, patient, "Ten days ago.", visible=True, days_ago=10)
    _note(clinician, patient, "Five days ago.", visible=True, days_ago=5)
    _note(clinician, patient, "Today.", visible=True)
    today = timezone.localdate()
    since, until = (today - timedelta(days=5)).isoformat(), (today - timedelta(days=1)).isoformat()

    texts = [n["text"] for n in patient_client.get(f"/api/v1/notes/?since={since}&until={until}").json()["results"]]
    assert texts == ["Five days ago."]
    texts = [n["text"] for n in patient_client.get(f"/api/v1/notes/?since={today.isoformat()}").json()["results"]]
    assert texts == ["Today."]


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=2026-02-30", "since"), ("until=yesterday", "until"), ("since=2026-11-02&until=2026-11-01", "until")],
)
def test_an_invalid_note_filter_is_a_400_naming_it_without_echoing_it(
    patient_client: APIClient, query: str, field: str
) -> None:
    response = patient_client.get(f"/api/v1/notes/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed" and list(body["fields"]) == [field]
    value = query.split("=")[-1]
    assert value.encode() not in response.content


def test_another_patients_notes_never_appear(
    patient: Patient, other_patient: Patient, unassigned_clinician: User, patient_client: APIClient
) -> None:
    _note(unassigned_clinician, other_patient, "For the other patient only.", visible=True)
    response = patient_client.get("/api/v1/notes/")
    assert response.json()["count"] == 0 and b"other patient" not in response.content


def test_notes_list_queries_do_not_grow_with_the_list(
    patient: Patient, clinician: User, patient_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    _note(clinician, patient, "One.", visible=True)
    with django_assert_max_num_queries(NOTES_MAX_QUERIES):
        assert patient_client.get("/api/v1/notes/").json()["count"] == 1
    other_author = UserFactory(username="dr_second", role=Role.CLINICIAN, printed_name="Dr Second")
    patient.care_team.members.add(other_author)
    for i in range(6):
        _note(other_author if i % 2 else clinician, patient, f"Note {i}.", visible=True)
    with django_assert_max_num_queries(NOTES_MAX_QUERIES):
        assert patient_client.get("/api/v1/notes/").json()["count"] == 7


# --- Follow-up -----------------------------------------------------------------------------------------------


def test_follow_up_gives_the_rules_date_and_reason_in_plain_words(patient: Patient, patient_client: APIClient) -> None:
    body = patient_client.get("/api/v1/follow-up/").json()
    # Enrolled 2026-01-01 with no readings: "too few readings", four weeks from enrolment, long past.
    assert body["due_on"] == "2026-01-29"
    assert body["reason"] == "because there have been few readings lately"
    assert body["overdue"] is True and body["set_by_care_team"] is False and body["last_followup_on"] is None
    assert body["text"] == (
        "Your care team will be in touch soon to review your care, because there have been few readings lately."
    )


def test_a_clinicians_override_shows_its_date_but_keeps_the_clinicians_reason_private(
    patient: Patient, clinician: User, patient_client: APIClient
) -> None:
    due = timezone.localdate() + timedelta(days=10)
    followup_override_set(actor=clinician, patient=patient, due_on=due, reason="Awaiting the renal panel results")

    response = patient_client.get("/api/v1/follow-up/")

    body = response.json()
    assert body["due_on"] == due.isoformat() and body["set_by_care_team"] is True and body["overdue"] is False
    assert body["reason"] == "as agreed with your care team"
    assert body["text"].startswith(f"Your care team plans to review your care by {due.day} ")
    assert b"renal" not in response.content and b"Dr Assigned" not in response.content


# --- The care team -------------------------------------------------------------------------------------------


def test_care_team_lists_clinicians_by_name_and_role_and_who_to_contact_first(
    patient: Patient, clinician: User, unassigned_clinician: User, administrator: User, patient_client: APIClient
) -> None:
    team = patient.care_team
    lead = UserFactory(username="dr_lead", role=Role.CLINICIAN, printed_name="Dr Lead", email="lead@clinic.example")
    gateway = UserFactory(username="gateway-a", role=Role.DEVICE_GATEWAY, printed_name="Cuff gateway")
    retired = UserFactory(username="dr_gone", role=Role.CLINICIAN, printed_name="Dr Gone", is_active=False)
    team.members.add(lead, gateway, retired)
    escalation_chain_set(actor=administrator, team=team, members=[clinician], lead=lead)

    body = patient_client.get("/api/v1/care-team/").json()

    assert body["name"] == "Clinic A"
    assert body["members"] == [
        {"name": "Dr Assigned", "role": "Clinician", "is_lead": False},
        {"name": "Dr Lead", "role": "Care team lead", "is_lead": True},
    ]  # not the gateway, not the closed account, not the other team's clinician
    assert body["contact_first"] == {"name": "Dr Assigned", "role": "Clinician", "is_lead": False}
    assert "911" in body["urgent_help"]


def test_a_clinician_without_a_printed_name_is_shown_by_role_never_by_username(
    patient: Patient, patient_client: APIClient
) -> None:
    nameless = UserFactory(username="jsmith42", role=Role.CLINICIAN, printed_name="", first_name="", last_name="")
    patient.care_team.members.add(nameless)
    response = patient_client.get("/api/v1/care-team/")
    assert {"name": "Clinician", "role": "Clinician", "is_lead": False} in response.json()["members"]
    assert b"jsmith42" not in response.content and b"dr_assigned" not in response.content


def test_care_team_queries_are_bounded(
    patient: Patient, patient_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(CARE_TEAM_MAX_QUERIES):
        assert len(patient_client.get("/api/v1/care-team/").json()["members"]) == 1
    patient.care_team.members.add(
        *(UserFactory(username=f"dr_{i}", role=Role.CLINICIAN, printed_name=f"Dr {i}") for i in range(5))
    )
    with django_assert_max_num_queries(CARE_TEAM_MAX_QUERIES):
        assert len(patient_client.get("/api/v1/care-team/").json()["members"]) == 6


# --- Refusals and leaks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", CARE_PLAN_URLS)
def test_staff_tokens_are_refused(
    url: str, patient: Patient, clinician: User, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(clinician).get(url)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("url", CARE_PLAN_URLS)
def test_no_token_is_a_401(url: str) -> None:
    response = APIClient().get(url)
    assert response.status_code == 401 and set(response.json()) == {"code", "message", "fields"}


@pytest.mark.parametrize("url", CARE_PLAN_URLS)
def test_responses_contain_no_email_address(
    url: str, patient: Patient, clinician: User, patient_client: APIClient
) -> None:
    User.objects.filter(pk=clinician.pk).update(email="dr.assigned@clinic.example")
    patient.care_team.members.add(
        UserFactory(username="nurse@clinic.example", role=Role.CLINICIAN, printed_name="", email="n@clinic.example")
    )
    _note(clinician, patient, "See you soon.", visible=True)
    followup_override_set(
        actor=clinician, patient=patient, due_on=timezone.localdate() + timedelta(days=7), reason="Agreed by phone"
    )
    response = patient_client.get(url)
    assert response.status_code == 200
    assert not EMAIL.search(response.content.decode()), url


@pytest.mark.parametrize("url", [*CARE_PLAN_URLS, "/api/v1/alerts/"])
def test_a_patient_account_without_a_patient_record_gets_a_404(
    url: str, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(UserFactory(username="pat_unenrolled", role=Role.PATIENT)).get(url)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize("url", CARE_PLAN_URLS)
def test_answers_are_never_cached(url: str, patient_client: APIClient) -> None:
    assert "no-store" in patient_client.get(url)["Cache-Control"]


# Authentication loads the user with the patient and the care team in one query (clinaiops.api.auth); then the
# selectors. Goals: readings, goals, check-ins and doses for each of the two windows (9 in all, whatever the number
# of readings). Notes: count and page. Care team: members, the escalation chain's two, the lead.
GOALS_MAX_QUERIES = 9
NOTES_MAX_QUERIES = 3
CARE_TEAM_MAX_QUERIES = 5
