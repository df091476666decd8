"""The portal's ledger page as a compliance officer works it (issue 9 and issue 13): filters that work, the patient
filter by code, seq-keyed pages without COUNT(*), event detail, checkpoint and witness status, verification as a
job whose last result the page shows, and flagged bursts of refused access."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.audit.synthetic import synthetic_events, synthetic_ledger_create
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from tests.compliance.conftest import streamed


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<a href="/audit/(\d+)/">', html)]


def test_the_actor_action_and_date_filters_work(
    decided: Recommendation, clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(compliance_officer)
    by_actor = client.get("/audit/?actor=dr_assigned").content.decode()
    expected = list(AuditEvent.objects.filter(actor=clinician).order_by("-seq").values_list("seq", flat=True))
    assert _seqs(by_actor) == expected
    assert len(expected) >= 2
    by_action = client.get(f"/audit/?action={AuditAction.REVIEW_DECIDED}").content.decode()
    assert _seqs(by_action) == list(AuditEvent.objects.filter(action="review.decided").values_list("seq", flat=True))
    assert "clinician decided" in by_action
    today = datetime.now(UTC).date()
    assert _seqs(client.get(f"/audit/?from={today}&to={today}").content.decode())
    assert _seqs(client.get(f"/audit/?to={today - timedelta(days=1)}").content.decode()) == []
    unknown = client.get("/audit/?actor=nobody").content.decode()
    assert "No user has that username" in unknown
    assert _seqs(unknown) == []


def test_the_patient_filter_takes_the_code_and_finds_the_events_that_concern_the_patient(
    decided: Recommendation,
    patient: Patient,
    other_patient: Patient,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    client = portal_client_for(compliance_officer)
    html = client.get(f"/audit/?patient_code={patient.code.lower()}").content.decode()
    seqs = set(_seqs(html))
    actions = set(AuditEvent.objects.filter(seq__in=seqs).values_list("action", flat=True))
    # The review decision and the patient's response do not name the patient: found through the recommendation.
    assert {"reading.ingested", "recommendation.created", "review.decided", "recommendation.responded"} <= actions
    assert "model.registered" not in actions
    assert _seqs(client.get(f"/audit/?patient_code={other_patient.code}").content.decode()) == []
    assert "No patient has that code" in client.get("/audit/?patient_code=P-9999").content.decode()
    # The internal id is not a patient code.
    assert "No patient has that code" in client.get(f"/audit/?patient_code={patient.pk}").content.decode()


def test_every_action_can_be_filtered_by_and_objects_read_as_words(
    decided: Recommendation, patient: Patient, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(compliance_officer)
    html = client.get("/audit/").content.decode()
    offered = re.findall(r'<option value="([a-z_.]+)"', html)
    assert sorted(offered) == sorted(AuditAction.values)  # an action missing from the list could not be found
    options = dict(re.findall(r'<option value="([a-z_.]+)"[^>]*>([^<]+)</option>', html))
    assert all("_" not in words and words != code for code, words in options.items())
    by_patient = client.get(f"/audit/?patient_code={patient.code}").content.decode()
    assert f"patient {patient.code}" in by_patient  # the patient's code, never the internal id
    assert f"patient:{patient.pk}" not in by_patient
    event = AuditEvent.objects.filter(object_type="patient", object_id=str(patient.pk)).first()
    assert event is not None
    assert f"patient {patient.code}" in client.get(f"/audit/{event.seq}/").content.decode()


def test_pages_are_keyed_by_seq_and_the_page_never_counts_the_ledger(
    db: None, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    synthetic_ledger_create(450, checkpoint_every=100)
    client = portal_client_for(compliance_officer)
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/audit/").content.decode()
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert _seqs(first) == list(range(450, 350, -1))
    assert "seq 450" in first
    older = re.search(r'href="\?before=(\d+)">older', first)
    assert older is not None
    second = client.get(f"/audit/?before={older.group(1)}").content.decode()
    assert _seqs(second) == list(range(350, 250, -1))
    newer = re.search(r'href="\?after=(\d+)">← newer', second)
    assert newer is not None
    assert _seqs(client.get(f"/audit/?after={newer.group(1)}").content.decode()) == list(range(450, 350, -1))
    last = client.get("/audit/?before=51").content.decode()
    assert _seqs(last) == list(range(50, 0, -1))
    assert "older →" not in last


def _grow(n: int) -> None:
    last = AuditEvent.objects.order_by("-seq").first()
    assert last is not None
    AuditEvent.objects.bulk_create(
        (AuditEvent(**fields) for fields in synthetic_events(n, start_seq=last.seq + 1, prev_hash=last.hash)),
        batch_size=5000,
    )


def test_the_page_costs_the_same_queries_whatever_the_size_of_the_ledger(
    db: None, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(compliance_officer)
    synthetic_ledger_create(300, checkpoint_every=100)
    client.get("/audit/")
    with CaptureQueriesContext(connection) as small:
        client.get("/audit/?action=patient.viewed")
    _grow(20_000)
    with CaptureQueriesContext(connection) as large:
        page = client.get("/audit/?action=patient.viewed").content.decode()
    assert "seq 20300" in page
    # Only the two seq binary searches (bursts, head) grow, by log2 of the size: 300 → 20,300 events is 6 more probes.
    assert len(large.captured_queries) - len(small.captured_queries) <= 8


def test_event_detail_shows_the_payload_previous_hash_and_ip(
    db: None, compliance_officer: User, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    from clinaiops.core.request_context import RequestContext, request_context_reset, request_context_set

    token = request_context_set(RequestContext(request_id="req-detail", ip="10.1.2.3"))
    with transaction.atomic():
        first = audit_record(
            action=AuditAction.POLICY_CREATED,
            object_type="approval_policy",
            object_id=1,
            actor=safety_officer,
            payload={"version": 7},
        )
        event = audit_record(
            action=AuditAction.BOUNDS_SET,
            object_type="patient",
            object_id=3,
            actor=safety_officer,
            payload={"bounds_id": 9, "version": 2},
        )
    request_context_reset(token)
    page = portal_client_for(compliance_officer).get(f"/audit/{event.seq}/").content.decode()
    assert "10.1.2.3" in page
    assert "req-detail" in page
    assert first.hash in page  # the previous hash
    assert "links to seq" in page
    assert "recomputed: matches" in page
    assert "bounds id" in page
    assert "autonomy bounds set" in page
    assert portal_client_for(compliance_officer).get("/audit/999999/").status_code == 404


def test_verify_is_a_job_and_the_page_shows_its_last_result(
    decided: Recommendation,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = portal_client_for(compliance_officer)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/audit/?verify=1").content.decode()
    assert "Verification runs as a job now" in page
    assert "never verified as a whole" in page
    # Nothing read the whole ledger inside the request.
    assert not [q for q in queries.captured_queries if "ORDER BY seq" in q["sql"] and "LIMIT" not in q["sql"]]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/compliance/ledger/verify/")
    assert response.status_code == 302
    job = client.get(response["Location"]).content.decode()
    assert "Finished" in job
    report = client.get(response["Location"] + "files/" + _file(job, "html"))
    assert "The ledger is intact" in streamed(report).decode()
    page = client.get("/audit/").content.decode()
    assert "Chain verified" in page
    event = AuditEvent.objects.get(action=AuditAction.LEDGER_VERIFIED)
    assert event.actor == compliance_officer
    assert event.payload_data["ok"] is True


def _file(html: str, extension: str) -> str:
    match = re.search(rf'files/([\w.-]+\.{extension})"', html)
    assert match is not None
    return match.group(1)


def test_checkpoint_status_is_shown_with_the_unsigned_tail(
    decided: Recommendation, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(compliance_officer)
    assert "Newest checkpoint</dt><dd>none yet" in client.get("/audit/").content.decode()
    checkpoint = audit_checkpoint_create(reason="on_demand")
    assert checkpoint is not None
    page = client.get("/audit/").content.decode()
    assert f"seq {checkpoint.seq}" in page
    assert "signature valid" in page
    assert "not signed yet" in page


def test_bursts_of_refused_access_are_flagged(
    patient: Patient, unassigned_clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    prober = portal_client_for(unassigned_clinician)
    for _ in range(5):
        assert prober.get(f"/patients/{patient.pk}/").status_code == 404
    page = portal_client_for(compliance_officer).get("/audit/").content.decode()
    bursts = page.split("Bursts of refused access", 1)[1].split("</section>", 1)[0]
    assert "dr_elsewhere" in bursts
    assert '<td class="num">5</td>' in bursts
    assert page.count("refused · burst") == 5


def test_a_few_refusals_are_not_a_burst(
    patient: Patient, unassigned_clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    for _ in range(2):
        portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/")
    page = portal_client_for(compliance_officer).get("/audit/").content.decode()
    assert "No actor was refused repeatedly" in page
    assert "refused · burst" not in page


@pytest.mark.parametrize(
    ("persona", "status"),
    [("compliance_officer", 200), ("safety_officer", 200), ("clinician", 403), ("ml_engineer", 403), ("patient", 403)],
)
def test_the_ledger_page_and_event_detail_per_persona(
    persona: str,
    status: int,
    request: pytest.FixtureRequest,
    decided: Recommendation,
    portal_client_for: Callable[[User], Client],
) -> None:
    value = request.getfixturevalue(persona)
    client = portal_client_for(value.user if isinstance(value, Patient) else value)
    assert client.get("/audit/").status_code == status
    assert client.get("/audit/1/").status_code == status
    verify = client.post("/compliance/ledger/verify/")
    assert verify.status_code == (302 if status == 200 else 403)


def test_bursts_are_looked_for_among_the_newest_events_only(
    patient: Patient, unassigned_clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    from unittest import mock

    for _ in range(5):
        portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/")
    with mock.patch("governance.ledger_search.BURST_SCAN_EVENTS", 3):  # the five refusals are older than that
        page = portal_client_for(compliance_officer).get("/audit/").content.decode()
    assert "No actor was refused repeatedly" in page
    assert "among the newest 3 events" in page
