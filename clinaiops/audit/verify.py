"""Ledger verification: recompute every hash and link in seq order, check every signed checkpoint, and say
where the ledger first breaks and how.

The pass streams rows straight from the database with raw SQL (a server-side cursor on PostgreSQL; the
timestamp formatted by the database) and builds each canonical form with one %-format, so a million events
verify in seconds. Only when something is wrong does it look further (one indexed lookup) to tell an edit
from a deletion, an insertion or a reordering.

What cannot be detected, by design: events appended *after* the newest checkpoint by someone who can
recompute SHA-256 (a DBA) look genuine, and the newest events can be dropped without trace. Checkpoints
every AUDIT_CHECKPOINT_EVERY events, hourly and on demand, bound that window; exporting checkpoints off the
database (evidence bundles) closes it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clinaiops.audit.chain import GENESIS_HASH, TIMESTAMP_FORMAT, checkpoint_message, event_canonical

EDITED = "edited event"
DELETED = "deleted event"
INSERTED = "inserted event"
REORDERED = "reordered events"
TRUNCATED = "truncation"
FORGED_CHECKPOINT = "forged checkpoint"

# seq, recorded_at (formatted UTC text), actor_id, actor_role, action, object_type, object_id, outcome,
# request_id, ip, payload (canonical text), prev_hash, hash
EventRow = tuple[int, str, int | None, str, str, str, str, str, str, str | None, str, str, str]
# seq, head_hash, event_count, created_at (formatted), key_id, signature (base64)
CheckpointRow = tuple[int, str, int, str, str, str]


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    events_checked: int
    checkpoints_checked: int = 0
    first_broken_seq: int | None = None
    kind: str = ""
    problem: str = ""


def _content_ok(row: EventRow, seq: int | None = None) -> bool:
    fields = (row[0] if seq is None else seq, *row[1:12])
    return hashlib.sha256(event_canonical(*fields)).hexdigest() == row[12]  # type: ignore[arg-type]


def _diagnose(
    row: EventRow, expected_seq: int, expected_prev: str, lookup: Callable[[str], int | None]
) -> tuple[str, str]:
    """Name the kind of break at the first anomalous row."""
    seq, prev_hash = row[0], row[11]
    if prev_hash != expected_prev:
        linked_to = lookup(prev_hash)
        if linked_to is not None and linked_to > expected_seq - 1:
            return REORDERED, f"seq {seq} links to seq {linked_to}, which comes after it"
        if linked_to is not None and linked_to < expected_seq - 1:
            return INSERTED, f"seq {seq} links past seq {expected_seq - 1}: an event was inserted before it"
        if _content_ok(row, seq + 1):
            return DELETED, f"seq {seq} was renumbered down: an event before it was deleted"
        if _content_ok(row):
            return INSERTED, f"seq {seq} is self-consistent but does not link to seq {expected_seq - 1}"
        return EDITED, f"seq {seq}: content does not match its hash and it does not link to its predecessor"
    if _content_ok(row, seq - 1):
        return INSERTED, f"seq {seq} was renumbered up: an event was inserted before it"
    return EDITED, f"seq {seq}: content does not match its hash"


def checkpoints_verify(
    checkpoints: Iterable[CheckpointRow], trusted: Mapping[str, Ed25519PublicKey]
) -> tuple[dict[int, str], VerificationResult | None]:
    heads: dict[int, str] = {}
    for seq, head_hash, count, created_at, key_id, signature in checkpoints:
        key = trusted.get(key_id)
        message = checkpoint_message(
            seq=seq, head_hash=head_hash, event_count=count, created_at=created_at, key_id=key_id
        )
        try:
            if key is None:
                raise InvalidSignature
            key.verify(base64.b64decode(signature), message)
        except (InvalidSignature, ValueError):
            problem = f"checkpoint at seq {seq} has an invalid signature or an untrusted key {key_id!r}"
            return heads, VerificationResult(False, 0, len(heads), seq, FORGED_CHECKPOINT, problem)
        heads[seq] = head_hash
    return heads, None


# seq, canonical bytes, prev_hash, hash: all the hot loop needs.
LinkRow = tuple[int, bytes, str, str]


def links_from_rows(rows: Iterable[EventRow]) -> Iterator[LinkRow]:
    for row in rows:
        yield row[0], event_canonical(*row[:12]), row[11], row[12]  # type: ignore[arg-type]


def chain_verify(
    links: Iterable[LinkRow],
    *,
    checkpoints: Iterable[CheckpointRow] = (),
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    lookup: Callable[[str], int | None] = lambda _hash: None,
    fetch_row: Callable[[int], EventRow | None] = lambda _seq: None,
) -> VerificationResult:
    """Verify links given in ascending seq order. Only on a break, `fetch_row(seq)` and `lookup(hash)` are used
    to name its kind."""
    heads, failure = checkpoints_verify(checkpoints, trusted_keys or {})
    if failure is not None:
        return failure
    expected_prev = GENESIS_HASH
    expected_seq = 1
    sha256 = hashlib.sha256
    for seq, canonical, prev_hash, stored in links:
        if seq != expected_seq:
            if seq > expected_seq:
                kind, problem = DELETED, f"seq {expected_seq}–{seq - 1} missing"
            else:
                kind, problem = REORDERED, f"seq {seq} appears after seq {expected_seq - 1}"
            return VerificationResult(False, expected_seq - 1, len(heads), expected_seq, kind, problem)
        if prev_hash != expected_prev or sha256(canonical).hexdigest() != stored:
            row = fetch_row(seq)
            if row is None:
                kind, problem = EDITED, f"seq {seq}: content does not match its hash"
            else:
                kind, problem = _diagnose(row, expected_seq, expected_prev, lookup)
            return VerificationResult(False, expected_seq - 1, len(heads), seq, kind, problem)
        head = heads.get(seq)
        if head is not None and head != stored:
            problem = f"seq {seq} does not match the signed checkpoint over it"
            return VerificationResult(False, expected_seq - 1, len(heads), seq, EDITED, problem)
        expected_prev = stored
        expected_seq += 1
    last = expected_seq - 1
    beyond = [seq for seq in heads if seq > last]
    if beyond:
        problem = f"the ledger ends at seq {last} but a signed checkpoint covers seq {max(beyond)}"
        return VerificationResult(False, last, len(heads), last + 1, TRUNCATED, problem)
    return VerificationResult(True, last, len(heads))


# --- Reading the ledger from the database ---------------------------------------------------------------


_PG_TIMESTAMP = "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_PG_ROWS = (
    "SELECT seq, " + _PG_TIMESTAMP + ", actor_id, actor_role, action, object_type, object_id, outcome, request_id,"  # noqa: S608
    " host(ip), payload, prev_hash, hash FROM audit_auditevent"
)
_SQLITE_ROWS = (
    "SELECT seq, recorded_at, actor_id, actor_role, action, object_type, object_id, outcome, request_id, ip,"
    " payload, prev_hash, hash FROM audit_auditevent"
)


def _sqlite_timestamp(value: str | datetime) -> str:
    # Django stores aware datetimes in SQLite as naive UTC text (its converter may already have parsed it).
    if isinstance(value, datetime):
        return value.strftime(TIMESTAMP_FORMAT)
    text = value.replace(" ", "T")
    if "." not in text:
        text += ".000000"
    return text + "Z"


def _stream(sql: str, batch: int) -> Iterator[tuple[object, ...]]:
    from django.db import connection

    cursor = connection.chunked_cursor()  # a server-side cursor on PostgreSQL: constant memory
    try:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(batch):
            yield from chunk
    finally:
        cursor.close()


def ledger_rows(batch: int = 10_000) -> Iterator[EventRow]:
    """Full rows in seq order (the Python canonicalisation path)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        yield from _stream(_PG_ROWS + " ORDER BY seq", batch)  # type: ignore[misc]
    else:
        for row in _stream(_SQLITE_ROWS + " ORDER BY seq", batch):
            yield (row[0], _sqlite_timestamp(row[1]), *row[2:])  # type: ignore[arg-type,misc]


def ledger_row(seq: int) -> EventRow | None:
    from django.db import connection

    with connection.cursor() as cursor:
        base = _PG_ROWS if connection.vendor == "postgresql" else _SQLITE_ROWS
        cursor.execute(base + " WHERE seq = %s", [seq])
        row = cursor.fetchone()
    if row is None:
        return None
    if connection.vendor != "postgresql":
        row = (row[0], _sqlite_timestamp(row[1]), *row[2:])
    return tuple(row)  # type: ignore[return-value]


def ledger_checkpoints() -> list[CheckpointRow]:
    from clinaiops.audit.models import AuditCheckpoint

    return [
        (c.seq, c.head_hash, c.event_count, c.created_at.strftime(TIMESTAMP_FORMAT), c.key_id, c.signature)
        for c in AuditCheckpoint.objects.order_by("seq")
    ]


def ledger_lookup(hash_hex: str) -> int | None:
    from clinaiops.audit.models import AuditEvent

    seq: int | None = AuditEvent.objects.filter(hash=hash_hex).values_list("seq", flat=True).first()
    return seq


def ledger_verify() -> VerificationResult:
    """Verify the database's ledger and checkpoints against the trusted keys."""
    from clinaiops.audit.keys import audit_trusted_public_keys

    return chain_verify(
        links_from_rows(ledger_rows()),
        checkpoints=ledger_checkpoints(),
        trusted_keys=audit_trusted_public_keys(),
        lookup=ledger_lookup,
        fetch_row=ledger_row,
    )
