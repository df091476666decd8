"""Races between two requests on PostgreSQL, with real concurrency: two threads, two connections (issue 8 §5).

- A reading resent while its original is still being stored gets 200 with the stored reading, exactly as a
  sequential resend does, never 409 `duplicate_reading`, and one row.
- Two clinicians signing the same recommendation: one wins, the other is told it was already signed, by whom and
  when, by the message and by the page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.api.errors import api_exception_handler
from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient, Reading, Symptom
from clinaiops.care.services import ReadingInput
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, ReviewDecision
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.loops.services.review import AlreadyDecided, review_decide
from tests.concurrency import in_thread, waiting_for_a_lock
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-key waits between connections are PostgreSQL's; SQLite serialises writers")


def _reading_body() -> dict[str, object]:
    taken_at = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    return {"taken_at": taken_at.isoformat(), "systolic": 134, "diastolic": 86, "heart_rate": 71, "source": "cuff"}


def test_a_resend_that_races_its_original_gets_200_with_the_stored_reading(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    body = _reading_body()
    stored = threading.Event()

    # The original: stored, but not yet committed, when the resend arrives. The resend finds no row, inserts,
    # and PostgreSQL holds its insert on the unique key until the original commits.
    def original() -> int:
        with transaction.atomic():
            result = reading_ingest(
                actor=patient.user,
                patient=Patient.objects.get(pk=patient.pk),
                data=ReadingInput(
                    taken_at=datetime.fromisoformat(str(body["taken_at"])),
                    systolic=134,
                    diastolic=86,
                    heart_rate=71,
                    source="cuff",
                ),
            )
            assert result.created
            stored.set()
            waiting_for_a_lock(what="the second request")
        return result.reading.pk

    def resend() -> Any:
        stored.wait(10)
        return client.post("/api/v1/readings/", body, format="json")

    first, first_out = in_thread(original)
    second, second_out = in_thread(resend)
    first.join(30)
    second.join(30)
    assert "error" not in first_out, first_out.get("error")
    assert "error" not in second_out, second_out.get("error")
    response = second_out["result"]
    assert response.status_code == 200, response.content
    assert response.json()["id"] == first_out["result"]
    assert (response.json()["systolic"], response.json()["diastolic"]) == (134, 86)
    assert Reading.objects.filter(patient=patient).count() == 1
    assert AuditEvent.objects.filter(action="reading.ingested").count() == 1


def _send_at(start: threading.Barrier, client: APIClient, body: dict[str, object]) -> Any:
    start.wait(10)
    return client.post("/api/v1/readings/", body, format="json")


def test_identical_readings_sent_at_the_same_moment_both_succeed(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    clients = [api_client_for(patient.user), api_client_for(patient.user)]
    pairs = 10
    for n in range(pairs):
        body = {**_reading_body(), "taken_at": (timezone.now() - timedelta(minutes=10 + n)).isoformat()}
        start = threading.Barrier(2)

        runs = [in_thread(partial(_send_at, start, client, body)) for client in clients]
        for thread, _ in runs:
            thread.join(30)
        responses = [out["result"] for _, out in runs]
        assert sorted(r.status_code for r in responses) == [200, 201], [r.content for r in responses]
        assert responses[0].json()["id"] == responses[1].json()["id"]
    assert Reading.objects.filter(patient=patient).count() == pairs
    assert AuditEvent.objects.filter(action="reading.ingested").count() == pairs


@pytest.fixture
def second_clinician(patient: Patient) -> User:
    user = UserFactory(username="dr_second", role=Role.CLINICIAN, printed_name="Dr Second")
    patient.care_team.members.add(user)
    return user


def test_the_losing_signer_is_told_who_signed_and_when(
    pending_recommendation: Recommendation,
    clinician: User,
    second_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    url = f"/recommendations/{pending_recommendation.pk}/"
    loser = portal_client_for(second_clinician)
    winner_posted = threading.Event()

    # The winner holds the recommendation's row lock, signed but not committed, until the loser's request, which
    # passed every check before the lock, waits for that lock; then the winner commits.
    def winner() -> None:
        with transaction.atomic():
            review_decide(
                actor=clinician,
                recommendation=Recommendation.objects.get(pk=pending_recommendation.pk),
                outcome="accepted",
                reason="Titrate as proposed",
                password=PASSWORD,
            )
            winner_posted.set()
            waiting_for_a_lock(what="the second request")

    def losing() -> Any:
        winner_posted.wait(10)
        return loser.post(url, {"outcome": "rejected", "reason": "Too early", "password": PASSWORD}, follow=True)

    first, first_out = in_thread(winner)
    second, second_out = in_thread(losing)
    first.join(30)
    second.join(30)
    assert "error" not in first_out, first_out.get("error")
    assert "error" not in second_out, second_out.get("error")
    page = second_out["result"]
    decision = ReviewDecision.objects.select_related("signature").get(recommendation=pending_recommendation)
    signed = f"{decision.signature.signed_at:%d %b %Y %H:%M} UTC"
    said = " ".join(str(m) for m in page.context["messages"])
    assert f"already decided (accepted) by Dr Assigned at {signed}" in said
    html = page.content.decode()
    assert f"Already signed by Dr Assigned at {signed}" in html
    assert (decision.clinician, decision.outcome) == (clinician, "accepted")
    assert AuditEvent.objects.filter(action="review.decided", outcome="success").count() == 1


def test_two_signers_at_the_same_moment_one_wins_the_other_is_told(
    pending_recommendation: Recommendation, clinician: User, second_clinician: User
) -> None:
    start = threading.Barrier(2)

    def sign(actor: User, outcome: str) -> ReviewDecision:
        start.wait(10)
        return review_decide(
            actor=actor,
            recommendation=Recommendation.objects.get(pk=pending_recommendation.pk),
            outcome=outcome,
            reason="Decided",
            password=PASSWORD,
        )

    runs = [in_thread(lambda: sign(clinician, "accepted")), in_thread(lambda: sign(second_clinician, "rejected"))]
    for thread, _ in runs:
        thread.join(30)
    errors = [out["error"] for _, out in runs if "error" in out]
    assert len(errors) == 1 and isinstance(errors[0], AlreadyDecided), errors
    decision = ReviewDecision.objects.select_related("signature").get(recommendation=pending_recommendation)
    assert f"by {decision.signature.printed_name} at {decision.signature.signed_at:%d %b %Y %H:%M} UTC" in str(
        errors[0]
    )
    # An API caller gets the same news in the one error shape.
    answer = api_exception_handler(errors[0], {})
    assert answer is not None and answer.status_code == 409
    assert answer.data == {"code": "already_decided", "message": str(errors[0]), "fields": {}}
    assert decision.signature.printed_name in answer.data["message"]


def test_a_resent_symptom_report_is_stored_once_even_when_it_races_its_original(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    clients = [api_client_for(patient.user), api_client_for(patient.user)]
    body = {"kind": "dizziness", "reported_at": (timezone.now() - timedelta(minutes=4)).isoformat()}
    start = threading.Barrier(2)
    runs = [in_thread(partial(_symptom_at, start, client, body)) for client in clients]
    for thread, _ in runs:
        thread.join(30)
    # The one that stored it answers 201; the other, a resend of a stored report, 200 with the same symptom.
    assert sorted(out["result"].status_code for _, out in runs) == [200, 201]
    assert len({out["result"].json()["id"] for _, out in runs}) == 1
    later = clients[0].post("/api/v1/symptoms/", body, format="json")
    assert later.status_code == 200
    assert Symptom.objects.filter(patient=patient).count() == 1
    assert AuditEvent.objects.filter(action="symptom.reported").count() == 1
    # Another symptom at the same moment is another report.
    assert clients[0].post("/api/v1/symptoms/", {**body, "kind": "headache"}, format="json").status_code == 201
    assert Symptom.objects.filter(patient=patient).count() == 2


def _symptom_at(start: threading.Barrier, client: APIClient, body: dict[str, object]) -> Any:
    start.wait(10)
    return client.post("/api/v1/symptoms/", body, format="json")
