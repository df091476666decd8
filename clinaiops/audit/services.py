"""The one entry point for writing the audit ledger.

`audit_record` must be called inside the transaction of the change it records, so the event and the change
commit or roll back together. Appends are serialized so the chain never forks: on PostgreSQL with a
transaction-scoped advisory lock taken inside `audit_append()` (one round trip per event; see migration
0003), on SQLite by the IMMEDIATE transaction mode set in clinaiops.env.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clinaiops.audit.chain import GENESIS_HASH, TIMESTAMP_FORMAT, checkpoint_message, event_hash
from clinaiops.audit.keys import audit_signing_key
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent, AuditOutcome
from clinaiops.core.canonical import canonical_bytes
from clinaiops.core.models import Role, User
from clinaiops.core.request_context import request_context_get

# Arbitrary constant naming "the audit ledger" among PostgreSQL advisory locks.
_LEDGER_LOCK_KEY = 0x0C1A_A0D1
_APPEND = "SELECT * FROM audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


class AuditOutsideTransaction(RuntimeError):
    """An audit event written outside a transaction could commit without its change (or vice versa)."""


def _prepared_cursor() -> Any:
    """A psycopg cursor with server-side binding on Django's connection (same transaction). The append is
    executed with prepare=True, so it skips parsing and planning; Django turns prepared statements off globally
    for the sake of transaction-mode poolers (PgBouncer ≥ 1.21 supports them)."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


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
        _checkpoint_write(seq=seq, head_hash=digest, reason="periodic")
    return event


def _checkpoint_write(*, seq: int, head_hash: str, reason: str) -> AuditCheckpoint:
    key = audit_signing_key()
    created_at = timezone.now().astimezone(UTC)
    message = checkpoint_message(
        seq=seq,
        head_hash=head_hash,
        event_count=seq,
        created_at=created_at.strftime(TIMESTAMP_FORMAT),
        key_id=key.key_id,
    )
    return AuditCheckpoint.objects.create(
        seq=seq,
        head_hash=head_hash,
        event_count=seq,
        created_at=created_at,
        key_id=key.key_id,
        signature=key.sign(message),
        reason=reason,
    )


@transaction.atomic
def audit_checkpoint_create(*, reason: str = "on_demand") -> AuditCheckpoint | None:
    """Sign the current head (idempotent: the head already checkpointed returns that checkpoint)."""
    head_seq, head_hash, _ = _head_and_clock()
    if head_seq == 0:
        return None
    existing = AuditCheckpoint.objects.filter(seq=head_seq).first()
    if existing is not None:
        return existing
    checkpoint = _checkpoint_write(seq=head_seq, head_hash=head_hash, reason=reason)
    audit_record(
        action=AuditAction.CHECKPOINT_CREATED,
        object_type="audit_checkpoint",
        object_id=checkpoint.pk,
        system_reason=reason,
        payload={"seq": head_seq, "head_hash": head_hash, "key_id": checkpoint.key_id},
    )
    return checkpoint


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
