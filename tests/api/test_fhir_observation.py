"""POST /api/v1/fhir/Observation: one US Core Blood Pressure or Heart Rate Observation, through reading_ingest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.guidance import alert_guidance
from clinaiops.care.models import Alert, AlertKind, AlertStatus, Patient, Reading
from clinaiops.core.models import User
from tests.api.fhir_examples import (
    FHIR_JSON,
    blood_pressure,
    example,
    expressions,
    heart_rate,
    instant,
    post,
    recent,
)
from tests.conftest import audit_actions

URL = "/api/v1/fhir/Observation"


@pytest.fixture
def client(patient: Patient, api_client_for: Callable[[User], APIClient]) -> APIClient:
    return api_client_for(patient.user)


def test_us_core_blood_pressure_is_stored_through_reading_ingest_and_audited(
    patient: Patient, client: APIClient
) -> None:
    when = recent(offset="+01:00")
    response = post(client, URL, blood_pressure(when=when))
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    reading = Reading.objects.get(patient=patient)
    assert (reading.systolic, reading.diastolic, reading.heart_rate) == (132, 84, None)
    assert reading.taken_at == instant(when)
    assert reading.utc_offset_minutes == 60  # the device's own offset, kept
    assert reading.source == "cuff"  # a contained Device typed as a sphygmomanometer (SNOMED CT 466086009)
    assert reading.identifier == "urn:oid:2.16.840.1.113883.3.9999.1|bp-20261121-0730"
    assert response["Location"] == f"Observation/bp-{reading.pk}"
    event = AuditEvent.objects.get(action="reading.ingested", object_id=str(reading.pk))
    assert event.actor == patient.user


def test_a_crisis_reading_opens_an_alert_and_the_answer_carries_the_guidance(
    patient: Patient, client: APIClient
) -> None:
    response = post(client, URL, blood_pressure(systolic=192, diastolic=124))
    assert response.status_code == 201
    alert = Alert.objects.get(patient=patient, status=AlertStatus.OPEN)
    assert alert.kind == AlertKind.HYPERTENSIVE_CRISIS
    warnings = [issue for issue in response.json()["issue"] if issue["severity"] == "warning"]
    assert [w["diagnostics"] for w in warnings] == [alert_guidance(AlertKind.HYPERTENSIVE_CRISIS)]
    assert warnings[0]["details"]["coding"][0]["code"] == "hypertensive_crisis"
    # A second crisis while the first is open: no second alert, but the patient is told again.
    again = post(client, URL, blood_pressure(systolic=195, diastolic=126, when=recent(minutes=10), ident="bp-2"))
    assert again.status_code == 201
    assert Alert.objects.filter(patient=patient).count() == 1
    assert any(issue["severity"] == "warning" for issue in again.json()["issue"])


def test_kilopascals_are_converted_to_mmhg(patient: Patient, client: APIClient) -> None:
    # 17.6 kPa × 7.50062 = 132.01 mmHg; 11.2 kPa = 84.01 mmHg.
    response = post(client, URL, blood_pressure(systolic=17.6, diastolic=11.2, unit="kPa"))
    assert response.status_code == 201, response.content
    reading = Reading.objects.get(patient=patient)
    assert (reading.systolic, reading.diastolic) == (132, 84)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda q: q.update(code="mmHg"), "Observation.component[0].valueQuantity.code"),
        (lambda q: q.update(code="[psi]"), "Observation.component[0].valueQuantity.code"),
        (lambda q: (q.pop("code"), q.update(unit="cmHg")), "Observation.component[0].valueQuantity.unit"),
        (lambda q: q.update(system="http://example.org/units"), "Observation.component[0].valueQuantity.system"),
    ],
)
def test_a_unit_other_than_ucum_mmhg_or_kpa_is_refused_naming_the_element(
    patient: Patient, client: APIClient, change: Callable[[dict[str, Any]], Any], expression: str
) -> None:
    observation = blood_pressure()
    change(observation["component"][0]["valueQuantity"])
    response = post(client, URL, observation)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert expressions(outcome) == [expression]
    assert outcome["issue"][0]["severity"] == "error"
    assert not Reading.objects.filter(patient=patient).exists()


def test_a_heart_rate_in_beats_per_minute_only(patient: Patient, client: APIClient) -> None:
    observation = heart_rate()
    observation["valueQuantity"]["code"] = "Hz"
    response = post(client, URL, observation)
    assert response.status_code == 400
    assert expressions(response.json()) == ["Observation.valueQuantity.code"]


def test_a_later_heart_rate_fills_the_reading_at_its_time_and_is_audited(patient: Patient, client: APIClient) -> None:
    when = recent(minutes=40, offset="-05:00")
    assert post(client, URL, blood_pressure(when=when)).status_code == 201
    reading = Reading.objects.get(patient=patient)
    before = reading.updated_at
    response = post(client, URL, heart_rate(value=71, when=when))
    assert response.status_code == 201, response.content
    reading.refresh_from_db()
    assert reading.heart_rate == 71
    assert reading.updated_at > before
    assert Reading.objects.filter(patient=patient).count() == 1
    filled = AuditEvent.objects.filter(action="reading.ingested", object_id=str(reading.pk)).order_by("seq")
    assert filled.count() == 2
    assert filled.last().payload_data["update"] == "heart_rate"  # type: ignore[union-attr]
    assert filled.last().actor == patient.user  # type: ignore[union-attr]
    # Sent again: nothing changes; a different one is a conflict, not an overwrite.
    assert post(client, URL, heart_rate(value=71, when=when)).status_code == 200
    conflicting = post(client, URL, heart_rate(value=90, when=when))
    assert conflicting.status_code == 409
    assert expressions(conflicting.json()) == ["Observation.valueQuantity.value"]
    reading.refresh_from_db()
    assert reading.heart_rate == 71


def test_a_heart_rate_with_no_panel_at_its_time_stores_nothing_and_says_so(patient: Patient, client: APIClient) -> None:
    response = post(client, URL, heart_rate())
    assert response.status_code == 200
    [issue] = response.json()["issue"]
    assert (issue["severity"], issue["code"]) == ("warning", "not-found")
    assert not Reading.objects.filter(patient=patient).exists()


def test_an_identifier_dedupes_a_resend_and_if_none_exist_is_honoured(patient: Patient, client: APIClient) -> None:
    observation = blood_pressure()
    assert post(client, URL, observation).status_code == 201
    assert post(client, URL, observation).status_code == 200  # the same measurement again
    # Same identifier, other values, no conditional create: a conflict naming the identifier.
    changed = blood_pressure(systolic=150, when=recent(minutes=5))
    conflicting = post(client, URL, changed)
    assert conflicting.status_code == 409
    assert expressions(conflicting.json()) == ["Observation.identifier"]
    # With If-None-Exist the match answers 200 and stores nothing, whatever the body says.
    conditional = post(
        client, URL, changed, HTTP_IF_NONE_EXIST="identifier=urn:oid:2.16.840.1.113883.3.9999.1|bp-20261121-0730"
    )
    assert conditional.status_code == 200
    assert Reading.objects.filter(patient=patient).count() == 1
    assert audit_actions(action="reading.ingested") == ["reading.ingested"]


def test_the_device_decides_the_source(patient: Patient, client: APIClient) -> None:
    watch = blood_pressure(when=recent(minutes=50))
    watch.pop("contained")
    watch["device"] = {"display": "Wrist wearable (PPG)"}
    assert post(client, URL, watch).status_code == 201
    ecg = blood_pressure(when=recent(minutes=40))
    ecg["identifier"][0]["value"] = "bp-ecg"
    ecg["contained"][0]["type"] = {"coding": [{"system": "http://snomed.info/sct", "code": "86184003"}]}
    assert post(client, URL, ecg).status_code == 201
    bare = blood_pressure(when=recent(minutes=30))
    bare["identifier"][0]["value"] = "bp-bare"
    bare.pop("contained")
    bare.pop("device")
    assert post(client, URL, bare).status_code == 201
    assert list(Reading.objects.filter(patient=patient).order_by("taken_at").values_list("source", flat=True)) == [
        "ppg",
        "ecg",
        "cuff",
    ]


@pytest.mark.parametrize(
    ("when", "expression"),
    [
        ("2019-01-01T07:30:00Z", "Observation.effectiveDateTime"),  # older than the plausible window
        ("2999-01-01T07:30:00Z", "Observation.effectiveDateTime"),  # the future
        ("2026-10-03T07:30:00", "Observation.effectiveDateTime"),  # no offset
        ("2026-10-03", "Observation.effectiveDateTime"),  # a date is not a time
        ("2026-10-03T07:60:00Z", "Observation.effectiveDateTime"),
        ("2026-02-30T07:30:00Z", "Observation.effectiveDateTime"),
        ("2026-10-03T07:30:00+24:00", "Observation.effectiveDateTime"),
        ("0001-01-01T00:00:00+14:00", "Observation.effectiveDateTime"),
    ],
)
def test_an_implausible_or_unreal_time_is_refused_naming_the_element(
    patient: Patient, client: APIClient, when: str, expression: str
) -> None:
    response = post(client, URL, blood_pressure(when=when))
    assert response.status_code == 400, response.content
    assert expressions(response.json()) == [expression]
    assert when not in response.content.decode()  # never echoed
    assert not Reading.objects.exists()


def test_implausible_values_are_refused_by_reading_ingest_naming_the_element(
    patient: Patient, client: APIClient
) -> None:
    response = post(client, URL, blood_pressure(systolic=320, diastolic=84))
    assert response.status_code == 400
    outcome = response.json()
    assert expressions(outcome) == ["Observation.component[0].valueQuantity.value"]
    assert "320" not in response.content.decode()
    assert not Reading.objects.exists()
    assert AuditEvent.objects.filter(action="reading.refused", outcome="denied").count() == 1


def test_application_json_is_accepted_too(patient: Patient, client: APIClient) -> None:
    response = client.post(URL, blood_pressure(), format="json")
    assert response.status_code == 201
    assert response["Content-Type"].startswith(FHIR_JSON)


def test_a_patient_cannot_post_for_another_patient_and_the_attempt_is_audited(
    patient: Patient, other_patient: Patient, client: APIClient
) -> None:
    foreign = post(client, URL, blood_pressure(code=other_patient.code))
    unknown = post(client, URL, blood_pressure(code="P-9999"))
    assert foreign.status_code == unknown.status_code == 403
    assert foreign.json() == unknown.json()  # no oracle: an unknown patient is answered the same
    assert expressions(foreign.json()) == ["Observation.subject"]
    assert not Reading.objects.exists()
    denied = AuditEvent.objects.filter(action="access.denied", actor=patient.user, outcome="denied")
    assert denied.count() == 2
    assert {e.payload_data["reason"] for e in denied} == {"fhir_subject_not_allowed"}


def test_staff_are_refused_with_an_operation_outcome(
    clinician: User, api_client_for: Callable[[User], APIClient], patient: Patient
) -> None:
    response = post(api_client_for(clinician), URL, blood_pressure())
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not Reading.objects.exists()


def test_without_a_token_the_answer_is_an_operation_outcome_401(patient: Patient) -> None:
    response = post(APIClient(), URL, blood_pressure())
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response["WWW-Authenticate"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[" * 1000 + "]" * 1000,
        '{"a": ' + "[" * 40 + "1" + "]" * 40 + "}",  # valid JSON, nested deeper than the parser allows
        json.dumps([1, 2]),
        json.dumps({"resourceType": "Patient", "id": "x"}),
        json.dumps({**example("blood-pressure"), "contained": [{"resourceType": "NotAType"}]}),
        json.dumps({**example("blood-pressure"), "secretField": "Jane Doe"}),
        json.dumps({**example("blood-pressure"), "status": "made-up"}),
        json.dumps({**example("blood-pressure"), "component": "nope"}),
        json.dumps({**example("blood-pressure"), "code": {"coding": [{"system": "http://loinc.org", "code": "1-1"}]}}),
        json.dumps({**example("blood-pressure"), "component": []}),
        json.dumps({**example("blood-pressure"), "subject": {"reference": "Group/1"}}),
        json.dumps({**example("blood-pressure"), "effectiveDateTime": 12}),
        '{"resourceType": "Observation", "valueQuantity": {"value": 1e400}}',
        '{"resourceType": "Observation", "valueQuantity": {"value": NaN}}',
    ],
)
def test_malformed_or_hostile_bodies_get_an_operation_outcome_4xx_never_a_5xx(
    patient: Patient, client: APIClient, body: str
) -> None:
    response = client.post(URL, body, content_type=FHIR_JSON)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(issue["severity"] in ("error", "fatal") for issue in outcome["issue"])
    for secret in ("Jane Doe", "NotAType", "made-up", "Group/1"):
        assert secret not in response.content.decode()
    assert not Reading.objects.exists()


def test_an_idempotency_key_replays_the_first_answer(patient: Patient, client: APIClient) -> None:
    body = blood_pressure()
    first = post(client, URL, body, HTTP_IDEMPOTENCY_KEY="k-fhir-1")
    again = post(client, URL, body, HTTP_IDEMPOTENCY_KEY="k-fhir-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = post(client, URL, blood_pressure(systolic=140), HTTP_IDEMPOTENCY_KEY="k-fhir-1")
    assert other.status_code == 422
    assert other.json()["resourceType"] == "OperationOutcome"
    assert Reading.objects.filter(patient=patient).count() == 1
