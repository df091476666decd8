"""care_reading becomes `PARTITION BY RANGE (taken_at)`, one partition per calendar month in UTC (issue 13).
PostgreSQL only; on SQLite this migration does nothing.

The table is rebuilt in this migration's transaction, under an ACCESS EXCLUSIVE lock: renamed aside, created
again as a partitioned table with the same columns (LIKE), a partition for every month from the oldest reading's
to the newest's and for the current and next 3 months, a DEFAULT partition for readings outside them (the API
takes back-dated readings, the simulator back-dates months), every row copied with its id, the old table dropped
(plainly: anything else still referencing it makes this fail rather than lose it), then every check and foreign
key constraint and every index re-created under its own name, the grants copied, and the table analysed. The id
sequence is a new one set where the old one stood (a partitioned table cannot have an identity column before
PostgreSQL 17), owned by the column, so pg_get_serial_sequence and Django's sequence resets find it.

The database and Django's model state now differ on purpose: the primary key is (id, taken_at) in the database,
since every unique key of a partitioned table must include the partition key; the model keeps `id` as its primary
key. Ids still come from one sequence, so `id` is unique on its own in fact, and every ORM access by pk stays
right (an UPDATE or SELECT by id looks it up in each month's primary-key index). The natural key
`reading_natural_key` (patient, taken_at, source) includes taken_at and stays as it was, so the ingest's
`INSERT … ON CONFLICT DO NOTHING` still dedupes. The identifier's once-per-patient key left the table in 0008.

`care_reading_partitions_ensure(p_months_ahead integer)` creates the months to come (a beat task calls it through
clinaiops.care.partitions.reading_partitions_ensure); EXECUTE on it is taken from PUBLIC here and granted to the
runtime role by clinaiops.audit.roles.

Readings cannot be written while it runs: 500,000 readings over 9 months took 27 s on the 2 shared cores of the
development machine (copy, index builds, ANALYZE), so about 2 minutes at 2M; run it in a maintenance window. The
reverse rebuilds an ordinary table (primary key id, the same sequence) the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.db import migrations

TABLE = "care_reading"
ASIDE = "care_reading_rebuilt_from"
DEFAULT_PARTITION = "care_reading_default"
PARTITION_KEY = "taken_at"
MONTHS_AHEAD = 3

# The months to come, created ahead of the readings that will fall in them. SECURITY DEFINER, so the runtime role
# (which may create nothing) can run it; the search_path is pinned so nothing in another schema stands in for
# care_reading. A month whose readings already sit in the DEFAULT partition (back-dated ones, or readings written
# while the month was missing) cannot be created beside them, so those rows move: DEFAULT is detached, the month
# created, its rows copied into it and deleted from DEFAULT, and DEFAULT attached again, all in the caller's one
# transaction, so no reader ever sees the rows twice or not at all. Both DETACH and CREATE … PARTITION OF take an
# ACCESS EXCLUSIVE lock on care_reading for the moment they run; lock_timeout makes a call that would queue behind
# a long query (and hold every ingest behind itself) fail instead, to be tried again by the next run.
ENSURE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION care_reading_partitions_ensure(p_months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    v_first timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    v_month timestamp;
    v_from text;
    v_to text;
    v_name text;
    v_created integer := 0;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 24 THEN
        RAISE EXCEPTION 'months ahead must be between 0 and 24, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two callers at once (two beat schedulers, a deploy) would both find a month missing; the second waits here
    -- and then finds it made.
    PERFORM pg_advisory_xact_lock(hashtext('care_reading'), hashtext('partitions_ensure'));
    FOR i IN 0..p_months_ahead LOOP
        v_month := v_first + make_interval(months => i);
        v_name := 'care_reading_p' || to_char(v_month, 'YYYYMM');
        CONTINUE WHEN to_regclass('public.' || v_name) IS NOT NULL;
        -- Bounds as UTC literals with their offset: the same instant whatever the session's TimeZone.
        v_from := to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00';
        v_to := to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
        IF EXISTS (SELECT 1 FROM care_reading_default
                   WHERE taken_at >= v_from::timestamptz AND taken_at < v_to::timestamptz) THEN
            ALTER TABLE care_reading DETACH PARTITION care_reading_default;
            EXECUTE format('CREATE TABLE %I PARTITION OF care_reading FOR VALUES FROM (%L) TO (%L)',
                           v_name, v_from, v_to);
            EXECUTE format('INSERT INTO %I SELECT * FROM care_reading_default WHERE taken_at >= $1 AND taken_at < $2',
                           v_name) USING v_from::timestamptz, v_to::timestamptz;
            DELETE FROM care_reading_default WHERE taken_at >= v_from::timestamptz AND taken_at < v_to::timestamptz;
            ALTER TABLE care_reading ATTACH PARTITION care_reading_default DEFAULT;
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF care_reading FOR VALUES FROM (%L) TO (%L)',
                           v_name, v_from, v_to);
        END IF;
        v_created := v_created + 1;
    END LOOP;
    RETURN v_created;
END;
$$;
REVOKE ALL ON FUNCTION care_reading_partitions_ensure(integer) FROM PUBLIC;
"""
DROP_ENSURE_FUNCTION = "DROP FUNCTION IF EXISTS care_reading_partitions_ensure(integer)"


def _rows(cursor: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    cursor.execute(sql, params or [])
    return list(cursor.fetchall())


def _value(cursor: Any, sql: str, params: list[Any] | None = None) -> Any:
    rows = _rows(cursor, sql, params)
    return rows[0][0] if rows else None


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _months(first: date, last: date) -> list[date]:
    """The first days of the months from `first`'s to `last`'s, both included."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _bound(month: date) -> str:
    return f"{month:%Y-%m-%d} 00:00:00+00"


def _grants(cursor: Any, relation: str) -> list[str]:
    """GRANT statements that give `relation`'s present grantees (not its owner) their privileges again."""
    rows = _rows(
        cursor,
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "a.privilege_type, a.is_grantable FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner ORDER BY 1, 2",
        [relation],
    )
    return [f"GRANT {privilege} ON %(target)s TO {grantee}{' WITH GRANT OPTION' if grantable else ''}"
            for grantee, privilege, grantable in rows]  # fmt: skip


def _rebuild(cursor: Any, *, partitioned: bool) -> None:
    """Rebuild care_reading as a partitioned table (or back as a plain one), keeping columns, rows, ids, the
    sequence's position, check and foreign-key constraints, indexes and grants. See the module docstring."""
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    owner = _value(cursor, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass", [TABLE])
    columns = [
        name
        for (name,) in _rows(
            cursor,
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            [TABLE],
        )
    ]
    # The constraints of the table itself, not those a partition inherits; NOT NULL is a column attribute here.
    constraints = _rows(
        cursor,
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('p', 'u', 'c', 'f', 'x') ORDER BY contype = 'p' DESC, conname",
        [TABLE],
    )
    # Indexes that no constraint owns (the primary and unique keys come back with their constraints).
    indexes = [
        definition.replace(" ON ONLY ", " ON ", 1)
        for (definition,) in _rows(
            cursor,
            "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x WHERE x.indrelid = %s::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid) "
            "ORDER BY x.indexrelid",
            [TABLE],
        )
    ]
    table_grants = _grants(cursor, TABLE)
    sequence = _value(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    if sequence is None:
        raise RuntimeError(f"{TABLE}.id has no sequence: this database is not the one this migration knows")
    sequence_type = _value(
        cursor, "SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = %s::regclass", [sequence]
    )
    last_value, is_called = _rows(cursor, f"SELECT last_value, is_called FROM {sequence}")[0]  # noqa: S608
    sequence_grants = _grants(cursor, sequence)

    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {ASIDE}")
    clause = f" PARTITION BY RANGE ({PARTITION_KEY})" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {ASIDE} INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS "
        f"INCLUDING COMPRESSION INCLUDING GENERATED){clause}"
    )
    # A default of the old id (a sequence it owns) must not come along: that sequence goes with the old table.
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP DEFAULT")
    if partitioned:
        span = _rows(
            cursor,
            f"SELECT (date_trunc('month', min({PARTITION_KEY}) AT TIME ZONE 'UTC'))::date, "  # noqa: S608
            f"(date_trunc('month', max({PARTITION_KEY}) AT TIME ZONE 'UTC'))::date FROM {ASIDE}",
        )[0]
        current = ahead = datetime.now(UTC).date().replace(day=1)
        for _ in range(MONTHS_AHEAD):
            ahead = _next_month(ahead)
        # The months the readings span, without a gap, through the current one and the next MONTHS_AHEAD.
        for month in _months(min(span[0] or current, current), max(span[1] or ahead, ahead)):
            cursor.execute(
                f"CREATE TABLE care_reading_p{month:%Y%m} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(_next_month(month))}')"
            )
        cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    rebuilt_sequence = f"{TABLE}_id_seq_rebuilt"
    cursor.execute(f"CREATE SEQUENCE {rebuilt_sequence} AS {sequence_type}")
    cursor.execute("SELECT setval(%s, %s, %s)", [rebuilt_sequence, last_value, is_called])
    listed = ", ".join(columns)
    cursor.execute(f"INSERT INTO {TABLE} ({listed}) SELECT {listed} FROM {ASIDE}")  # noqa: S608
    cursor.execute(f"DROP TABLE {ASIDE}")  # and with it the old sequence
    cursor.execute(f"ALTER SEQUENCE {rebuilt_sequence} RENAME TO {TABLE}_id_seq")
    cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq'::regclass)")

    for name, kind, definition in constraints:
        if kind == "p":
            definition = f"PRIMARY KEY (id, {PARTITION_KEY})" if partitioned else "PRIMARY KEY (id)"
        elif kind in ("u", "x") and partitioned and PARTITION_KEY not in definition:
            raise RuntimeError(f"{name} ({definition}) does not include {PARTITION_KEY}: a partitioned table cannot")
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        cursor.execute(definition)
    for grant in table_grants:
        cursor.execute(grant.replace("%(target)s", f"TABLE {TABLE}"))
    for grant in sequence_grants:
        cursor.execute(grant.replace("%(target)s", f"SEQUENCE {TABLE}_id_seq"))
    if owner != _value(cursor, "SELECT current_user"):
        cursor.execute(f'ALTER TABLE {TABLE} OWNER TO "{owner}"')
    cursor.execute(f"ANALYZE {TABLE}")


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)
        cursor.execute(ENSURE_FUNCTION)


def reverse(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP_ENSURE_FUNCTION)
        _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("care", "0008_reading_identifier_side_table")]
    operations = [migrations.RunPython(forward, reverse, elidable=False)]
