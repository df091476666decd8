"""Ledger verification: recompute every hash and link, in seq order, streaming from the database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance.audit.chain import GENESIS_HASH, ChainFields


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    problem: str = ""


EventRow = tuple[int, datetime, int | None, str, str, str, str, str, str, str | None, dict[str, Any], str, str]


def chain_verify(rows: Iterable[EventRow]) -> VerificationResult:
    """Check rows (in ascending seq order) for edits, gaps, insertions and broken links."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for row in rows:
        (seq, recorded_at, actor_id, role, action, otype, oid, outcome, rid, ip, payload, prev_hash, stored) = row
        if seq != expected_seq:
            kind = "deleted event" if seq > expected_seq else "duplicated or reordered event"
            return VerificationResult(False, checked, expected_seq, f"{kind}: expected seq {expected_seq}, found {seq}")
        if prev_hash != expected_prev:
            return VerificationResult(False, checked, seq, "broken link: prev_hash does not match the previous event")
        fields = ChainFields(seq, recorded_at, actor_id, role, action, otype, oid, outcome, rid, ip, payload, prev_hash)
        if fields.digest() != stored:
            return VerificationResult(False, checked, seq, "edited event: content does not match its hash")
        expected_prev = stored
        expected_seq += 1
        checked += 1
    return VerificationResult(True, checked)


def ledger_rows(batch: int = 5000) -> Iterator[EventRow]:
    from governance.audit.models import AuditEvent

    fields = (
        "seq", "recorded_at", "actor_id", "actor_role", "action", "object_type", "object_id",
        "outcome", "request_id", "ip", "payload", "prev_hash", "hash",
    )  # fmt: skip
    yield from AuditEvent.objects.order_by("seq").values_list(*fields).iterator(chunk_size=batch)  # type: ignore[misc]
