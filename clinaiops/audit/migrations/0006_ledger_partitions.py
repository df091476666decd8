"""On PostgreSQL, the ledger's events are partitioned by calendar month of `recorded_at` (issue 13,
docs/scaling.md).

`audit_auditevent` becomes `PARTITION BY RANGE (recorded_at)`: one partition per UTC month, named
`audit_auditevent_pYYYYMM`, for every month the existing rows span plus the current month and the next three, and a
DEFAULT partition (`audit_auditevent_default`) so that an append never fails because a month is missing. The rows,
their ids and the id sequence's position are kept: the old table is renamed, the partitioned one is created like it,
the rows are copied, and the old table is dropped (its triggers refuse DELETE and TRUNCATE, not DROP).

The database then differs from the Django model on purpose, and the model state is left as it is (so
`makemigrations --check` stays clean and SQLite, where nothing changes, keeps the model's constraints):
- PostgreSQL requires every unique constraint of a partitioned table to include the partition key, so
  `UNIQUE (seq)` becomes `UNIQUE (seq, recorded_at)` and the primary key `(id)` becomes `(id, recorded_at)`. That
  `seq` alone is unique now rests on the advisory lock `audit_append()` takes before reading the head, and on the
  chain: two events with one seq cannot both link to their predecessor, and the verifier, which streams every event
  in seq order, reports a repeated seq as a break. Nothing references an event by id (no foreign key points here).
- The (object_type, object_id) and actor indexes and the foreign key to the user are kept, on every partition.

Triggers: the row trigger refusing UPDATE and DELETE is created on the partitioned parent, which PostgreSQL clones
onto every partition, present and future; the statement trigger refusing TRUNCATE is not cloned, so it is created on
the parent and on each partition (TRUNCATE of a partition by name fires only that partition's triggers).

Functions:
- `audit_ledger_privileges_lock()` now also strips every partition of the ledger tables (found through pg_inherits)
  back to SELECT: the default privileges give the runtime role INSERT, UPDATE and DELETE on each table the owner
  creates, partitions included, and a direct INSERT into a partition would bypass `audit_append()`.
- `audit_auditevent_partitions_ensure(months_ahead)` (SECURITY DEFINER, owned by the owner, EXECUTE for the runtime
  role through `db_roles`) creates the missing months from the current one through current + months_ahead, each with
  its TRUNCATE trigger, locks the privileges and returns how many it created. A daily beat task calls it. It
  refuses a month whose rows already sit in the DEFAULT partition (moving them would mean deleting from a ledger
  table); see clinaiops.audit.partitions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.db import migrations

EVENTS = "audit_auditevent"
OLD = "audit_auditevent_unpartitioned"
DEFAULT_PARTITION = "audit_auditevent_default"
MONTHS_AHEAD = 3
# The most months `audit_auditevent_partitions_ensure()` makes in one call: the runtime role may call it, and must
# not be able to fill the catalog with tables.
MONTHS_AHEAD_MAX = 24
ENSURE_SIGNATURE = "audit_auditevent_partitions_ensure(integer)"
# Serialises two callers of the ensure function (two beat runs, or a run and an archive), apart from the ledger's own
# append lock so that creating a month never waits for an append's transaction.
PARTITIONS_LOCK_KEY = 0x0C1A_A0D2

APPEND_ONLY = (
    f"CREATE TRIGGER {EVENTS}_append_only BEFORE UPDATE OR DELETE ON {{table}} "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();"
)
NO_TRUNCATE = (
    f"CREATE TRIGGER {EVENTS}_no_truncate BEFORE TRUNCATE ON {{table}} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();"
)

PRIVILEGES_LOCK = """
CREATE OR REPLACE FUNCTION audit_ledger_privileges_lock() RETURNS void AS $$
DECLARE
    v_table regclass;
    v_grantee oid;
BEGIN
    FOR v_table IN
        WITH RECURSIVE ledger(relid) AS (
            SELECT to_regclass(t) FROM unnest(ARRAY['audit_auditevent', 'audit_auditcheckpoint']) t
            WHERE to_regclass(t) IS NOT NULL
            UNION
            SELECT i.inhrelid::regclass FROM pg_inherits i JOIN ledger l ON i.inhparent = l.relid
        )
        SELECT relid FROM ledger
    LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM PUBLIC',
                       v_table);
        FOR v_grantee IN
            SELECT DISTINCT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
            WHERE c.oid = v_table AND a.grantee NOT IN (0, c.relowner)
        LOOP
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM %s',
                           v_table, v_grantee::regrole);
        END LOOP;
    END LOOP;
    -- Only the owner (and a superuser) may run this function itself.
    FOR v_grantee IN
        SELECT DISTINCT a.grantee FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
        WHERE p.oid = 'audit_ledger_privileges_lock()'::regprocedure AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION audit_ledger_privileges_lock() FROM %s',
                       CASE WHEN v_grantee = 0 THEN 'PUBLIC' ELSE v_grantee::regrole::text END);
    END LOOP;
END;
$$ LANGUAGE plpgsql;
"""

# Migration 0005's version, for the reverse migration.
PRIVILEGES_LOCK_0005 = """
CREATE OR REPLACE FUNCTION audit_ledger_privileges_lock() RETURNS void AS $$
DECLARE
    v_table text;
    v_grantee oid;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['audit_auditevent', 'audit_auditcheckpoint'] LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %I FROM PUBLIC',
                       v_table);
        FOR v_grantee IN
            SELECT DISTINCT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
            WHERE c.oid = v_table::regclass AND a.grantee NOT IN (0, c.relowner)
        LOOP
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %I FROM %s',
                           v_table, v_grantee::regrole);
        END LOOP;
    END LOOP;
    FOR v_grantee IN
        SELECT DISTINCT a.grantee FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
        WHERE p.oid = 'audit_ledger_privileges_lock()'::regprocedure AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION audit_ledger_privileges_lock() FROM %s',
                       CASE WHEN v_grantee = 0 THEN 'PUBLIC' ELSE v_grantee::regrole::text END);
    END LOOP;
END;
$$ LANGUAGE plpgsql;
"""

ENSURE = f"""
CREATE OR REPLACE FUNCTION {EVENTS}_partitions_ensure(p_months_ahead integer) RETURNS integer AS $$
DECLARE
    -- Months are UTC calendar months, whatever the session's TimeZone.
    v_first timestamp := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC');
    v_start timestamp;
    v_name text;
    v_stray bigint;
    v_created integer := 0;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > {MONTHS_AHEAD_MAX} THEN
        RAISE EXCEPTION 'audit ledger partitions: months ahead must be 0..{MONTHS_AHEAD_MAX}, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock({PARTITIONS_LOCK_KEY});
    FOR v_offset IN 0..p_months_ahead LOOP
        v_start := v_first + make_interval(months => v_offset);
        v_name := '{EVENTS}_p' || to_char(v_start, 'YYYYMM');
        IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = '{EVENTS}'::regclass AND c.relname = v_name) THEN
            CONTINUE;
        END IF;
        IF to_regclass(v_name) IS NOT NULL THEN
            RAISE EXCEPTION 'audit ledger partitions: a table % exists but is not a partition of {EVENTS}', v_name
                USING ERRCODE = 'duplicate_table';
        END IF;
        -- Without the month's partition its rows went to the DEFAULT partition. Moving them would mean deleting
        -- from a ledger table, which nothing may do: an operator decides (docs/scaling.md).
        SELECT count(*) INTO v_stray FROM {EVENTS}
        WHERE recorded_at >= v_start AT TIME ZONE 'UTC'
          AND recorded_at < (v_start + interval '1 month') AT TIME ZONE 'UTC';
        IF v_stray > 0 THEN
            RAISE EXCEPTION 'audit ledger partitions: month % refused, % of its events sit in the DEFAULT partition',
                to_char(v_start, 'YYYY-MM'), v_stray
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'the months were not made ahead in time: see docs/scaling.md for the owner''s remedy';
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF {EVENTS} FOR VALUES FROM (%L) TO (%L)', v_name,
                       to_char(v_start, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
        EXECUTE format('CREATE TRIGGER {EVENTS}_no_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate()', v_name);
        v_created := v_created + 1;
    END LOOP;
    IF v_created > 0 THEN
        PERFORM audit_ledger_privileges_lock();
    END IF;
    RETURN v_created;
END;
$$ LANGUAGE plpgsql;
"""  # noqa: S608 - constants only


def _next(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def _months(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next(month)
    return months


def _bound(month: date) -> str:
    """A UTC bound, written out so the session's TimeZone cannot shift it."""
    return f"'{month.isoformat()} 00:00:00+00'"


def _rows(schema_editor: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def _definitions(schema_editor: Any, table: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The table's constraints (name, type, definition) and the indexes that back none, to re-create on the new
    table once the old one is gone (their names are then free)."""
    constraints = _rows(
        schema_editor,
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('p', 'u', 'f', 'c') ORDER BY contype, conname",
        [table],
    )
    indexes = _rows(
        schema_editor,
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) ORDER BY 1",
        [table],
    )
    return [(str(n), str(t), str(d)) for n, t, d in constraints], [str(row[0]) for row in indexes]


def _rebuild(schema_editor: Any, *, partitioned: bool) -> None:
    """Replace audit_auditevent by a partitioned (or, in reverse, a plain) table with the same columns, rows, id
    sequence position, constraints, indexes and triggers."""

    def execute(sql: str) -> None:
        schema_editor.execute(sql, params=None)

    execute(f"LOCK TABLE {EVENTS} IN ACCESS EXCLUSIVE MODE")
    constraints, indexes = _definitions(schema_editor, EVENTS)
    (sequence,) = _rows(schema_editor, f"SELECT pg_get_serial_sequence('{EVENTS}', 'id')")[0]
    (position,) = _rows(schema_editor, f"SELECT CASE WHEN is_called THEN last_value END FROM {sequence}")[0]  # noqa: S608
    execute(f"ALTER TABLE {EVENTS} RENAME TO {OLD}")
    like = f"(LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS)"
    execute(f"CREATE TABLE {EVENTS} {like}" + (" PARTITION BY RANGE (recorded_at)" if partitioned else ""))
    if partitioned:
        now = datetime.now(UTC).date()
        span = _rows(
            schema_editor,
            f"SELECT min(recorded_at) AT TIME ZONE 'UTC', max(recorded_at) AT TIME ZONE 'UTC' FROM {OLD} "  # noqa: S608
            "WHERE recorded_at > '-infinity' AND recorded_at < 'infinity'",
        )[0]
        first = min(span[0].date(), now) if span[0] is not None else now
        last = max(span[1].date(), now) if span[1] is not None else now
        horizon = _months(now, date(now.year + 1, now.month, 1))[MONTHS_AHEAD]  # the current month + 3
        for month in _months(first, max(last, horizon)):
            name = f"{EVENTS}_p{month:%Y%m}"
            bounds = f"FROM ({_bound(month)}) TO ({_bound(_next(month))})"
            execute(f"CREATE TABLE {name} PARTITION OF {EVENTS} FOR VALUES {bounds}")
        execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {EVENTS} DEFAULT")
    execute(f"INSERT INTO {EVENTS} SELECT * FROM {OLD}")  # noqa: S608
    (new_sequence,) = _rows(schema_editor, f"SELECT pg_get_serial_sequence('{EVENTS}', 'id')")[0]
    if position is not None:
        execute(f"SELECT setval('{new_sequence}', {int(position)}, true)")
    execute(f"DROP TABLE {OLD}")  # its partitions (reverse) go with it
    bare = new_sequence.split(".")[-1].strip('"')
    if bare != f"{EVENTS}_id_seq":
        execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {EVENTS}_id_seq")
    for name, kind, definition in constraints:
        if kind in {"p", "u"}:
            # A partitioned table's unique constraints must include the partition key; a plain one's need not.
            columns = definition[definition.index("(") + 1 : definition.index(")")].split(", ")
            columns = [c for c in columns if c != "recorded_at"] + (["recorded_at"] if partitioned else [])
            definition = f"{'PRIMARY KEY' if kind == 'p' else 'UNIQUE'} ({', '.join(columns)})"
        execute(f"ALTER TABLE {EVENTS} ADD CONSTRAINT {name} {definition}")
    for definition in indexes:
        execute(definition)
    execute(APPEND_ONLY.format(table=EVENTS))
    execute(NO_TRUNCATE.format(table=EVENTS))
    if partitioned:
        for (partition,) in _rows(
            schema_editor, "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", [EVENTS]
        ):
            execute(NO_TRUNCATE.format(table=partition))


def _search_path(schema_editor: Any) -> str:
    (schema,) = _rows(schema_editor, "SELECT current_schema()")[0]
    return f"{schema_editor.quote_name(schema)}, pg_temp"


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    _rebuild(schema_editor, partitioned=True)
    for statement in (
        PRIVILEGES_LOCK,
        ENSURE,
        f"ALTER FUNCTION {ENSURE_SIGNATURE} SECURITY DEFINER SET search_path = {_search_path(schema_editor)};",
        # For the runtime role alone (`db_roles` grants it), not for every role that can connect.
        f"REVOKE EXECUTE ON FUNCTION {ENSURE_SIGNATURE} FROM PUBLIC;",
        "SELECT audit_ledger_privileges_lock();",
    ):
        schema_editor.execute(statement, params=None)


def reverse(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {ENSURE_SIGNATURE};", params=None)
    _rebuild(schema_editor, partitioned=False)
    schema_editor.execute(PRIVILEGES_LOCK_0005, params=None)
    schema_editor.execute("SELECT audit_ledger_privileges_lock();", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_runtime_role_and_segments")]
    operations = [migrations.RunPython(forward, reverse)]
