"""The one entry point for writing the audit ledger.

`audit_record` must be called inside the transaction of the change it records, so the event and the change
commit or roll back together. Appends are serialized so the chain never forks: on PostgreSQL with a
transaction-scoped advisory lock taken inside `audit_append()` (one round trip per event; see migration
0003), on SQLite by the IMMEDIATE transaction mode set in clinaiops.env.

On PostgreSQL the runtime role has no INSERT on the ledger tables: it appends through the SECURITY DEFINER
functions `audit_append()` and `audit_checkpoint_append()` (migration 0005, docs/security.md).

Checkpoints (`audit_checkpoint_create`) are made every AUDIT_CHECKPOINT_EVERY events, after the commit of the
event that lands on the multiple and in a transaction of their own, and every AUDIT_CHECKPOINT_INTERVAL_SECONDS
by beat. Each is published to the witness (clinaiops.audit.witness) after it commits.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clinaiops.audit.chain import (
    GENESIS_HASH,
    SEGMENT_MAX_EVENTS,
    TIMESTAMP_FORMAT,
    SignedCheckpoint,
    event_hash,
    segment_hashes,
)
from clinaiops.audit.keys import audit_signing_key, audit_trusted_public_keys
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent, AuditOutcome
from clinaiops.audit.signals import checkpoint_due
from clinaiops.audit.verify import checkpoint_signature_valid, checkpoint_signed
from clinaiops.audit.witness import WitnessPublishFailed, witness_publish, witness_read
from clinaiops.core.canonical import canonical_bytes
from clinaiops.core.models import Role, User
from clinaiops.core.request_context import request_context_get

# Arbitrary constant naming "the audit ledger" among PostgreSQL advisory locks.
_LEDGER_LOCK_KEY = 0x0C1A_A0D1
_APPEND = "SELECT * FROM audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_CHECKPOINT_APPEND = "SELECT audit_checkpoint_append(%s, %s, %s, %s, %s, %s, %s, %s, %s)"

logger = logging.getLogger(__name__)


class AuditOutsideTransaction(RuntimeError):
    """An audit event written outside a transaction could commit without its change (or vice versa)."""


def _prepared_cursor() -> Any:
    """A psycopg cursor with server-side binding on Django's connection (same transaction). The append is
    executed with prepare=True, so it skips parsing and planning; Django turns prepared statements off globally
    for the sake of transaction-mode poolers (PgBouncer ≥ 1.21 supports them)."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def audit_ledger_lock() -> None:
    """Take the ledger's lock now, for a writer that must lock something else before its first event: every writer
    then takes the ledger lock first (a reading's ingest takes it at its first event and may then lock the patient),
    so two of them cannot deadlock. Held to the end of the transaction; the append takes it again at no cost. A
    no-op on SQLite, which has one writer at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK_KEY])


def _head_and_clock() -> tuple[int, str, datetime]:
    """Take the ledger lock, then read the head and the clock under it. Used by checkpoints and by the SQLite
    writer; the PostgreSQL writer does the same inside audit_append()."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK_KEY])
            cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
            row = cursor.fetchone()
            cursor.execute("SELECT clock_timestamp()")
            clock = cursor.fetchone()[0]
        seq, head = row if row else (0, GENESIS_HASH)
        return seq, head, clock.astimezone(UTC)
    latest = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, head = latest if latest else (0, GENESIS_HASH)
    return seq, head, timezone.now().astimezone(UTC)


def _normalised_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return ipaddress.ip_address(ip).compressed
    except ValueError:
        return None


def audit_record(
    *,
    action: AuditAction,
    object_type: str,
    object_id: object = "",
    actor: User | None = None,
    system_reason: str = "",
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. `actor=None` means the system acted; then `system_reason` (a code) says why."""
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(f"audit_record({action}) must run inside transaction.atomic()")
    body = dict(payload or {})
    if actor is None:
        if not system_reason:
            raise ValueError("a system audit event needs a system_reason")
        body["system_reason"] = system_reason
    payload_text = canonical_bytes(body).decode("utf-8")
    context = request_context_get()
    ip = _normalised_ip(context.ip)
    role = actor.role if actor else Role.SYSTEM
    fields: dict[str, Any] = {
        "actor": actor, "actor_role": role, "action": str(action), "object_type": object_type,
        "object_id": str(object_id), "outcome": str(outcome), "request_id": context.request_id,
        "payload": payload_text,
    }  # fmt: skip
    if connection.vendor == "postgresql":
        # One round trip: audit_append() locks, reads the head, hashes the canonical form and inserts. The
        # Python verifier recomputes every hash independently.
        with _prepared_cursor() as cursor:
            cursor.execute(
                _APPEND,
                [_LEDGER_LOCK_KEY, actor.pk if actor else None, role, fields["action"], object_type,
                 fields["object_id"], fields["outcome"], context.request_id, ip, payload_text],
                prepare=True,
            )  # fmt: skip
            event_id, seq, prev_hash, digest, recorded_at, stored_ip = cursor.fetchone()
        event = AuditEvent(
            id=event_id, seq=seq, recorded_at=recorded_at, ip=stored_ip, prev_hash=prev_hash, hash=digest, **fields
        )
        event._state.adding = False
    else:
        head_seq, prev_hash, recorded_at = _head_and_clock()
        seq = head_seq + 1
        digest = event_hash(
            seq, recorded_at.strftime(TIMESTAMP_FORMAT), actor.pk if actor else None, role, fields["action"],
            object_type, fields["object_id"], fields["outcome"], context.request_id, ip, payload_text, prev_hash,
        )  # fmt: skip
        event = AuditEvent.objects.create(
            seq=seq, recorded_at=recorded_at, ip=ip, prev_hash=prev_hash, hash=digest, **fields
        )
    if seq % settings.AUDIT_CHECKPOINT_EVERY == 0:
        # After commit and in a transaction of its own: a failed checkpoint must never roll back the clinical write
        # that happens to land on the multiple (issue 8). A missed one is made by the next scheduled run.
        transaction.on_commit(partial(_checkpoint_after_commit, seq))
    return event


def _checkpoint_after_commit(seq: int) -> None:
    # The task module imports this one, so the task is reached through a signal its receiver (connected in
    # AuditConfig.ready) answers by enqueueing it: no import cycle between services and tasks.
    try:
        checkpoint_due.send(sender=AuditCheckpoint, seq=seq)
    except Exception:  # after commit nothing may undo the write: log it; the scheduled run makes the checkpoint
        logger.exception("audit checkpoint after seq %s failed; the next scheduled run makes it", seq)


def _checkpoint_write(*, seq: int, head_hash: str, created_at: datetime, reason: str, after: int) -> AuditCheckpoint:
    """Sign and store a checkpoint over `seq`, fingerprinting the events after `after` (the previous checkpoint)."""
    key = audit_signing_key()
    segment_start = max(after + 1, seq - SEGMENT_MAX_EVENTS + 1)
    hashes = list(
        AuditEvent.objects.filter(seq__gte=segment_start, seq__lte=seq).order_by("seq").values_list("hash", flat=True)
    )
    unsigned = SignedCheckpoint(
        seq=seq, head_hash=head_hash, event_count=seq, created_at=created_at.strftime(TIMESTAMP_FORMAT),
        key_id=key.key_id, signature="", segment_start=segment_start, segment_hashes=segment_hashes(hashes),
    )  # fmt: skip
    signature = key.sign(unsigned.message())
    fields: dict[str, Any] = {
        "seq": seq, "head_hash": head_hash, "event_count": seq, "created_at": created_at, "key_id": key.key_id,
        "signature": signature, "reason": reason, "segment_start": segment_start,
        "segment_hashes": unsigned.segment_hashes,
    }  # fmt: skip
    if connection.vendor != "postgresql":
        return AuditCheckpoint.objects.create(**fields)
    # The runtime role may not insert into the ledger tables; the SECURITY DEFINER function checks that the
    # checkpoint names the event it claims to and inserts it.
    with connection.cursor() as cursor:
        cursor.execute(
            _CHECKPOINT_APPEND,
            [seq, head_hash, seq, created_at, key.key_id, signature, reason, segment_start, unsigned.segment_hashes],
        )
        checkpoint_id = cursor.fetchone()[0]
    checkpoint = AuditCheckpoint(id=checkpoint_id, **fields)
    checkpoint._state.adding = False
    return checkpoint


def audit_checkpoint_create(*, reason: str = "on_demand") -> AuditCheckpoint | None:
    """Sign the current head, record that in the ledger, and publish it to the witness after commit.

    Idempotent: when nothing but the previous checkpoint's own event was written since it, that checkpoint is
    returned and nothing is written, so the scheduled run adds no events to an idle ledger. None when empty."""
    with transaction.atomic():
        head_seq, head_hash, clock = _head_and_clock()
        if head_seq == 0:
            return None
        latest = AuditCheckpoint.objects.order_by("-seq").first()
        if latest is not None and latest.seq >= head_seq - 1:
            head_action = AuditEvent.objects.filter(seq=head_seq).values_list("action", flat=True).first()
            if latest.seq == head_seq or head_action == AuditAction.CHECKPOINT_CREATED:
                return latest
        return _checkpoint_record(seq=head_seq, head_hash=head_hash, clock=clock, reason=reason)


def audit_checkpoint_create_at(*, seq: int, reason: str) -> AuditCheckpoint:
    """Sign a checkpoint at `seq`, an event already followed by others (the anchor of an archive: the last event of
    the months it detaches), record it and publish it to the witness after commit, as every checkpoint is."""
    with transaction.atomic():
        _head_seq, _head_hash, clock = _head_and_clock()  # the ledger lock, as for every checkpoint
        head_hash = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).get()
        return _checkpoint_record(seq=seq, head_hash=head_hash, clock=clock, reason=reason)


def _checkpoint_record(*, seq: int, head_hash: str, clock: datetime, reason: str) -> AuditCheckpoint:
    """Write the checkpoint at `seq` (its segment runs from the newest checkpoint below it), its ledger event, and
    its publication to the witness once committed. Caller holds the ledger lock in its transaction."""
    after = AuditCheckpoint.objects.filter(seq__lt=seq).order_by("-seq").values_list("seq", flat=True).first()
    checkpoint = _checkpoint_write(seq=seq, head_hash=head_hash, created_at=clock, reason=reason, after=after or 0)
    audit_record(
        action=AuditAction.CHECKPOINT_CREATED,
        object_type="audit_checkpoint",
        object_id=checkpoint.pk,
        system_reason=reason,
        payload={"seq": seq, "head_hash": head_hash, "key_id": checkpoint.key_id},
    )
    # Published only once it is committed: a witness entry must never name a checkpoint that rolled back.
    transaction.on_commit(partial(_witness_publish_after_commit, checkpoint_signed(checkpoint)))
    return checkpoint


def _witness_publish_after_commit(checkpoint: SignedCheckpoint) -> None:
    try:
        witness_publish(checkpoint)
    except Exception:  # the checkpoint is committed; the scheduled catch-up publishes it again
        logger.exception("audit checkpoint at seq %s is not in the witness yet", checkpoint.seq)


def audit_witness_catch_up() -> list[int]:
    """Publish the signed checkpoints that the readable witness lacks (a crash or a sink outage between commit and
    publish); return their seqs. Checkpoints whose signature fails are left out: the verifier names them."""
    witness = witness_read()
    if witness is None:
        return []
    present = {entry.seq for entry in witness.entries}
    trusted = audit_trusted_public_keys()
    published = []
    for checkpoint in AuditCheckpoint.objects.order_by("seq").iterator():
        if checkpoint.seq in present:
            continue
        signed = checkpoint_signed(checkpoint)
        if not checkpoint_signature_valid(signed, trusted):
            continue
        try:
            witness_publish(signed)
        except WitnessPublishFailed:
            logger.exception("audit witness catch-up stopped at seq %s", checkpoint.seq)
            break
        published.append(checkpoint.seq)
    return published


def audit_record_denied(
    *, action: AuditAction, object_type: str, object_id: object = "", actor: User | None, reason: str
) -> None:
    """Record a refused attempt in its own transaction: the refused change rolls back, the record of the
    refusal must not. Call it outside the transaction of the refused change."""
    with transaction.atomic():
        audit_record(
            action=action,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            system_reason="" if actor else reason,
            outcome=AuditOutcome.DENIED,
            payload={"reason": reason},
        )
