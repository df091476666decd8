"""POST /api/v1/readings/batch/ (issue 12): the readings a phone kept offline, each answered on its own, deduped on
the natural key, through the same ingest (safety rules, audit) as a single POST."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import Alert, Patient, Reading
from clinaiops.core.models import User
from tests.conftest import audit_actions

URL = "/api/v1/readings/batch/"


def _reading(minutes_ago: int, systolic: int = 132, diastolic: int = 84, **extra: object) -> dict[str, object]:
    taken_at = (timezone.now() - timedelta(minutes=minutes_ago)).replace(microsecond=0).isoformat()
    return {"taken_at": taken_at, "systolic": systolic, "diastolic": diastolic, "source": "cuff", **extra}


def test_each_reading_is_answered_on_its_own_and_a_bad_one_sinks_none_of_the_rest(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    first = _reading(300)
    assert client.post("/api/v1/readings/", first, format="json").status_code == 201
    batch = [
        first,  # already stored: a duplicate
        _reading(240, 138, 86),
        _reading(200, heart_rate=400),  # implausible: the service refuses it, audited
        _reading(180, mood="ok"),  # unknown field
        "not a reading",
        {**first, "systolic": 150},  # the same time and source with other values: a conflict
        _reading(120, 128, 80),
    ]
    response = client.post(URL, {"readings": batch}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["duplicate"], body["refused"]) == (2, 1, 4)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [
        "duplicate", "created", "refused", "refused", "refused", "refused", "created",
    ]  # fmt: skip
    assert results[1]["reading"]["systolic"] == 138 and results[1]["error"] is None
    assert results[2]["reading"] is None
    assert results[2]["error"]["code"] == "validation_failed" and list(results[2]["error"]["fields"]) == ["heart_rate"]
    assert results[3]["error"]["fields"] == {"mood": ["Unknown field."]}
    assert "non_field_errors" in results[4]["error"]["fields"]
    assert results[5]["error"]["code"] == "conflict"
    assert Reading.objects.filter(patient=patient).count() == 3
    assert audit_actions().count("reading.ingested") == 3
    assert audit_actions().count("reading.refused") == 1


def test_a_batch_of_500_is_taken_and_501_is_refused_naming_the_field(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    too_many = [_reading(10 + i) for i in range(501)]
    refused = client.post(URL, {"readings": too_many}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["readings"]
    assert Reading.objects.count() == 0
    assert client.post(URL, {"readings": []}, format="json").status_code == 400
    assert client.post(URL, {"readings": too_many[0]}, format="json").status_code == 400
    # 500 readings, one every 10 minutes, fit under DATA_UPLOAD_MAX_MEMORY_SIZE as the app sends them.
    full = [_reading(10 + 10 * i, heart_rate=70) for i in range(500)]
    response = client.post(URL, {"readings": full}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 500
    assert Reading.objects.filter(patient=patient).count() == 500


def test_a_resent_batch_stores_nothing_twice_and_the_key_replays_the_answer(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    batch = {"readings": [_reading(60), _reading(30, 140, 88)]}
    key = str(uuid.uuid4())
    first = client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key)
    replay = client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert client.post(URL, {"readings": [_reading(5)]}, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 422
    without_key = client.post(URL, batch, format="json").json()
    assert [r["status"] for r in without_key["results"]] == ["duplicate", "duplicate"]
    assert Reading.objects.filter(patient=patient).count() == 2
    assert audit_actions().count("reading.ingested") == 2


def test_readings_kept_offline_are_judged_in_the_order_taken(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    """Two low readings within the window are sustained hypotension, whichever order the phone sends them in."""
    response = api_client_for(patient.user).post(
        URL, {"readings": [_reading(30, 88, 58), _reading(300, 86, 55)]}, format="json"
    )
    results = response.json()["results"]
    assert results[1]["alerts"] == []  # the earlier one, judged first, is one low reading alone
    assert results[0]["alerts"] == ["sustained_hypotension"]
    assert results[0]["open_alerts"][0]["kind"] == "sustained_hypotension"
    assert results[0]["guidance"]
    assert Alert.objects.filter(patient=patient, kind="sustained_hypotension").count() == 1


def test_every_crisis_reading_of_a_batch_carries_the_open_crisis_alert(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post(
        URL, {"readings": [_reading(40, 186, 112), _reading(20, 190, 115), _reading(10, 130, 80)]}, format="json"
    )
    results = response.json()["results"]
    assert [r["alerts"] for r in results] == [["hypertensive_crisis"], ["hypertensive_crisis"], []]
    assert results[0]["open_alerts"][0]["id"] == results[1]["open_alerts"][0]["id"]
    assert "emergency services" in results[1]["guidance"]
    assert results[2]["guidance"] is None
    assert Alert.objects.filter(patient=patient).count() == 1


def test_refusals_in_a_batch_never_quote_the_values_sent(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    tag = "ZQXMARK4242"
    batch = [
        _reading(50, source=tag),
        _reading(40, taken_at=f"2026-11-30T07:30:00Z{tag}"),
        _reading(30, systolic=731917313),
        _reading(20, extra_field=tag),
    ]
    response = api_client_for(patient.user).post(URL, {"readings": batch}, format="json")
    assert response.status_code == 200
    assert response.json()["refused"] == 4
    assert tag.encode() not in response.content and b"731917313" not in response.content


def test_the_batch_is_for_patients_only(
    clinician: User, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(clinician).post(URL, {"readings": [_reading(10)]}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert APIClient().post(URL, {"readings": [_reading(10)]}, format="json").status_code == 401
    assert Reading.objects.count() == 0


def test_a_batch_stores_the_readings_of_the_signed_in_patient_only(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    api_client_for(patient.user).post(URL, {"readings": [_reading(10), _reading(20)]}, format="json")
    assert Reading.objects.filter(patient=other_patient).count() == 0
    assert api_client_for(other_patient.user).get("/api/v1/readings/").json()["count"] == 0


def test_a_batch_costs_the_queries_of_its_readings_and_no_more(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    """Pinned as a rate (STYLE.md: hot paths pin their query counts): each reading costs what a single POST's ingest
    costs, whatever the batch's size, so 500 readings are 500 ingests and nothing grows with the batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_client_for(patient.user)
    client.post(URL, {"readings": [_reading(1000)]}, format="json")  # the policy exists now
    counts = []
    for size, start in ((1, 900), (2, 800), (4, 700)):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(URL, {"readings": [_reading(start - i) for i in range(size)]}, format="json")
        assert response.json()["created"] == size
        counts.append(len(queries))
    per_reading = counts[1] - counts[0]
    assert counts[2] == counts[0] + 3 * per_reading
    with CaptureQueriesContext(connection) as single:
        client.post("/api/v1/readings/", _reading(600), format="json")
    # A one-reading batch costs what the single POST does (the same ingest, the same patient lookup).
    assert counts[0] == len(single)


def test_a_keyed_batch_commits_reading_by_reading_not_in_one_transaction(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    """Under an Idempotency-Key the claim commits first and each reading is its own transaction: one transaction
    for 500 readings would hold the ledger's lock for seconds (issue 13's bench measured 6–8 s)."""
    from django.db import connection

    from clinaiops.api.models import IdempotencyRecord

    client = api_client_for(patient.user)
    seen_depths: list[int] = []  # the savepoint depth at each reading's insert

    def probe(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "care_reading" in sql and sql.lstrip().upper().startswith("INSERT"):
            seen_depths.append(len(connection.savepoint_ids))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(probe):
        answer = client.post(
            URL, {"readings": [_reading(50), _reading(40)]}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
    assert answer.status_code == 200 and answer.json()["created"] == 2
    # The test's own transaction is one level; each reading's transaction adds one, never the claim's on top of it.
    assert len(seen_depths) == 2 and len(set(seen_depths)) == 1
    assert IdempotencyRecord.objects.get().response_status == 200


def test_a_claim_in_progress_answers_409_and_a_stale_one_is_taken_over(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    from django.test import override_settings

    from clinaiops.api.models import IdempotencyRecord

    client = api_client_for(patient.user)
    key = str(uuid.uuid4())
    batch = {"readings": [_reading(30)]}
    first = client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 200
    # As if the worker had died between the claim and the answer: the claim is there, with no answer.
    IdempotencyRecord.objects.filter(key=key).update(response_status=None, response_body="")
    busy = client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_progress"
    IdempotencyRecord.objects.filter(key=key).update(created_at=timezone.now() - timedelta(minutes=6))
    with override_settings(IDEMPOTENCY_CLAIM_STALE_MINUTES=5):
        resumed = client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert resumed.status_code == 200
    assert resumed.json()["duplicate"] == 1  # the reading the dead worker stored is not stored twice
    assert Reading.objects.filter(patient=patient).count() == 1
    assert client.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY=key).headers["Idempotent-Replayed"] == "true"
