"""The one entry point for writing the audit ledger.

`audit_record` must be called inside the transaction of the change it records, so the event and the change
commit or roll back together. Appends are serialized so the chain never forks: on PostgreSQL with a
transaction-scoped advisory lock, on SQLite by the IMMEDIATE transaction mode set in clinaiops.env.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from clinaiops.core.models import Role, User
from clinaiops.core.request_context import request_context_get
from governance.audit.chain import GENESIS_HASH, ChainFields
from governance.audit.models import AuditAction, AuditEvent, AuditOutcome

# Arbitrary constant naming "the audit ledger" among PostgreSQL advisory locks.
_LEDGER_LOCK_KEY = 0x0C1A_A0D1


class AuditOutsideTransaction(RuntimeError):
    """An audit event written outside a transaction could commit without its change (or vice versa)."""


def _lock_ledger() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK_KEY])


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
    context = request_context_get()
    _lock_ledger()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    # Truncated to microseconds so the stored value and the hashed value are the same on every backend.
    recorded_at = timezone.now()
    fields = ChainFields(
        seq=seq,
        recorded_at=recorded_at,
        actor_id=actor.pk if actor else None,
        actor_role=actor.role if actor else Role.SYSTEM,
        action=str(action),
        object_type=object_type,
        object_id=str(object_id),
        outcome=str(outcome),
        request_id=context.request_id,
        ip=context.ip,
        payload=body,
        prev_hash=prev_hash,
    )
    return AuditEvent.objects.create(
        seq=seq,
        recorded_at=recorded_at,
        actor=actor,
        actor_role=fields.actor_role,
        action=fields.action,
        object_type=object_type,
        object_id=fields.object_id,
        outcome=fields.outcome,
        request_id=fields.request_id,
        ip=fields.ip,
        payload=body,
        prev_hash=prev_hash,
        hash=fields.digest(),
    )


def audit_record_denied(
    *, action: AuditAction, object_type: str, object_id: object = "", actor: User | None, reason: str
) -> None:
    """Record a refused attempt in its own transaction: the refused change rolls back, the record of the
    refusal must not."""
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
