"""/api/v1/symptoms/ (issue 12): the patient reports a symptom with a severity and a note (encrypted at rest) and gets
the symptom back with its alerts, lists their symptoms, and is told of a hypotension alert already open."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import Alert, Patient, Symptom
from clinaiops.core.models import User
from tests.conftest import audit_actions, readings_add

URL = "/api/v1/symptoms/"


def test_a_symptom_with_severity_and_note_is_answered_as_stored(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    when = (timezone.now() - timedelta(minutes=30)).replace(microsecond=0)
    note = "Throbbing behind the eyes since lunch"
    response = api_client_for(patient.user).post(
        URL,
        {"kind": "headache", "severity": "moderate", "note": note, "reported_at": when.isoformat()},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    symptom = Symptom.objects.get(patient=patient)
    assert body == {
        "id": symptom.pk,
        "kind": "headache",
        "severity": "moderate",
        "reported_at": when.isoformat().replace("+00:00", "Z"),
        "note": note,
        "alerts": [],
        "guidance": None,
        "open_alerts": [],
    }
    assert (symptom.severity, symptom.note) == ("moderate", note)
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM care_symptom WHERE id = %s", [symptom.pk])
        stored = cursor.fetchone()[0]
    assert note not in stored  # encrypted at rest
    assert audit_actions().count("symptom.reported") == 1


def test_severity_and_note_are_optional(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    body = api_client_for(patient.user).post(URL, {"kind": "other"}, format="json").json()
    assert (body["severity"], body["note"]) == (None, "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "headache", "severity": "ZQXMARKSEV"}, "severity"),
        ({"kind": "headache", "note": "x" * 2001}, "note"),
        ({"kind": "headache", "note": ["ZQXMARKNOTE"]}, "note"),
        ({"kind": "headache", "mood": "ZQXMARKMOOD"}, "mood"),
        ({"kind": "headache", "reported_at": "9999-01-01T00:00:00Z"}, "reported_at"),
        ({"kind": "ZQXMARKKIND"}, "kind"),
    ],
)
def test_a_bad_symptom_is_refused_naming_the_field_without_quoting_it(
    body: dict[str, object], field: str, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert b"ZQXMARK" not in response.content
    assert Symptom.objects.count() == 0


def test_dizziness_while_hypotension_is_already_open_is_told_of_it(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    readings_add(patient, [(86, 55)], end=timezone.now() - timedelta(hours=3))
    readings_add(patient, [(88, 58)])  # two lows within the window: sustained hypotension is open
    alert = Alert.objects.get(patient=patient, kind="sustained_hypotension", status="open")
    response = client.post(URL, {"kind": "dizziness", "severity": "severe"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["alerts"] == ["sustained_hypotension"]
    assert [a["id"] for a in body["open_alerts"]] == [alert.pk]
    assert "emergency services" in body["guidance"]
    assert Alert.objects.filter(patient=patient).count() == 1
    assert audit_actions().count("alert.opened") == 1


def test_a_resent_symptom_is_stored_once_opens_nothing_and_is_told_of_the_open_alert(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    readings_add(patient, [(87, 62)])
    symptom = {"kind": "syncope", "reported_at": timezone.now().replace(microsecond=0).isoformat()}
    first = client.post(URL, symptom, format="json")
    assert first.status_code == 201 and first.json()["alerts"] == ["sustained_hypotension"]
    again = client.post(URL, symptom, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["alerts"] == ["sustained_hypotension"]
    assert Symptom.objects.filter(patient=patient).count() == 1
    # Once the care team has closed the alert, a resend neither reopens it nor mentions it.
    Alert.objects.filter(patient=patient).update(status="resolved")
    assert client.post(URL, symptom, format="json").json()["alerts"] == []
    assert Alert.objects.filter(patient=patient, status="open").count() == 0


def test_the_symptom_list_is_the_patients_own_newest_first_with_filters_and_pages(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    now = timezone.now().replace(microsecond=0)
    times = [now - timedelta(hours=h) for h in (1, 5, 30)]
    for kind, when in zip(("headache", "dizziness", "other"), times, strict=True):
        assert client.post(URL, {"kind": kind, "reported_at": when.isoformat()}, format="json").status_code == 201
    api_client_for(other_patient.user).post(URL, {"kind": "chest_pain"}, format="json")
    body = client.get(URL).json()
    assert [s["kind"] for s in body["results"]] == ["headache", "dizziness", "other"]
    assert set(body["results"][0]) == {"id", "kind", "severity", "reported_at", "note"}
    day = client.get(URL, {"from": (now - timedelta(hours=24)).isoformat()}).json()
    assert [s["kind"] for s in day["results"]] == ["headache", "dizziness"]
    bounded = client.get(URL, {"from": times[2].isoformat(), "to": times[1].isoformat()}).json()
    assert [s["kind"] for s in bounded["results"]] == ["dizziness", "other"]
    page = client.get(URL, {"limit": "1", "offset": "1"}).json()
    assert (page["count"], [s["kind"] for s in page["results"]]) == (3, ["dizziness"])
    theirs = api_client_for(other_patient.user).get(URL).json()
    assert [s["kind"] for s in theirs["results"]] == ["chest_pain"]


def test_symptoms_are_refused_to_staff(clinician: User, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(clinician)
    for response in (client.get(URL), client.post(URL, {"kind": "headache"}, format="json")):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert Symptom.objects.count() == 0
