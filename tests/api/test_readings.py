from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import Alert, Patient, Reading
from clinaiops.core.models import User
from tests.conftest import audit_actions


def _body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "taken_at": (timezone.now() - timedelta(minutes=3)).isoformat(),
        "systolic": 132,
        "diastolic": 84,
        "heart_rate": 70,
        "source": "cuff",
    }
    body.update(overrides)
    return body


def test_plausible_reading_is_stored_and_returned(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post("/api/v1/readings/", _body(), format="json")
    assert response.status_code == 201
    assert response.json()["systolic"] == 132
    assert Reading.objects.filter(patient=patient).count() == 1


def test_resent_reading_is_stored_once(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(patient.user)
    body = _body()
    assert client.post("/api/v1/readings/", body, format="json").status_code == 201
    again = client.post("/api/v1/readings/", body, format="json")
    assert again.status_code == 200
    assert Reading.objects.filter(patient=patient).count() == 1
    conflicting = client.post("/api/v1/readings/", {**body, "systolic": 150}, format="json")
    assert conflicting.status_code == 409
    assert Reading.objects.filter(patient=patient).count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"systolic": 301}, "systolic"),
        ({"systolic": 49}, "systolic"),
        ({"diastolic": 24}, "diastolic"),
        ({"diastolic": 201}, "diastolic"),
        ({"systolic": 120, "diastolic": 120}, "diastolic"),
        ({"taken_at": "2099-01-01T00:00:00Z"}, "taken_at"),
        ({"taken_at": "2026-11-21T07:30:00"}, "taken_at"),  # no offset
        ({"taken_at": "yesterday"}, "taken_at"),
        ({"source": "smartwatch"}, "source"),
        ({"unit": "kPa", "systolic": 17, "diastolic": 11}, "unit"),
        ({"systolic": "high"}, "systolic"),
        ({"heart_rate": 400}, "heart_rate"),
        ({"mood": "ok"}, "mood"),
    ],
)
def test_implausible_reading_is_refused_with_a_field_message_and_nothing_is_stored(
    patient: Patient, api_client_for: Callable[[User], APIClient], overrides: dict[str, object], field: str
) -> None:
    response = api_client_for(patient.user).post("/api/v1/readings/", _body(**overrides), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert field in body["fields"]
    assert Reading.objects.count() == 0
    assert "reading.ingested" not in audit_actions()


def test_refusal_is_audited_without_the_values(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    from clinaiops.audit.models import AuditEvent

    api_client_for(patient.user).post("/api/v1/readings/", _body(systolic=299, diastolic=250), format="json")
    event = AuditEvent.objects.get(action="reading.refused")
    assert event.outcome == "denied"
    # Keyed digests are hex and may hold "299" by chance; everything else in the payload must not.
    plain = [str(v) for v in event.payload_data.values() if not str(v).startswith("hmac-sha256:")]
    assert not any("299" in v or "250" in v for v in plain)


def test_malformed_json_gets_a_400_with_the_error_shape(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post(
        "/api/v1/readings/", data=b'{"systolic": 120,', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"code": "malformed_json", "message": "The request body is not valid JSON.", "fields": {}}


def test_oversized_body_is_refused_before_parsing(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    huge = b'{"note": "' + b"x" * (300 * 1024) + b'"}'
    response = api_client_for(patient.user).post("/api/v1/readings/", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert Reading.objects.count() == 0


def test_crisis_reading_opens_a_p0_alert_and_pauses_autonomy(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post("/api/v1/readings/", _body(systolic=186, diastolic=112), format="json")
    assert response.status_code == 201
    assert response.json()["alerts"] == ["hypertensive_crisis"]
    alert = Alert.objects.get(patient=patient)
    assert (alert.kind, alert.priority, alert.status) == ("hypertensive_crisis", "P0", "open")
    patient.refresh_from_db()
    assert patient.autonomy_paused
    assert {"alert.opened", "autonomy.paused"} <= set(audit_actions())


def test_two_low_readings_within_24h_open_a_hypotension_alert(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    first = client.post(
        "/api/v1/readings/",
        _body(systolic=86, diastolic=55, taken_at=(timezone.now() - timedelta(hours=5)).isoformat()),
        format="json",
    )
    assert first.json()["alerts"] == []  # one low home reading alone is not an alert
    second = client.post("/api/v1/readings/", _body(systolic=88, diastolic=58), format="json")
    assert second.json()["alerts"] == ["sustained_hypotension"]


def test_dizziness_with_a_low_reading_opens_a_hypotension_alert(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    client.post("/api/v1/readings/", _body(systolic=87, diastolic=62), format="json")
    response = client.post("/api/v1/symptoms/", {"kind": "dizziness"}, format="json")
    assert response.status_code == 201
    assert response.json()["alerts"] == ["sustained_hypotension"]


def test_staff_token_cannot_use_the_patient_api(clinician: User, api_client_for: Callable[[User], APIClient]) -> None:
    response = api_client_for(clinician).post("/api/v1/readings/", _body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_unauthenticated_request_is_refused(db: None) -> None:
    response = APIClient().get("/api/v1/recommendations/")
    assert response.status_code == 401


def test_wrong_password_gets_no_token(patient: Patient) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": patient.user.username, "password": "nope"}, format="json"
    )
    assert response.status_code == 401


def test_openapi_schema_is_served(db: None) -> None:
    response = APIClient().get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/readings/" in response.content
