"""Housekeeping an on-call engineer would otherwise do by hand: the monthly partitions ahead of time (issue 13).

The readings and the audit ledger are partitioned by month on PostgreSQL (docs/scaling.md). Each table has a
DEFAULT partition, so a write never fails for want of a month, but a month whose rows sit in DEFAULT loses
partition pruning and (for the ledger) cannot be detached for archive. So beat asks, daily, for the next
PARTITION_MONTHS_AHEAD months of both tables. The runtime role owns no table and cannot create one: it calls the
SECURITY DEFINER functions the migrations made, which create only the named tables' month partitions. Safe to run
twice: a month that exists is left alone. On SQLite there is nothing to partition and both calls return 0.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError

from clinaiops.audit.partitions import ledger_partitions_ensure
from clinaiops.care.partitions import reading_partitions_ensure
from clinaiops.core.task_retry import TRANSIENT_DATABASE_ERRORS, durable_task

logger = logging.getLogger(__name__)


# object_not_in_prerequisite_state: what audit_auditevent_partitions_ensure() raises for a month it refuses.
REFUSED_SQLSTATE = "55000"


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


@durable_task(name="clinaiops.ops.tasks.partitions_ensure")
def partitions_ensure() -> dict[str, int]:
    """Create the missing month partitions of the readings and the ledger through PARTITION_MONTHS_AHEAD months
    ahead; returns how many each table gained. Each table on its own: a month the ledger refuses (its events already
    in DEFAULT: docs/scaling.md says what the owner does) must not keep the readings' months from being made. A
    refusal is logged and counted (-1 in the answer); a transient database error retries the whole task."""
    months = int(settings.PARTITION_MONTHS_AHEAD)
    created: dict[str, int] = {}
    for table, ensure in (("care_reading", reading_partitions_ensure), ("audit_auditevent", ledger_partitions_ensure)):
        try:
            created[table] = ensure(months)
        except DatabaseError as exc:
            if isinstance(exc, TRANSIENT_DATABASE_ERRORS) and _sqlstate(exc) != REFUSED_SQLSTATE:
                raise  # a restart, a lock timeout: the task's retry tries again
            # Refused (the ledger's month has events in DEFAULT): a retry cannot help, an operator can.
            logger.error("month partitions of %s refused; `manage.py partitions` says why", table)
            created[table] = -1
    if any(created.values()):
        logger.info("month partitions ensured: %s", created)
    return created
