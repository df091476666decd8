"""care_reading's monthly partitions on PostgreSQL (issue 13; migration care 0009 made them).

A month's partition must exist before its readings arrive, or they land in the DEFAULT partition, which every
query then has to scan as well. `reading_partitions_ensure` creates the months to come and is run by a beat task;
it calls the SECURITY DEFINER function `care_reading_partitions_ensure(integer)`, which the runtime role may
execute although it may create nothing itself. SQLite has no partitions: both functions are no-ops there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

# How pg_get_expr shows a range partition's bounds (in the session's TimeZone, which Django sets to UTC).
_BOUNDS = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class ReadingPartition:
    name: str
    # [lower, upper) in UTC; both None for the DEFAULT partition.
    lower: datetime | None
    upper: datetime | None
    # The planner's estimate (pg_class.reltuples), as of the last ANALYZE; None if never analysed.
    rows_estimate: int | None
    default: bool


def reading_partitions_ensure(months_ahead: int = 3) -> int:
    """Create the month partitions of care_reading that are missing, from the current month (UTC) through
    `months_ahead` months on, moving any of their readings out of the DEFAULT partition; return how many it created.
    Safe to run twice: the second run creates nothing and returns 0."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT care_reading_partitions_ensure(%s)", [months_ahead])
        row = cursor.fetchone()
    return int(row[0])


def reading_partitions() -> list[ReadingPartition]:
    """care_reading's partitions, the months in order and the DEFAULT partition last."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'care_reading'::regclass ORDER BY c.relname"
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound, reltuples in rows:
        match = _BOUNDS.search(bound)
        lower = datetime.fromisoformat(match.group(1)) if match else None
        upper = datetime.fromisoformat(match.group(2)) if match else None
        estimate = int(reltuples) if reltuples >= 0 else None
        partitions.append(ReadingPartition(name, lower, upper, estimate, default=bound == "DEFAULT"))
    # The month partitions are named care_reading_pYYYYMM, so their names sort as their months do.
    return sorted(partitions, key=lambda p: (p.default, p.name))
