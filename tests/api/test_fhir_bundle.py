"""POST /api/v1/fhir/: transaction (all or nothing) and batch (each entry on its own) Bundles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, Patient, Reading
from clinaiops.core.models import User
from tests.api.fhir_examples import (
    FHIR_JSON,
    blood_pressure,
    bundle,
    example,
    expressions,
    heart_rate,
    instant,
    post,
    recent,
)
from tests.conftest import audit_actions

URL = "/api/v1/fhir/"


@pytest.fixture
def client(patient: Patient, api_client_for: Callable[[User], APIClient]) -> APIClient:
    return api_client_for(patient.user)


def _example_transaction(when: str) -> dict[str, Any]:
    body = example("transaction-bundle")
    for item in body["entry"]:
        item["resource"]["effectiveDateTime"] = when
    return body


def _statuses(answer: dict[str, Any]) -> list[str]:
    return [item["response"]["status"] for item in answer["entry"]]


def test_a_transaction_stores_the_panel_with_the_heart_rate_of_the_same_time(
    patient: Patient, client: APIClient
) -> None:
    when = recent(offset="-05:00")
    response = post(client, URL, _example_transaction(when))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    answer = response.json()
    assert (answer["resourceType"], answer["type"]) == ("Bundle", "transaction-response")
    assert _statuses(answer) == ["201 Created", "201 Created"]
    reading = Reading.objects.get(patient=patient)
    assert (reading.systolic, reading.diastolic, reading.heart_rate) == (141, 88, 74)
    assert reading.taken_at == instant(when)
    assert reading.utc_offset_minutes == -300
    assert reading.source == "cuff"  # "Upper-arm blood pressure cuff"
    assert reading.identifier == "https://gateway.example.org/measurements|m-1001"
    assert answer["entry"][0]["response"]["location"] == f"Observation/bp-{reading.pk}"
    # One ingest, through reading_ingest, whose audit digest covers the heart rate too.
    assert audit_actions(action="reading.ingested") == ["reading.ingested"]


def test_a_resent_conditional_create_bundle_stores_nothing_twice(patient: Patient, client: APIClient) -> None:
    body = _example_transaction(recent())
    assert post(client, URL, body).status_code == 200
    again = post(client, URL, body)
    assert again.status_code == 200
    assert _statuses(again.json()) == ["200 OK", "200 OK"]
    # Even with other values: the ifNoneExist match answers without a write.
    body["entry"][0]["resource"]["component"][0]["valueQuantity"]["value"] = 150
    assert _statuses(post(client, URL, body).json())[0] == "200 OK"
    assert Reading.objects.filter(patient=patient).count() == 1
    assert audit_actions(action="reading.ingested") == ["reading.ingested"]


def test_a_transaction_with_a_bad_entry_stores_nothing_and_names_the_entry(patient: Patient, client: APIClient) -> None:
    good = [blood_pressure(when=recent(minutes=m), ident=f"bp-{m}") for m in (50, 40)]
    bad = blood_pressure(when=recent(minutes=30), ident="bp-30")
    bad["component"][0]["valueQuantity"]["code"] = "mmHg"
    response = post(client, URL, bundle("transaction", *good, bad, heart_rate(when=recent(minutes=50))))
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert expressions(outcome) == ["Bundle.entry[2].resource.component[0].valueQuantity.code"]
    assert not Reading.objects.exists()
    refused = AuditEvent.objects.get(action="reading.refused", object_type="fhir_bundle")
    assert refused.actor == patient.user
    assert refused.payload_data["reason"] == (
        "fhir_transaction:Bundle.entry[2].resource.component[0].valueQuantity.code"
    )


def test_a_transaction_refused_by_reading_ingest_rolls_back_the_entries_before_it(
    patient: Patient, client: APIClient
) -> None:
    crisis = blood_pressure(systolic=200, diastolic=125, when=recent(minutes=50), ident="bp-a")
    implausible = blood_pressure(systolic=320, diastolic=84, when=recent(minutes=40), ident="bp-b")
    response = post(client, URL, bundle("transaction", crisis, implausible))
    assert response.status_code == 400
    assert expressions(response.json()) == ["Bundle.entry[1].resource.component[0].valueQuantity.value"]
    assert "320" not in response.content.decode()
    # The first entry's reading, its alert and its audit rolled back with the refusal of the second.
    assert not Reading.objects.exists()
    assert not Alert.objects.exists()
    assert audit_actions(action="reading.ingested") == []
    refused = AuditEvent.objects.filter(action="reading.refused")
    assert [e.object_type for e in refused] == ["fhir_bundle"]  # audited once, after the rollback
    assert refused.get().payload_data["reason"] == "fhir_transaction:entry[1]:systolic"


def test_a_batch_answers_each_entry_on_its_own(patient: Patient, other_patient: Patient, client: APIClient) -> None:
    good = blood_pressure(when=recent(minutes=50), ident="bp-good")
    bad_unit = blood_pressure(when=recent(minutes=40), ident="bp-bad")
    bad_unit["component"][1]["valueQuantity"]["code"] = "kg"
    foreign = blood_pressure(code=other_patient.code, when=recent(minutes=30), ident="bp-foreign")
    crisis = blood_pressure(systolic=190, diastolic=100, when=recent(minutes=20), ident="bp-crisis")
    response = post(client, URL, bundle("batch", good, bad_unit, foreign, crisis, heart_rate(when=recent(minutes=5))))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["type"] == "batch-response"
    assert _statuses(answer) == ["201 Created", "400 Bad Request", "403 Forbidden", "201 Created", "200 OK"]
    assert expressions(answer["entry"][1]["response"]["outcome"]) == [
        "Bundle.entry[1].resource.component[1].valueQuantity.code"
    ]
    assert expressions(answer["entry"][2]["response"]["outcome"]) == ["Bundle.entry[2].resource.subject"]
    crisis_issues = answer["entry"][3]["response"]["outcome"]["issue"]
    assert [i["details"]["coding"][0]["code"] for i in crisis_issues if i["severity"] == "warning"] == [
        "hypertensive_crisis"
    ]
    assert answer["entry"][4]["response"]["outcome"]["issue"][0]["code"] == "not-found"  # no panel at its time
    assert Reading.objects.filter(patient=patient).count() == 2
    assert not Reading.objects.filter(patient=other_patient).exists()


def test_a_heart_rate_in_a_batch_fills_its_panel_and_one_whose_panel_fails_stores_nothing(
    patient: Patient, client: APIClient
) -> None:
    when_ok, when_bad = recent(minutes=50), recent(minutes=40)
    bad = blood_pressure(systolic=320, when=when_bad, ident="bp-bad")
    body = bundle(
        "batch",
        heart_rate(value=66, when=when_ok),
        blood_pressure(when=when_ok, ident="bp-ok"),
        bad,
        heart_rate(value=70, when=when_bad),
    )
    answer = post(client, URL, body).json()
    assert _statuses(answer) == ["201 Created", "201 Created", "400 Bad Request", "200 OK"]
    assert Reading.objects.get(patient=patient).heart_rate == 66


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda b: b.update(type="collection"), "Bundle.type"),
        (lambda b: b.update(resourceType="Observation"), "Bundle.resourceType"),
        (lambda b: b.update(entry={"a": 1}), "Bundle.entry"),
        (lambda b: b["entry"][0]["request"].update(method="PUT"), "Bundle.entry[0].request.method"),
        (lambda b: b["entry"][0]["request"].update(url="Patient"), "Bundle.entry[0].request.url"),
        (lambda b: b["entry"][0].pop("request"), "Bundle.entry[0].request"),
        (lambda b: b["entry"][0].pop("resource"), "Bundle.entry[0].resource"),
        (lambda b: b["entry"][0].update(resource={"resourceType": "Patient"}), "Bundle.entry[0].resource.resourceType"),
        (lambda b: b["entry"][0]["request"].update(ifNoneExist="code=85354-9"), "Bundle.entry[0].request.ifNoneExist"),
        (
            lambda b: b["entry"][0]["request"].update(ifNoneExist="identifier=a|other"),
            "Bundle.entry[0].request.ifNoneExist",
        ),
        (lambda b: b["entry"][0]["resource"].pop("status"), "Bundle.entry[0].resource.status"),
        (lambda b: b.update(entry=[1]), "Bundle.entry[0]"),
    ],
)
def test_a_bad_bundle_is_refused_naming_the_element(
    patient: Patient, client: APIClient, change: Callable[[dict[str, Any]], Any], expression: str
) -> None:
    body = bundle("transaction", blood_pressure())
    change(body)
    response = post(client, URL, body)
    assert response.status_code == 400, response.content
    assert response.json()["resourceType"] == "OperationOutcome"
    assert expressions(response.json()) == [expression]
    assert not Reading.objects.exists()


def test_a_bundle_of_more_than_500_entries_or_over_the_body_limit_is_refused(
    patient: Patient, client: APIClient
) -> None:
    response = post(client, URL, {"resourceType": "Bundle", "type": "batch", "entry": [{}] * 501})
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "too-costly"
    # 256 KiB (DATA_UPLOAD_MAX_MEMORY_SIZE) is about 250 Observations as the examples write them.
    too_large = post(client, URL, bundle("batch", *[heart_rate()] * 400))
    assert too_large.status_code == 413
    assert too_large.json()["issue"][0]["code"] == "too-costly"


def test_a_transaction_naming_another_patient_stores_nothing_and_is_audited(
    patient: Patient, other_patient: Patient, client: APIClient
) -> None:
    body = bundle("transaction", blood_pressure(), blood_pressure(code=other_patient.code, ident="x"))
    response = post(client, URL, body)
    assert response.status_code == 403
    assert expressions(response.json()) == ["Bundle.entry[1].resource.subject"]
    assert not Reading.objects.exists()
    assert AuditEvent.objects.filter(action="access.denied", object_id=str(other_patient.pk)).count() == 1
    assert AuditEvent.objects.filter(action="reading.refused", object_type="fhir_bundle").count() == 1


def test_an_empty_transaction_answers_an_empty_response(patient: Patient, client: APIClient) -> None:
    response = post(client, URL, {"resourceType": "Bundle", "type": "transaction"})
    assert response.status_code == 200
    assert response.json() == {"resourceType": "Bundle", "type": "transaction-response"}


def test_a_resent_bundle_with_the_same_idempotency_key_replays(patient: Patient, client: APIClient) -> None:
    body = _example_transaction(recent())
    first = post(client, URL, body, HTTP_IDEMPOTENCY_KEY="bundle-1")
    again = post(client, URL, body, HTTP_IDEMPOTENCY_KEY="bundle-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Reading.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[" * 1000 + "]" * 1000,
        '{"resourceType": "Bundle", "type": "batch", "entry": ' + "[" * 40 + "]" * 40 + "}",
        '{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Observation", '
        '"contained": [{"resourceType": "Jane Doe"}]}, "request": {"method": "POST", "url": "Observation"}}]}',
        '{"resourceType": "Bundle", "type": "transaction", "Jane Doe": 1}',
        '{"resourceType": "Bundle", "type": "batch", "entry": [{"request": "Jane Doe"}]}',
        '{"resourceType": "Bundle", "type": ["batch"]}',
    ],
)
def test_hostile_bundles_get_an_operation_outcome_never_a_5xx(patient: Patient, client: APIClient, body: str) -> None:
    response = client.post(URL, body, content_type=FHIR_JSON)
    assert response.status_code < 500, response.content
    assert "Jane Doe" not in response.content.decode()
    data = response.json()
    outcomes = (
        [data] if data["resourceType"] == "OperationOutcome" else [e["response"]["outcome"] for e in data["entry"]]
    )
    assert all(o["resourceType"] == "OperationOutcome" and o["issue"][0]["severity"] == "error" for o in outcomes)
    assert not Reading.objects.exists()
