"""CSV and JSON Lines listings, streamed.

Rows come from a server-side cursor (QuerySet.iterator() is a named cursor on PostgreSQL, fetched chunk by chunk)
and leave as encoded chunks of about 64 KB, so memory stays flat whatever the range: the same chunks feed a
StreamingHttpResponse and a job's file. bench/export_bench.py measures it at 10^4 and 10^6 events.

The audit listing carries exactly the twelve chained fields of each event (plus the actor's username, which is not
hashed), the payload as its stored canonical text and both hashes, so an auditor can recompute every hash from
the listing alone (docs/compliance-exports.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.db import connection
from django.db.models.expressions import RawSQL

from clinaiops.audit.chain import TIMESTAMP_FORMAT
from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation
from governance.accounting import access_accounting_iter
from governance.ledger_search import ResolvedFilters

CHUNK_BYTES = 64 * 1024
CURSOR_ROWS = 5000  # rows per server-side cursor fetch: a few MB, and few round trips
PROGRESS_EVERY = 5000

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Listing:
    """A listing: its columns, a callable that opens a fresh row iterator, and how many rows to expect."""

    name: str  # the file stem, for example "audit-events"
    columns: tuple[str, ...]
    rows: Callable[[], Iterator[tuple[Any, ...]]]
    total: int
    collector: DisclosureCollector | None = None


# --- Which patients a listing disclosed ----------------------------------------------------------------

_PATIENT_ID = re.compile(r'"patient_id":(\d+)')


@dataclass
class DisclosureCollector:
    """Collects the patients whose data a listing wrote, for their accounting (issue 9: every export shows in the
    affected patients' accounting). Holds ids only: one int per patient, not per row."""

    patient_ids: set[int] = field(default_factory=set)
    recommendation_ids: set[int] = field(default_factory=set)

    def audit_row(self, object_type: str, object_id: str, payload: str) -> None:
        if object_type == "patient" and object_id.isdigit():
            self.patient_ids.add(int(object_id))
        elif object_type == "recommendation" and object_id.isdigit():
            self.recommendation_ids.add(int(object_id))
        if '"patient_id":' in payload:  # a substring test first: most rows of a range need no regex
            for match in _PATIENT_ID.finditer(payload):
                self.patient_ids.add(int(match.group(1)))

    def resolved(self) -> set[int]:
        """The patients, with recommendations turned into theirs, keeping only ids of patients that exist (a payload
        is only as good as what wrote it), in batches."""
        ids = set(self.patient_ids)
        pending = sorted(self.recommendation_ids)
        for start in range(0, len(pending), 1000):
            batch = pending[start : start + 1000]
            ids.update(Recommendation.objects.filter(pk__in=batch).values_list("patient_id", flat=True))
        candidates = sorted(ids)
        existing: set[int] = set()
        for start in range(0, len(candidates), 1000):
            batch = candidates[start : start + 1000]
            existing.update(Patient.objects.filter(pk__in=batch).values_list("pk", flat=True))
        return existing


# --- The audit listing ---------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    "seq", "recorded_at", "actor_id", "actor_username", "actor_role", "action", "object_type", "object_id",
    "outcome", "request_id", "ip", "payload", "prev_hash", "hash",
)  # fmt: skip
_AUDIT_FIELDS = (
    "seq", "recorded_text", "actor_id", "actor__username", "actor_role", "action", "object_type", "object_id",
    "outcome", "request_id", "ip", "payload", "prev_hash", "hash",
)  # fmt: skip
# The database writes the timestamp as the chain hashes it (ISO 8601 UTC, microseconds, "Z"): parsing a datetime
# and formatting it again cost more than everything else per row together (profiled at 10^5 rows).
_PG_RECORDED_TEXT = "to_char(audit_auditevent.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_SQLITE_RECORDED_TEXT = "CAST(audit_auditevent.recorded_at AS TEXT)"


def _sqlite_timestamp(text: str) -> str:
    # Django keeps aware datetimes in SQLite as naive UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
    text = text.replace(" ", "T")
    return (text if "." in text else text + ".000000") + "Z"


def audit_rows(resolved: ResolvedFilters, collector: DisclosureCollector | None = None) -> Iterator[tuple[Any, ...]]:
    postgres = connection.vendor == "postgresql"
    # A constant expression naming one column: no parameter, nothing from a request reaches it.
    recorded = RawSQL(_PG_RECORDED_TEXT if postgres else _SQLITE_RECORDED_TEXT, ())  # noqa: S611
    events = (
        AuditEvent.objects.filter(resolved.condition)
        .annotate(recorded_text=recorded)
        .order_by("seq")
        .values_list(*_AUDIT_FIELDS)
    )
    note = collector.audit_row if collector is not None else None
    for row in events.iterator(chunk_size=CURSOR_ROWS):
        if note is not None:
            note(row[6], row[7], row[11])
        if postgres:
            yield row
        else:
            yield (row[0], _sqlite_timestamp(row[1]), *row[2:])


def audit_listing(resolved: ResolvedFilters, total: int) -> Listing:
    collector = DisclosureCollector()
    return Listing(
        name="audit-events",
        columns=AUDIT_COLUMNS,
        rows=lambda: audit_rows(resolved, collector),
        total=total,
        collector=collector,
    )


# --- The decisions listing -----------------------------------------------------------------------------

DECISION_COLUMNS = (
    "recommendation_id", "created_at", "patient_code", "model_sha256", "arm", "policy_version", "proposed_action",
    "from_step", "proposed_step", "confidence", "tier", "tier_reasons", "status", "decision", "final_step",
    "decided_at", "clinician", "signature_meaning", "signed_at", "signed_record_sha256", "responded_at",
)  # fmt: skip
_DECISION_FIELDS = (
    "pk", "created_at", "patient__code", "model_version__sha256", "arm", "policy__version", "action", "from_step",
    "to_step", "confidence", "tier", "tier_reasons", "status", "decision__outcome", "final_step",
    "decision__decided_at", "decision__signature__printed_name", "decision__signature__meaning",
    "decision__signature__signed_at", "decision__signature__record_sha256", "responded_at", "patient_id",
)  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.strftime(TIMESTAMP_FORMAT) if value is not None else None


def decisions_queryset(*, actor: User, start: datetime | None, end: datetime | None, patient: Patient | None) -> Any:
    """Recommendations created within [start, end): all of them for officers, their care teams' for clinicians.
    Only plain columns are selected, never the model version's gates or manifest (issue 13: 40 KB a row)."""
    recommendations = Recommendation.objects.all()
    if actor.role == Role.CLINICIAN:
        recommendations = recommendations.filter(patient__care_team__members=actor)
    if patient is not None:
        recommendations = recommendations.filter(patient=patient)
    if start is not None:
        recommendations = recommendations.filter(created_at__gte=start)
    if end is not None:
        recommendations = recommendations.filter(created_at__lt=end)
    return recommendations.order_by("created_at", "pk")


def decision_rows(queryset: Any, collector: DisclosureCollector) -> Iterator[tuple[Any, ...]]:
    for row in queryset.values_list(*_DECISION_FIELDS).iterator(chunk_size=CURSOR_ROWS):
        collector.patient_ids.add(row[-1])
        yield (
            row[0], _iso(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8], round(row[9], 6), row[10],
            ";".join(row[11] or []), row[12], row[13], row[14], _iso(row[15]), row[16], row[17], _iso(row[18]),
            row[19], _iso(row[20]),
        )  # fmt: skip


def decisions_listing(queryset: Any) -> Listing:
    collector = DisclosureCollector()
    return Listing(
        name="decisions",
        columns=DECISION_COLUMNS,
        rows=lambda: decision_rows(queryset, collector),
        total=queryset.count(),
        collector=collector,
    )


# --- The accounting listing ----------------------------------------------------------------------------

ACCOUNTING_COLUMNS = ("seq", "when", "who", "role", "kind", "action", "what", "why", "grant_id", "export_id")


def accounting_listing(*, patient: Patient, start: datetime | None, end: datetime | None) -> Listing:
    collector = DisclosureCollector(patient_ids={patient.pk})

    def rows() -> Iterator[tuple[Any, ...]]:
        for e in access_accounting_iter(patient=patient, start=start, end=end):
            yield (e.seq, _iso(e.when), e.who, e.role, e.kind, e.action, e.what, e.why, e.grant_id, e.export_id)

    return Listing(name="accounting", columns=ACCOUNTING_COLUMNS, rows=rows, total=0, collector=collector)


# --- Encoding ------------------------------------------------------------------------------------------


def csv_chunks(listing: Listing, progress: Progress | None = None) -> Iterator[bytes]:
    """The listing as CSV (RFC 4180, UTF-8, header row), in chunks of about CHUNK_BYTES."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(listing.columns)
    yield from _chunked(
        buffer, (writer.writerow(["" if v is None else v for v in row]) for row in listing.rows()), progress
    )


def jsonl_chunks(listing: Listing, progress: Progress | None = None) -> Iterator[bytes]:
    """The listing as JSON Lines: one object per row, keys in column order, UTF-8."""
    buffer = io.StringIO()
    columns = listing.columns
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def lines() -> Iterator[None]:
        for row in listing.rows():
            buffer.write(dumps(dict(zip(columns, row, strict=True))))
            buffer.write("\n")
            yield None

    yield from _chunked(buffer, lines(), progress)


def _chunked(buffer: io.StringIO, steps: Iterable[object], progress: Progress | None) -> Iterator[bytes]:
    count = 0
    for _ in steps:
        count += 1
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
    if progress is not None:
        progress(count)


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    sha256: str
    size: int


def chunks_write(chunks: Iterable[bytes], path: Path) -> WrittenFile:
    """Write chunks to `path`, hashing as they go (the file is never read back to hash it)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as handle:
        _copy(chunks, handle, digest)
        size = handle.tell()
    return WrittenFile(path=path, sha256=digest.hexdigest(), size=size)


def _copy(chunks: Iterable[bytes], handle: BinaryIO, digest: Any) -> None:
    for chunk in chunks:
        digest.update(chunk)
        handle.write(chunk)


def bytes_write(data: bytes, path: Path) -> WrittenFile:
    path.write_bytes(data)
    return WrittenFile(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
