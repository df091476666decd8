"""CSV and JSON Lines listings: streamed in constant memory, exact enough for an auditor to recompute every hash,
and streamed downloads audited like any export."""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import tracemalloc
from collections.abc import Callable
from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from clinaiops.audit.chain import event_hash
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.synthetic import synthetic_events, synthetic_ledger_create
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from compliance.listings import audit_listing, csv_chunks, jsonl_chunks
from compliance.models import Export, ExportStatus
from governance.accounting import EntryKind, access_accounting
from governance.ledger_search import LedgerFilters, ledger_events, ledger_filters_resolve
from tests.compliance.conftest import streamed


def _peak_streaming(encode: Callable[..., object], *, warm_up: bool = False) -> tuple[int, int]:
    """The peak of Python allocations (tracemalloc: bytes allocated, not RSS and not time) while a listing of the
    whole ledger is encoded, and the bytes it produced. One unmeasured pass first, so that one-off costs (compiled
    SQL, imports, caches) count for neither size; then the lowest of two measured passes, so that an allocation
    made meanwhile by anything else in the process (a thread woken late on a loaded machine) cannot fail the test.
    Nothing here depends on how fast the machine is."""
    resolved = ledger_filters_resolve(LedgerFilters())
    listing = audit_listing(resolved, total=ledger_events(resolved).count())
    peaks: list[int] = []
    size = 0
    for measured in ([False] if warm_up else []) + [True, True]:
        gc.collect()
        if measured:
            tracemalloc.start()
        size = 0
        for chunk in encode(listing):  # type: ignore[attr-defined]
            size += len(chunk)
        if measured:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    return min(peaks), size


def _grow(n: int) -> None:
    last = AuditEvent.objects.order_by("-seq").first()
    assert last is not None
    AuditEvent.objects.bulk_create(
        (AuditEvent(**fields) for fields in synthetic_events(n, start_seq=last.seq + 1, prev_hash=last.hash)),
        batch_size=5000,
    )


@pytest.mark.slow
@mock.patch("compliance.listings.CURSOR_ROWS", 100)  # so that even the small ledger spans many cursor chunks
def test_streaming_a_listing_takes_the_same_memory_for_ten_times_the_events(db: None) -> None:
    synthetic_ledger_create(1000)
    small_csv, small_size = _peak_streaming(csv_chunks, warm_up=True)
    small_jsonl, _ = _peak_streaming(jsonl_chunks, warm_up=True)
    _grow(9000)
    large_csv, large_size = _peak_streaming(csv_chunks)
    large_jsonl, _ = _peak_streaming(jsonl_chunks)
    assert large_size > 9 * small_size
    # Memory is the cursor's chunk and one output buffer (64 KB), whatever the number of rows: a listing that kept
    # its rows would need more than 2 MB more here.
    assert large_csv < 1.5 * small_csv + 256 * 1024, (small_csv, large_csv)
    assert large_jsonl < 1.5 * small_jsonl + 256 * 1024, (small_jsonl, large_jsonl)
    assert large_csv < 2 * 1024 * 1024


def test_an_auditor_can_recompute_every_hash_from_the_listing(db: None) -> None:
    synthetic_ledger_create(500)
    resolved = ledger_filters_resolve(LedgerFilters())
    listing = audit_listing(resolved, total=500)
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_chunks(listing)).decode())))
    lines = [json.loads(line) for line in b"".join(jsonl_chunks(listing)).decode().splitlines()]
    assert len(rows) == len(lines) == 500
    previous = "0" * 64
    for row, line in zip(rows, lines, strict=True):
        assert int(row["seq"]) == line["seq"]
        recomputed = event_hash(
            line["seq"],
            line["recorded_at"],
            line["actor_id"],
            line["actor_role"],
            line["action"],
            line["object_type"],
            line["object_id"],
            line["outcome"],
            line["request_id"],
            line["ip"],
            line["payload"],
            line["prev_hash"],
        )
        assert recomputed == line["hash"] == row["hash"]
        assert line["prev_hash"] == previous
        previous = line["hash"]


def test_the_streamed_download_is_audited_with_the_digest_of_what_was_sent(
    patient: Patient, clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    client = portal_client_for(compliance_officer)
    response = client.get(f"/compliance/audit/export/?format=jsonl&patient_code={patient.code}")
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    body = streamed(response)
    assert [json.loads(line)["action"] for line in body.decode().splitlines()] == ["patient.viewed"]
    export = Export.objects.get()
    assert (export.delivery, export.status, export.patients_disclosed) == ("stream", ExportStatus.FINISHED, 1)
    assert export.files.get().sha256 == hashlib.sha256(body).hexdigest()
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_CREATED, object_type="export")
    assert event.payload_data["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert event.payload_data["parameters"] == {"patient_code": patient.code}
    assert access_accounting(patient=patient)[0].kind == EntryKind.DISCLOSURE
    assert client.get("/compliance/exports/").content.count(b"(streamed)") == 1


def test_a_download_cut_off_midway_is_still_accounted(
    db: None, compliance_officer: User, portal_client_for: Callable[[User], Client], settings: object
) -> None:
    synthetic_ledger_create(3000)  # several 64 KB chunks
    response = portal_client_for(compliance_officer).get("/compliance/audit/export/?format=csv")
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"seq,recorded_at")
    # The client went away and the server closes the response; the end of a request would also close the
    # database connection, which here holds the test's transaction, so that one step is held back.
    with mock.patch.object(connection, "close_if_unusable_or_obsolete"):
        response.close()
    export = Export.objects.get()
    assert export.status == ExportStatus.FAILED
    assert export.error_code == "stream_interrupted"
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED, object_type="export").count() == 1


def test_a_bad_streamed_request_is_a_400_with_a_sentence(
    db: None, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(compliance_officer)
    response = client.get("/compliance/audit/export/?format=pdf")
    assert response.status_code == 400
    assert b"Only CSV and JSON Lines listings stream" in response.content
    assert client.get("/compliance/audit/export/?format=csv&from=soon").status_code == 400
    assert not Export.objects.exists()
