"""Idempotency-Key on the patient API's POSTs (issue 12): a retried POST is answered from the first answer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

import clinaiops.api.views
from clinaiops.api.models import IdempotencyRecord
from clinaiops.api.tasks import idempotency_keys_purge_task
from clinaiops.care.models import Patient, Reading, Symptom
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from tests.conftest import audit_actions
from tests.factories import PASSWORD


def _reading(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "taken_at": (timezone.now() - timedelta(minutes=3)).isoformat(),
        "systolic": 132,
        "diastolic": 84,
        "source": "cuff",
    }
    body.update(overrides)
    return body


def _key() -> str:
    return str(uuid.uuid4())


def test_a_retried_symptom_post_stores_one_row_and_replays_the_answer(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    key = _key()
    answers = [
        client.post("/api/v1/symptoms/", {"kind": "headache"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        for _ in range(3)
    ]
    assert Symptom.objects.filter(patient=patient).count() == 1
    assert {a.status_code for a in answers} == {201}
    assert answers[1].json() == answers[2].json() == answers[0].json()
    assert answers[0].get("Idempotent-Replayed") is None
    assert answers[2]["Idempotent-Replayed"] == "true"
    assert audit_actions().count("symptom.reported") == 1


def test_without_a_key_each_post_is_its_own(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(patient.user)
    for _ in range(2):
        client.post("/api/v1/symptoms/", {"kind": "headache"}, format="json")
    assert Symptom.objects.filter(patient=patient).count() == 2


def test_the_same_key_with_another_body_is_422_and_stores_nothing_more(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    key = _key()
    first = client.post("/api/v1/readings/", _reading(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 201
    other = client.post("/api/v1/readings/", _reading(systolic=150), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert other.status_code == 422
    assert other.json() == {
        "code": "idempotency_key_reused",
        "message": other.json()["message"],
        "fields": {},
    }
    elsewhere = client.post("/api/v1/symptoms/", {"kind": "headache"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert elsewhere.status_code == 422  # the same key on another endpoint is another request
    assert Reading.objects.count() == 1 and Symptom.objects.count() == 0


def test_a_replayed_reading_returns_the_stored_status_and_body(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    key, body = _key(), _reading(systolic=186, diastolic=112)  # a crisis: the answer carries the alert
    first = client.post("/api/v1/readings/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post("/api/v1/readings/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (first.status_code, again.status_code) == (201, 201)  # not the 200 of a resend without a key
    assert again.json() == first.json()
    assert again.json()["alerts"] == ["hypertensive_crisis"]


def test_keys_are_per_user(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    key = _key()
    for user in (patient.user, other_patient.user):
        response = api_client_for(user).post(
            "/api/v1/symptoms/", {"kind": "headache"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code == 201
    assert Symptom.objects.count() == 2


def test_a_refusal_is_not_stored_and_is_still_audited(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    key = _key()
    refused = client.post("/api/v1/readings/", _reading(systolic=400), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert refused.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    assert "reading.refused" in audit_actions()
    # A corrected request may reuse the key: nothing was done under it.
    assert client.post("/api/v1/readings/", _reading(), format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 201


def test_the_stored_answer_is_encrypted(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    api_client_for(patient.user).post(
        "/api/v1/readings/", _reading(systolic=173, diastolic=97), format="json", HTTP_IDEMPOTENCY_KEY=_key()
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT response_body FROM api_idempotencyrecord")
        (stored,) = cursor.fetchone()
    assert stored.startswith("v1:") and "173" not in stored


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "caf\u00e9"])
def test_an_invalid_key_is_a_400(patient: Patient, api_client_for: Callable[[User], APIClient], key: str) -> None:
    response = api_client_for(patient.user).post(
        "/api/v1/symptoms/", {"kind": "headache"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert Symptom.objects.count() == 0


def test_recommendation_respond_is_replayed(
    patient: Patient, pending_recommendation: Recommendation, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    Recommendation.objects.filter(pk=pending_recommendation.pk).update(status="delivered", delivered_at=timezone.now())
    url, key = f"/api/v1/recommendations/{pending_recommendation.pk}/respond/", _key()
    first = client.post(url, {"response": "acknowledge"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 200, first.content
    again = client.post(url, {"response": "acknowledge"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (again.status_code, again.json()) == (200, first.json())
    assert audit_actions().count("recommendation.responded") == 1  # without the key, the second is a 409


def test_a_retried_sign_out_replays_its_204(patient: Patient) -> None:
    client = APIClient()
    pair = client.post("/api/v1/auth/token/", {"username": "pat_one", "password": PASSWORD}, format="json").json()
    key = _key()
    first = client.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 204
    # Without the key, a second sign-out with the now-revoked token is refused; with it, the 204 is replayed.
    again = client.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 204
    assert again["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get().user_id == patient.user.pk


def test_keys_are_kept_24_hours_then_purged(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(patient.user)
    old_key, new_key = _key(), _key()
    client.post("/api/v1/symptoms/", {"kind": "headache"}, format="json", HTTP_IDEMPOTENCY_KEY=old_key)
    client.post("/api/v1/symptoms/", {"kind": "dizziness"}, format="json", HTTP_IDEMPOTENCY_KEY=new_key)
    IdempotencyRecord.objects.filter(key=old_key).update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.filter(key=new_key).update(created_at=timezone.now() - timedelta(hours=23))
    assert idempotency_keys_purge_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == [new_key]
    again = client.post("/api/v1/symptoms/", {"kind": "dizziness"}, format="json", HTTP_IDEMPOTENCY_KEY=new_key)
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_make_one_write(
    patient: Patient, api_client_for: Callable[[User], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is PostgreSQL's; SQLite serialises every writer")
    real_report = clinaiops.api.views.symptom_ingest

    def slow_report(**kwargs: Any) -> Any:
        # Hold the first request's transaction open, so the duplicate arrives while it is in flight.
        result = real_report(**kwargs)
        time.sleep(0.5)
        return result

    monkeypatch.setattr(clinaiops.api.views, "symptom_ingest", slow_report)
    clients = [api_client_for(patient.user) for _ in range(2)]
    key, barrier = _key(), threading.Barrier(2)
    answers: list[Any] = []

    def post(client: APIClient) -> None:
        barrier.wait()
        try:
            answers.append(
                client.post("/api/v1/symptoms/", {"kind": "syncope"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert sorted(a.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert Symptom.objects.filter(patient=patient).count() == 1
