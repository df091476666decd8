"""GET /api/v1/me/ and GET /api/v1/readings/: a patient sees their own record, nobody else's."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from tests.conftest import readings_add


def test_me_shows_the_patients_target_regimen_and_care_team(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    body = api_client_for(patient.user).get("/api/v1/me/").json()
    assert body == {
        "code": "P-0001",
        "target": {"systolic": 130, "diastolic": 80},
        "current_step": 2,
        "regimen": "Amlodipine 10 mg daily",
        "care_team": "Clinic A",
    }


def test_me_is_refused_to_staff_and_anonymous_callers(
    clinician: User, api_client_for: Callable[[User], APIClient]
) -> None:
    assert api_client_for(clinician).get("/api/v1/me/").status_code == 403
    assert APIClient().get("/api/v1/me/").status_code == 401


def test_readings_lists_only_the_patients_own_readings_newest_first(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    readings_add(patient, [(141, 91), (136, 86), (128, 82)])
    readings_add(other_patient, [(175, 105)])
    body = api_client_for(patient.user).get("/api/v1/readings/").json()
    assert body["count"] == 3
    assert [(r["systolic"], r["diastolic"]) for r in body["results"]] == [(128, 82), (136, 86), (141, 91)]
    assert set(body["results"][0]) == {
        "id", "taken_at", "systolic", "diastolic", "heart_rate", "source", "received_at", "updated_at",
    }  # fmt: skip
    theirs = api_client_for(other_patient.user).get("/api/v1/readings/").json()
    assert [r["systolic"] for r in theirs["results"]] == [175]


def test_readings_are_refused_to_staff(clinician: User, api_client_for: Callable[[User], APIClient]) -> None:
    response = api_client_for(clinician).get("/api/v1/readings/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
