"""/api/v1/doses/ and /api/v1/doses/schedule/ (issue 12): the patient logs the day's dose (audited, one entry a
day), lists the log, and sees the regimen's daily schedule and adherence as the care plan computes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import DoseLog, Patient
from clinaiops.care.services import dose_log_store
from clinaiops.core.models import User
from clinaiops.partnership.selectors import adherence_between
from tests.conftest import audit_actions

URL = "/api/v1/doses/"


def test_a_logged_dose_is_stored_audited_and_answered(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    today = timezone.localdate()
    response = api_client_for(patient.user).post(URL, {"day": today.isoformat(), "taken": True}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["day"], body["taken"], body["step"], body["regimen"]) == (
        today.isoformat(), True, 2, "Amlodipine 10 mg daily",
    )  # fmt: skip
    dose = DoseLog.objects.get(patient=patient)
    assert (dose.day, dose.taken) == (today, True)
    event = AuditEvent.objects.get(action="dose.logged")
    assert event.actor_id == patient.user.pk and event.object_id == str(dose.pk)
    assert "taken" not in event.payload_data  # adherence is clinical: the ledger holds a digest


def test_logging_a_day_again_corrects_it(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(patient.user)
    day = (timezone.localdate() - timedelta(days=1)).isoformat()
    client.post(URL, {"day": day, "taken": False}, format="json")
    corrected = client.post(URL, {"day": day, "taken": True}, format="json")
    assert corrected.status_code == 201
    assert list(DoseLog.objects.filter(patient=patient).values_list("taken", flat=True)) == [True]
    assert audit_actions().count("dose.logged") == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"day": (timezone.now() + timedelta(days=2)).date().isoformat(), "taken": True}, "day"),
        ({"day": (timezone.now() - timedelta(days=400)).date().isoformat(), "taken": True}, "day"),
        ({"day": "2026-02-30", "taken": True}, "day"),
        ({"day": "yesterday", "taken": True}, "day"),
        ({"day": timezone.now().date().isoformat(), "taken": "perhaps"}, "taken"),
        ({"day": timezone.now().date().isoformat()}, "taken"),
        ({"day": timezone.now().date().isoformat(), "taken": True, "pills": 2}, "pills"),
    ],
)
def test_an_implausible_dose_is_refused_with_a_field_message(
    body: dict[str, object], field: str, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert b"perhaps" not in response.content
    assert DoseLog.objects.count() == 0
    assert "dose.logged" not in audit_actions()


def test_the_dose_list_is_the_patients_own_newest_first_with_day_filters(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    today = timezone.localdate()
    for days_ago in range(5):
        dose_log_store(patient=patient, day=today - timedelta(days=days_ago), taken=days_ago != 2)
    dose_log_store(patient=other_patient, day=today, taken=False)
    client = api_client_for(patient.user)
    body = client.get(URL).json()
    assert body["count"] == 5
    assert [d["day"] for d in body["results"]] == [(today - timedelta(days=n)).isoformat() for n in range(5)]
    window = client.get(
        URL, {"from": (today - timedelta(days=3)).isoformat(), "to": (today - timedelta(days=1)).isoformat()}
    ).json()
    assert [d["taken"] for d in window["results"]] == [True, False, True]
    assert client.get(URL, {"limit": "2"}).json()["results"][1]["day"] == (today - timedelta(days=1)).isoformat()
    assert [d["taken"] for d in api_client_for(other_patient.user).get(URL).json()["results"]] == [False]


def test_the_schedule_shows_the_daily_regimen_what_was_logged_and_adherence(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    today = timezone.localdate()
    # 20 days logged: taken except every fourth day; nothing logged 1 and 25 days ago.
    logged = [n for n in range(30) if n not in (1, 25)][:20]
    for days_ago in logged:
        dose_log_store(patient=patient, day=today - timedelta(days=days_ago), taken=days_ago % 4 != 0)
    body = api_client_for(patient.user).get(f"{URL}schedule/").json()
    assert (body["current_step"], body["regimen"], body["frequency"]) == (2, "Amlodipine 10 mg daily", "daily")
    assert len(body["scheduled"]) == 14
    assert body["scheduled"][0] == {"day": today.isoformat(), "doses": 1, "taken": False}  # day 0: 0 % 4 == 0
    assert body["scheduled"][1] == {"day": (today - timedelta(days=1)).isoformat(), "doses": 1, "taken": None}
    by_window = {a["days"]: a for a in body["adherence"]}
    for days in (14, 30):
        expected = adherence_between(patient, start=today - timedelta(days=days - 1), end=today)
        assert (by_window[days]["logged"], by_window[days]["taken"]) == (expected.logged, expected.taken)
        assert by_window[days]["percent"] == expected.percent
    assert by_window[14]["logged"] == 13 and by_window[14]["taken"] == 9


def test_with_nothing_logged_adherence_is_unknown_not_zero(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    body = api_client_for(patient.user).get(f"{URL}schedule/").json()
    assert [a["percent"] for a in body["adherence"]] == [None, None]
    assert all(day["taken"] is None for day in body["scheduled"])


def test_doses_are_refused_to_staff_and_anonymous_callers(
    clinician: User, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(clinician)
    today = timezone.localdate().isoformat()
    for response in (
        client.post(URL, {"day": today, "taken": True}, format="json"),
        client.get(URL),
        client.get(f"{URL}schedule/"),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert APIClient().get(URL).status_code == 401
    assert DoseLog.objects.count() == 0
