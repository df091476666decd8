"""The append reads the ledger's head from the current month on (audit migration 0007): it must still find the true
head before the month's first event, and an event must never be dated before the one it follows,
even when the system clock steps back. Events that stand in for an old or a clock-skewed past are inserted with a
valid hash and link, as a superuser could, so the chain stays verifiable."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from clinaiops.audit.chain import GENESIS_HASH, TIMESTAMP_FORMAT, event_hash
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_record
from clinaiops.audit.verify import ledger_verify

READ = re.compile(r"\bon (audit_auditevent_(?:p\d{6}|default))\b")
pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="audit_append() is PostgreSQL's; SQLite appends in Python"
)


def _chained(recorded_at: datetime) -> AuditEvent:
    """An event after the head, dated `recorded_at`, with a valid hash and link."""
    head = AuditEvent.objects.order_by("-seq").first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    stamp = recorded_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    payload = json.dumps({"probe": seq}, separators=(",", ":"), sort_keys=True)
    digest = event_hash(seq, stamp, None, "system", "export.created", "probe", str(seq), "success", "", None, payload,
                        prev)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, recorded_at, actor_id, actor_role, action, object_type, object_id, "
            "outcome, request_id, ip, payload, prev_hash, hash) VALUES (%s, %s, NULL, 'system', 'export.created', "
            "'probe', %s, 'success', '', NULL, %s, %s, %s)",
            [seq, recorded_at, str(seq), payload, prev, digest],
        )
    return AuditEvent.objects.get(seq=seq)


def _append() -> AuditEvent:
    with transaction.atomic():
        return audit_record(action=AuditAction.EXPORT_CREATED, object_type="probe", object_id="x", system_reason="t")


def test_after_forty_idle_days_the_append_still_follows_the_head(db: None) -> None:
    old = _chained(datetime.now(UTC) - timedelta(days=40))  # before this month: outside the bounded read
    event = _append()
    assert (event.seq, event.prev_hash) == (old.seq + 1, old.hash)
    assert ledger_verify().ok


def test_a_clock_behind_the_head_dates_the_event_with_the_heads_time_not_before_it(db: None) -> None:
    _append()
    ahead = _chained(datetime.now(UTC) + timedelta(hours=2))  # as if the clock has since stepped back two hours
    event = _append()
    assert (event.seq, event.prev_hash) == (ahead.seq + 1, ahead.hash)
    assert event.recorded_at >= ahead.recorded_at
    later = _append()
    assert later.recorded_at >= event.recorded_at and later.seq == event.seq + 1
    assert ledger_verify().ok


def test_the_head_is_read_from_the_recent_months_only(db: None) -> None:
    """Two years of attached months: the append's head read prunes them, the whole-ledger read would not."""
    with connection.cursor() as cursor:
        for months_back in range(1, 25):
            cursor.execute(
                "SELECT format('audit_auditevent_p%%s', to_char(m, 'YYYYMM')), m, m + interval '1 month' FROM "
                "(SELECT date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => %s) AS m) AS s",
                [months_back],
            )
            name, lower, upper = cursor.fetchone()
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                bounds = f"FROM ('{lower:%Y-%m-%d} 00:00:00+00') TO ('{upper:%Y-%m-%d} 00:00:00+00')"
                cursor.execute(f"CREATE TABLE {name} PARTITION OF audit_auditevent FOR VALUES {bounds}")
        _append()
        # The function's statement, with its bound as the value PL/pgSQL passes (a parameter, so it is pruned).
        since = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        cursor.execute(
            "EXPLAIN (COSTS OFF) SELECT seq, hash, recorded_at FROM audit_auditevent "  # noqa: S608 - our own date
            f"WHERE recorded_at >= '{since.isoformat()}'::timestamptz ORDER BY seq DESC LIMIT 1"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN (COSTS OFF) SELECT seq FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
        whole = "\n".join(row[0] for row in cursor.fetchall())
    scanned, every = set(READ.findall(plan)), set(READ.findall(whole))
    assert len(every) >= 28  # the whole-ledger read visits every month
    # This month, the three made ahead, and DEFAULT.
    assert len(scanned) <= 5 and "audit_auditevent_default" in scanned, plan
    assert _append().seq == AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
