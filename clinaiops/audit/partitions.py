"""The ledger's monthly partitions on PostgreSQL (migration 0006, docs/scaling.md): making the coming months,
describing them, and archiving old ones.

- `ledger_partitions_ensure` makes the partitions of the current month and the next `months_ahead` through the
  SECURITY DEFINER `audit_auditevent_partitions_ensure()`, which the runtime role may call (a daily beat task). The
  DEFAULT partition catches an append whose month is missing, so a missed run loses nothing; but once a month's rows
  sit in the DEFAULT partition that month's partition is refused, as moving them would mean deleting from a ledger
  table.
- `ledger_archive` (behind `manage.py ledger_archive`, run as the owner) makes sure a signed, witnessed checkpoint
  sits at exactly the last seq of the newest month it archives, then detaches the months before the given one. The
  detached tables stay in the database under their names, with their append-only triggers; moving them elsewhere
  (pg_dump, cold storage) and dropping them is the operator's step. The verifier then starts from that checkpoint.

On SQLite there are no partitions: ensuring makes none and archiving is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction

from clinaiops.audit.chain import SignedCheckpoint
from clinaiops.audit.keys import audit_trusted_public_keys
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_checkpoint_create_at, audit_record, audit_witness_catch_up
from clinaiops.audit.verify import (
    ARCHIVE_OBJECT_TYPE,
    checkpoint_signature_valid,
    checkpoint_signed,
    ledger_checkpoints,
)
from clinaiops.audit.witness import witness_read

EVENTS_TABLE = "audit_auditevent"
DEFAULT_PARTITION = "audit_auditevent_default"
ARCHIVE_REASON = "archive_anchor"
# Same key as the ensure function (migration 0006): an archive and a run of the ensure function never interleave.
_PARTITIONS_LOCK_KEY = 0x0C1A_A0D2
_MONTH_NAME = re.compile(r"^audit_auditevent_p(\d{4})(\d{2})$")
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


class LedgerArchiveRefused(RuntimeError):
    """The archive cannot be made as asked; nothing was detached."""


@dataclass(frozen=True)
class LedgerPartition:
    """One partition of the events, attached or detached (an archived month still in the database)."""

    name: str
    lower: datetime | None  # None for the DEFAULT partition
    upper: datetime | None
    rows_estimate: int  # from the planner's statistics (pg_class.reltuples), 0 before the first ANALYZE
    attached: bool
    default: bool


@dataclass(frozen=True)
class LedgerArchive:
    """What `ledger_archive` did: the tables it detached and the checkpoint the ledger is verified from since."""

    detached: tuple[str, ...]
    anchor_seq: int | None  # None when the detached months held no events
    anchor_created: bool  # True when the anchor checkpoint was signed by this archive


def _month(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def ledger_partitions_ensure(months_ahead: int = 3) -> int:
    """Create the missing partitions of the events from the current month through the current + `months_ahead`;
    return how many were made (0 on SQLite). Idempotent, so the beat task may run daily and twice."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT audit_auditevent_partitions_ensure(%s)", [months_ahead])
        created: int = cursor.fetchone()[0]
    return created


def ledger_partitions() -> list[LedgerPartition]:
    """The partitions of the events, oldest first, the DEFAULT one last: the attached ones from the catalog, and the
    detached months (tables named like a month's partition that no longer belong to the ledger). Empty on SQLite."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint, "
            " EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid AND i.inhparent = %s::regclass) "
            "FROM pg_class c WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = %s::regclass) "
            " AND c.relkind = 'r' AND (c.relname LIKE 'audit\\_auditevent\\_p%%' OR c.relname = %s)",
            [EVENTS_TABLE, EVENTS_TABLE, DEFAULT_PARTITION],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound, estimate, attached in rows:
        if bound == "DEFAULT":
            partitions.append(LedgerPartition(name, None, None, int(estimate), bool(attached), default=True))
            continue
        found = _BOUND.search(bound or "")
        named = _MONTH_NAME.match(name)
        if found:
            lower, upper = _month(found.group(1)), _month(found.group(2))
        elif named:  # detached: the bound is gone, the name still says the month
            lower = datetime(int(named.group(1)), int(named.group(2)), 1, tzinfo=UTC)
            upper = _next_month(lower)
        else:
            continue
        partitions.append(LedgerPartition(name, lower, upper, int(estimate), bool(attached), default=False))
    partitions.sort(key=lambda p: (p.default, p.lower or datetime.max.replace(tzinfo=UTC), p.name))
    return partitions


def _checkpoint_at(seq: int) -> tuple[SignedCheckpoint, bool]:
    """A signed checkpoint at exactly `seq` (an event already followed by others): the one there is, or one signed
    now by the same writer as every checkpoint, with its own ledger event, published to the witness on commit."""
    trusted = audit_trusted_public_keys()
    existing = next((c for c in ledger_checkpoints() if c.seq == seq), None)
    if existing is not None:
        if not checkpoint_signature_valid(existing, trusted):
            raise LedgerArchiveRefused(f"the checkpoint at seq {seq} has an invalid signature: run audit_verify")
        return existing, False
    checkpoint = audit_checkpoint_create_at(seq=seq, reason=ARCHIVE_REASON)
    return checkpoint_signed(checkpoint), True


def _owner_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper OR pg_has_role(current_user, (SELECT relowner FROM pg_class "
            "WHERE oid = %s::regclass), 'USAGE') FROM pg_roles WHERE rolname = current_user",
            [EVENTS_TABLE],
        )
        role, owns = cursor.fetchone()
    if not owns:
        raise LedgerArchiveRefused(
            f"the database role {role} does not own the ledger: archive as the owner role, with MIGRATION_DATABASE_URL "
            "set as for migrate (the runtime role may not detach partitions)"
        )


def ledger_archive(*, before: datetime) -> LedgerArchive:
    """Detach the months of the events that end on or before `before` (never the month now runs in), after making
    sure a signed checkpoint at the last seq they hold is in the database and the witness. Run as the owner."""
    if connection.vendor != "postgresql":
        raise LedgerArchiveRefused("the ledger has partitions on PostgreSQL only")
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    _owner_check()
    if before > datetime.now(UTC):
        raise LedgerArchiveRefused("only months that have ended can be archived")
    months = [p for p in ledger_partitions() if p.attached and not p.default and p.upper and p.upper <= before]
    if not months:
        return LedgerArchive(detached=(), anchor_seq=None, anchor_created=False)
    names = [p.name for p in months]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ONLY {DEFAULT_PARTITION} WHERE recorded_at < %s", [before])  # noqa: S608
        if cursor.fetchone()[0]:
            raise LedgerArchiveRefused(
                f"the DEFAULT partition holds events recorded before {before:%Y-%m-%d}: their months would stay while "
                "the ones around them are archived"
            )
        cursor.execute(
            " UNION ALL ".join(f"SELECT max(seq) FROM ONLY {quote(n)}" for n in names)  # noqa: S608
        )
        anchor_seq = max((row[0] for row in cursor.fetchall() if row[0] is not None), default=None)
        if anchor_seq is not None:
            # The months left must hold every later event and no earlier one, or the chain would not resume at
            # anchor_seq + 1 (a clock that stepped back across the boundary).
            cursor.execute(
                f"SELECT count(*) FROM {EVENTS_TABLE} WHERE recorded_at >= %s AND seq <= %s",  # noqa: S608
                [before, anchor_seq],
            )
            if cursor.fetchone()[0]:
                raise LedgerArchiveRefused(
                    f"events up to seq {anchor_seq} are recorded on both sides of {before:%Y-%m-%d}: archive an "
                    "earlier month"
                )
    created, anchor_hash = False, ""
    if anchor_seq is not None:
        anchor, created = _checkpoint_at(anchor_seq)
        anchor_hash = anchor.head_hash
        witness = witness_read()
        if witness is not None and all(entry.seq != anchor_seq for entry in witness.entries):
            audit_witness_catch_up()
            witness = witness_read()
            if witness is not None and all(entry.seq != anchor_seq for entry in witness.entries):
                raise LedgerArchiveRefused(
                    f"the checkpoint at seq {anchor_seq} is not in the witness {witness.source}: without it the "
                    "archived events could not be told from a cut"
                )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITIONS_LOCK_KEY])
        if anchor_seq is not None:
            # The archive recorded in the chain, in the transaction that detaches: the verifier accepts a ledger that
            # starts after seq 1 only with this event, which nobody can add to the past (verify.ledger_archives).
            audit_record(
                action=AuditAction.LEDGER_ARCHIVED,
                object_type=ARCHIVE_OBJECT_TYPE,
                object_id=anchor_seq,
                system_reason="ledger_archive",
                payload={"through_seq": anchor_seq, "anchor_hash": anchor_hash, "months": names},
            )
        for name in names:
            cursor.execute(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {quote(name)}")
            # PostgreSQL drops the row triggers it cloned onto a partition when it is detached; the archived month
            # keeps refusing UPDATE and DELETE (its TRUNCATE trigger was its own and stays).
            cursor.execute(
                f"CREATE TRIGGER {EVENTS_TABLE}_append_only BEFORE UPDATE OR DELETE ON {quote(name)} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
    return LedgerArchive(detached=tuple(names), anchor_seq=anchor_seq, anchor_created=created)
