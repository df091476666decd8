"""The monthly partitions of the readings and the ledger, seen together (issue 13, docs/scaling.md): what exists, and
the owner's remedy when rows sit in a DEFAULT partition.

Both tables are `PARTITION BY RANGE` on a timestamp with one partition per UTC month and a DEFAULT partition, so a
write never fails for want of a month (care migration 0009, audit migration 0006). A daily beat task makes the
coming months (clinaiops.ops.tasks.partitions_ensure). Rows still reach DEFAULT when the task did not run in time,
or when history older than the partitioned months is loaded (an import, the benches' grown histories). They are
correct there but not pruned, and a month whose rows sit in DEFAULT cannot be created, nor, for the ledger,
archived.

`default_partition_split` moves them out, as the owner and in one transaction: DEFAULT is detached and renamed
aside, each month it held is created, a new DEFAULT is attached, the rows are inserted again through the parent
(so each lands in its month), and the old DEFAULT is dropped; the split is recorded in the ledger in the same
transaction. Nothing is updated or deleted, so the ledger's
append-only triggers have nothing to refuse; its rows keep their seq, hash and chain, and `audit_verify` after the
split says the same as before it. The parent is locked (ACCESS EXCLUSIVE) for the duration: every write to that
table waits, so run it when the clinic is quiet. The runtime role cannot run it (it may not detach partitions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record

# How pg_get_expr shows a month partition's lower bound (the session's TimeZone is UTC under Django).
_LOWER = re.compile(r"FOR VALUES FROM \('([^']+)'\)")

NO_TRUNCATE = (
    "CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate()"
)


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    key: str  # the partition key column
    default: str  # the DEFAULT partition's name
    prefix: str  # a month's partition is prefix + YYYYMM
    # Run on each partition the split creates (the ledger's: its own TRUNCATE trigger).
    on_create: Callable[[str], list[str]]


def _ledger_partition_made(name: str) -> list[str]:
    return [NO_TRUNCATE.format(table=connection.ops.quote_name(name))]


TABLES = {
    "care_reading": PartitionedTable(
        "care_reading", "taken_at", "care_reading_default", "care_reading_p", lambda _: []
    ),
    "audit_auditevent": PartitionedTable(
        "audit_auditevent", "recorded_at", "audit_auditevent_default", "audit_auditevent_p", _ledger_partition_made
    ),
}


@dataclass(frozen=True)
class PartitionSummary:
    """One partitioned table at a glance: what an on-call engineer asks of it."""

    table: str
    months: int  # attached month partitions
    first_month: datetime | None
    last_month: datetime | None  # the lower bound of the newest month partition
    months_ahead: int  # month partitions that start after the current month
    default_has_rows: bool


def partitions_summary(now: datetime | None = None) -> list[PartitionSummary]:
    """Each partitioned table's months and whether its DEFAULT partition holds rows. Empty on SQLite. Two queries
    whatever the history: the catalog's partitions of both tables, then one `EXISTS` per DEFAULT partition (at most
    one row read each)."""
    if connection.vendor != "postgresql":
        return []
    now = now or datetime.now(UTC)
    current = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relkind = 'p' AND p.oid IN (SELECT to_regclass(t) FROM unnest(%s::text[]) AS t)",
            [list(TABLES)],
        )
        months: dict[str, list[datetime]] = {}
        for parent, bound in cursor.fetchall():
            found = _LOWER.search(bound or "")
            months.setdefault(parent, [])
            if found:
                months[parent].append(datetime.fromisoformat(found.group(1)).astimezone(UTC))
        tables = [name for name in TABLES if name in months]
        if not tables:
            return []
        probes = ", ".join(f"EXISTS (SELECT 1 FROM {quote(TABLES[name].default)})" for name in tables)  # noqa: S608
        cursor.execute(f"SELECT {probes}")
        defaults = cursor.fetchone()
    summaries = []
    for name, has_rows in zip(tables, defaults, strict=True):
        made = sorted(months[name])
        summaries.append(
            PartitionSummary(
                table=name,
                months=len(made),
                first_month=made[0] if made else None,
                last_month=made[-1] if made else None,
                months_ahead=sum(1 for m in made if m > current),
                default_has_rows=bool(has_rows),
            )
        )
    return summaries


def _is_partitioned(cursor: CursorWrapper, table: str) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return bool(row and row[0])


def _bound(month: datetime) -> str:
    """A UTC month bound as a literal: DDL takes no parameters, and the value is our own date."""
    return f"'{month:%Y-%m-%d} 00:00:00+00'"


class SplitRefused(RuntimeError):
    """The split cannot run as asked; nothing was changed."""


def default_partition_split(table: str) -> list[str]:
    """Move the rows of `table`'s DEFAULT partition into month partitions of their own (module docstring), as the
    owner; return the names of the partitions it created (empty when DEFAULT held nothing)."""
    if connection.vendor != "postgresql":
        raise SplitRefused("partitions exist on PostgreSQL only")
    spec = TABLES.get(table)
    if spec is None:
        raise SplitRefused(f"{table} is not one of the partitioned tables ({', '.join(TABLES)})")
    quote = connection.ops.quote_name
    parent, default, aside = quote(spec.table), quote(spec.default), quote(f"{spec.default}_split")
    with transaction.atomic(), connection.cursor() as cursor:
        if not _is_partitioned(cursor, spec.table):
            raise SplitRefused(f"{table} is not partitioned (migrate first)")
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = %s::regclass", [spec.table]
        )
        if not cursor.fetchone()[0]:
            raise SplitRefused(f"only the owner of {table} may split its DEFAULT partition (MIGRATION_DATABASE_URL)")
        cursor.execute(f"LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE")
        # Django's foreign keys are deferred to the commit; a DEFAULT partition with checks still pending (rows
        # written earlier in the caller's transaction) cannot be dropped, so they are checked now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        key = quote(spec.key)
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', {key} AT TIME ZONE 'UTC') FROM {default} ORDER BY 1"  # noqa: S608
        )
        months = [row[0] for row in cursor.fetchall()]
        if not months:
            return []
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {default}")
        cursor.execute(f"ALTER TABLE {default} RENAME TO {aside}")
        created = []
        for month in months:
            name = f"{spec.prefix}{month:%Y%m}"
            following = month.replace(year=month.year + (month.month == 12), month=month.month % 12 + 1)
            cursor.execute(
                f"CREATE TABLE {quote(name)} PARTITION OF {parent} FOR VALUES FROM ({_bound(month)}) "
                f"TO ({_bound(following)})"
            )
            for statement in spec.on_create(name):
                cursor.execute(statement)
            created.append(name)
        cursor.execute(f"CREATE TABLE {default} PARTITION OF {parent} DEFAULT")
        for statement in spec.on_create(spec.default):
            cursor.execute(statement)
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [spec.table],
        )
        columns = cursor.fetchone()[0]
        # By name, not position: a partition attached later may order its columns differently.
        cursor.execute(f"INSERT INTO {parent} ({columns}) SELECT {columns} FROM {aside}")  # noqa: S608
        cursor.execute(f"DROP TABLE {aside}")
        if spec.table == "audit_auditevent":
            cursor.execute("SELECT audit_ledger_privileges_lock()")
        # In the same transaction: an operator's change to where the rows live, ledger rows included, is on record.
        audit_record(
            action=AuditAction.PARTITION_DEFAULT_SPLIT,
            object_type="table",
            object_id=spec.table,
            system_reason="partitions_split_default",
            payload={"months": created},
        )
    return created
