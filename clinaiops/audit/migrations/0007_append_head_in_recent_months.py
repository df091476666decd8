"""`audit_append()` reads the ledger's head from the current month on, and its clock never runs behind the head.

With the events partitioned by month (0006), `ORDER BY seq DESC LIMIT 1` over the whole ledger probes one index per
attached month, inside the ledger lock: measured, 3,000 appends took 0.36–0.47 s with 5 partitions and 1.14–1.30 s
with 26. The head is the newest event, so the read is bounded to `recorded_at >=` the start of the current UTC
month, which the planner prunes to this month's partition, the months made ahead and DEFAULT, whatever the history.
(Not "the last 32 days": a window reaching into last month would scan that month's whole index, backwards in seq,
for a qualifying row whenever its last events were older than the window's start.)

That is exact only if `recorded_at` never goes backwards along `seq`, so the clock taken under the lock is now
`greatest(clock_timestamp(), the head's recorded_at)`: a system clock stepped back (NTP) no longer writes an event
dated before the one it follows; it is dated with its predecessor's time until the clock catches up. The head then
always has the greatest `recorded_at`, so it lies in the bounded range whenever any event does. When none does (the
month's first append, or a clock that jumped forward), the read falls back to the whole ledger, once.

The canonical form and the hash are unchanged; the verifier is not affected. The reverse restores 0003's body.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

SIGNATURE = "audit_append(bigint, bigint, varchar, varchar, varchar, varchar, varchar, varchar, inet, text)"

_HEAD = {
    "recent": r"""
    v_clock := clock_timestamp();
    -- The head is the newest event: in this month or later (partition pruning), or, before this month's first
    -- event, anywhere (0007's docstring).
    SELECT seq, hash, recorded_at INTO v_seq, v_prev, v_last FROM audit_auditevent
    WHERE recorded_at >= date_trunc('month', v_clock AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    ORDER BY seq DESC LIMIT 1;
    IF v_seq IS NULL THEN
        SELECT seq, hash, recorded_at INTO v_seq, v_prev, v_last FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
    END IF;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    -- Never dated before the event it follows: recorded_at grows with seq, which the bounded read relies on.
    v_clock := greatest(v_clock, v_last);
""",
    "whole": r"""
    SELECT seq, hash INTO v_seq, v_prev FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    -- clock_timestamp(), not now(): now() is the transaction's start and would not follow seq order.
    v_clock := clock_timestamp();
""",
}

_BODY = r"""
CREATE OR REPLACE FUNCTION audit_append(
    lock_key bigint, p_actor_id bigint, p_actor_role varchar, p_action varchar, p_object_type varchar,
    p_object_id varchar, p_outcome varchar, p_request_id varchar, p_ip inet, p_payload text
) RETURNS TABLE (event_id bigint, event_seq bigint, event_prev_hash varchar, event_hash varchar,
                 event_recorded_at timestamptz, event_ip text) AS $$
DECLARE
    v_seq bigint;
    v_prev varchar;
    v_last timestamptz;
    v_clock timestamptz;
    v_ip text;
    v_canonical text;
    v_hash varchar;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
HEAD
    v_ip := host(p_ip);
    v_canonical := '{"action":' || to_json(p_action)::text
        || ',"actor_id":' || coalesce(p_actor_id::text, 'null')
        || ',"actor_role":' || to_json(p_actor_role)::text
        || ',"ip":' || coalesce(to_json(v_ip)::text, 'null')
        || ',"object_id":' || to_json(p_object_id)::text
        || ',"object_type":' || to_json(p_object_type)::text
        || ',"outcome":' || to_json(p_outcome)::text
        || ',"payload":' || p_payload
        || ',"prev_hash":' || to_json(v_prev)::text
        || ',"recorded_at":' || to_json(to_char(v_clock AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
        || ',"request_id":' || to_json(p_request_id)::text
        || ',"seq":' || v_seq::text || '}';
    v_hash := encode(sha256(convert_to(v_canonical, 'UTF8')), 'hex');
    INSERT INTO audit_auditevent (seq, recorded_at, actor_id, actor_role, action, object_type, object_id, outcome,
                                  request_id, ip, payload, prev_hash, hash)
    VALUES (v_seq, v_clock, p_actor_id, p_actor_role, p_action, p_object_type, p_object_id, p_outcome,
            p_request_id, p_ip, p_payload, v_prev, v_hash)
    RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_seq, v_prev, v_hash, v_clock, v_ip;
END;
$$ LANGUAGE plpgsql;
"""


def _replace(schema_editor: Any, head: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    # CREATE OR REPLACE keeps the owner and the grants (the runtime role's EXECUTE) but not SECURITY DEFINER or the
    # pinned search_path, which 0005 set: both are set again.
    schema_editor.execute(_BODY.replace("HEAD", _HEAD[head]), params=None)
    schema_editor.execute(
        f"ALTER FUNCTION {SIGNATURE} SECURITY DEFINER SET search_path = {schema_editor.quote_name(schema)}, pg_temp",
        params=None,
    )


def forward(apps: Any, schema_editor: Any) -> None:
    _replace(schema_editor, "recent")


def reverse(apps: Any, schema_editor: Any) -> None:
    _replace(schema_editor, "whole")


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_ledger_partitions")]
    operations = [migrations.RunPython(forward, reverse)]
