"""The PostgreSQL append in one round trip: lock, read the head and the clock, build the canonical form,
hash it and insert, all inside `audit_append()`.

The canonical form is the one in docs/canonical-encoding.md. PostgreSQL's to_json() escapes strings exactly
as Python's json encode_basestring does (\\" \\\\ \\b \\f \\n \\r \\t, other control characters as lowercase
\\u00xx, everything else raw UTF-8), so the Python verifier, which recomputes every hash itself, agrees with
this writer byte for byte; tests/audit/test_ledger.py pins that with hostile strings.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_append(
    lock_key bigint, p_actor_id bigint, p_actor_role varchar, p_action varchar, p_object_type varchar,
    p_object_id varchar, p_outcome varchar, p_request_id varchar, p_ip inet, p_payload text
) RETURNS TABLE (event_id bigint, event_seq bigint, event_prev_hash varchar, event_hash varchar,
                 event_recorded_at timestamptz, event_ip text) AS $$
DECLARE
    v_seq bigint;
    v_prev varchar;
    v_clock timestamptz;
    v_ip text;
    v_canonical text;
    v_hash varchar;
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT seq, hash INTO v_seq, v_prev FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    -- clock_timestamp(), not now(): now() is the transaction's start and would not follow seq order.
    v_clock := clock_timestamp();
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
REVERSE = "DROP FUNCTION IF EXISTS audit_append(bigint, bigint, varchar, varchar, varchar, varchar, varchar, varchar, inet, text);"


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [migrations.RunPython(forward, reverse)]
