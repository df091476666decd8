"""Builds a valid ledger of synthetic events quickly, for tests and benchmarks (never used by the app).

It writes the same hashes `audit_record` would, but in bulk, so a 100,000-event ledger takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from clinaiops.audit.chain import (
    GENESIS_HASH,
    SEGMENT_MAX_EVENTS,
    TIMESTAMP_FORMAT,
    SignedCheckpoint,
    event_hash,
    segment_hashes,
)

ACTIONS = ("reading.ingested", "recommendation.created", "review.decided", "patient.viewed", "signature.created")


def synthetic_events(n: int, *, start_seq: int = 1, prev_hash: str = GENESIS_HASH) -> Iterator[dict[str, object]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        seq = start_seq + i
        recorded_at = t0 + timedelta(milliseconds=37 * seq)
        payload = f'{{"patient_id":{seq % 997},"values_sha256":"{seq * 7919:064x}"}}'
        fields = dict(
            seq=seq, recorded_at=recorded_at, actor_id=None, actor_role="system", action=ACTIONS[seq % len(ACTIONS)],
            object_type="reading", object_id=str(seq), outcome="success", request_id=f"req{seq:010d}",
            ip="127.0.0.1", payload=payload, prev_hash=prev_hash,
        )  # fmt: skip
        digest = event_hash(
            seq, recorded_at.strftime(TIMESTAMP_FORMAT), None, "system", fields["action"], "reading", str(seq),
            "success", fields["request_id"], "127.0.0.1", payload, prev_hash,
        )  # fmt: skip
        fields["hash"] = digest
        prev_hash = digest
        yield fields


def synthetic_ledger_create(n: int, *, checkpoint_every: int = 0, batch: int = 5000, witness: bool = False) -> None:
    """Insert n chained events (and signed checkpoints every `checkpoint_every`, with their segment hashes) into
    the database; with `witness`, publish each checkpoint to the configured witness as well, as the service
    does after commit."""
    # Here, not at the top: bench/history_bench.py imports synthetic_events in a process without Django set up.
    from django.db import transaction

    from clinaiops.audit.keys import audit_signing_key
    from clinaiops.audit.models import AuditCheckpoint, AuditEvent
    from clinaiops.audit.witness import witness_publish, witness_sinks

    key = audit_signing_key()
    sinks = witness_sinks() if witness else []
    buffer: list[AuditEvent] = []
    checkpoints: list[AuditCheckpoint] = []
    segment: list[str] = []
    with transaction.atomic():
        for fields in synthetic_events(n):
            event = AuditEvent(**fields)
            buffer.append(event)
            segment.append(event.hash)
            if checkpoint_every and event.seq % checkpoint_every == 0:
                created = datetime(2026, 6, 1, tzinfo=UTC)
                kept = segment[-SEGMENT_MAX_EVENTS:]
                signed = SignedCheckpoint(
                    seq=event.seq, head_hash=event.hash, event_count=event.seq,
                    created_at=created.strftime(TIMESTAMP_FORMAT), key_id=key.key_id, signature="",
                    segment_start=event.seq - len(kept) + 1, segment_hashes=segment_hashes(kept),
                )  # fmt: skip
                signed = replace(signed, signature=key.sign(signed.message()))
                segment.clear()
                checkpoints.append(
                    AuditCheckpoint(
                        seq=event.seq,
                        head_hash=event.hash,
                        event_count=event.seq,
                        created_at=created,
                        key_id=key.key_id,
                        signature=signed.signature,
                        reason="synthetic",
                        segment_start=signed.segment_start,
                        segment_hashes=signed.segment_hashes,
                    )
                )
                if sinks:
                    witness_publish(signed, sinks)
            if len(buffer) >= batch:
                AuditEvent.objects.bulk_create(buffer)
                buffer.clear()
        AuditEvent.objects.bulk_create(buffer)
        AuditCheckpoint.objects.bulk_create(checkpoints)
