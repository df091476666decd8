"""The ledger survives its own application role (issue 8, docs/security.md).

- TRUNCATE is refused to every session. The `clinaiops.allow_ledger_truncate` setting that let any session
  through is gone: a session setting must never switch the protection off. (A superuser can still suspend
  triggers; the chain, the checkpoints and the witness catch what it does next.)
- `audit_append()` becomes SECURITY DEFINER, with a fixed search_path (pg_temp last, so no temporary table can
  stand in for the ledger), and `audit_checkpoint_append()` is added the same way: the runtime role, which owns
  nothing and has only SELECT on the ledger tables, appends events and checkpoints through them alone.
- `audit_ledger_privileges_lock()` takes every privilege but SELECT on the ledger tables away from every role but
  their owner. This migration calls it (tables created after `db_roles` granted default privileges to the
  runtime role would otherwise carry INSERT/UPDATE/DELETE), `manage.py db_roles` calls it, and so must any later
  migration that creates a ledger table (a partition).
- Checkpoints gain the signed hash prefixes of the events they cover (`segment_start`, `segment_hashes`).
"""

from django.db import migrations, models

APPEND_SIGNATURE = "audit_append(bigint, bigint, varchar, varchar, varchar, varchar, varchar, varchar, inet, text)"
CHECKPOINT_SIGNATURE = (
    "audit_checkpoint_append(bigint, varchar, bigint, timestamptz, varchar, varchar, varchar, bigint, text)"
)

REFUSE_TRUNCATE = """
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit ledger is append-only: TRUNCATE refused on %', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

# The pre-0005 function, for the reverse migration only.
REFUSE_TRUNCATE_WITH_SETTING = """
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('clinaiops.allow_ledger_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit ledger is append-only: TRUNCATE refused on %', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

CHECKPOINT_APPEND = """
CREATE OR REPLACE FUNCTION audit_checkpoint_append(
    p_seq bigint, p_head_hash varchar, p_event_count bigint, p_created_at timestamptz, p_key_id varchar,
    p_signature varchar, p_reason varchar, p_segment_start bigint, p_segment_hashes text
) RETURNS bigint AS $$
DECLARE
    v_hash varchar;
    v_id bigint;
BEGIN
    -- The signature cannot be checked here (the public keys live in the environment, not the database), but a
    -- checkpoint must at least name the event it claims to: the verifier refuses a forged signature.
    SELECT hash INTO v_hash FROM audit_auditevent WHERE seq = p_seq;
    IF v_hash IS NULL OR v_hash <> p_head_hash OR p_event_count <> p_seq THEN
        RAISE EXCEPTION 'audit checkpoint refused: seq % does not hold the head it claims', p_seq
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO audit_auditcheckpoint (seq, head_hash, event_count, created_at, key_id, signature, reason,
                                       segment_start, segment_hashes)
    VALUES (p_seq, p_head_hash, p_event_count, p_created_at, p_key_id, p_signature, p_reason, p_segment_start,
            p_segment_hashes)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;
"""

PRIVILEGES_LOCK = """
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


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    search_path = f"{schema_editor.quote_name(schema)}, pg_temp"
    statements = [
        REFUSE_TRUNCATE,
        f"ALTER FUNCTION {APPEND_SIGNATURE} SECURITY DEFINER SET search_path = {search_path};",
        CHECKPOINT_APPEND,
        f"ALTER FUNCTION {CHECKPOINT_SIGNATURE} SECURITY DEFINER SET search_path = {search_path};",
        # Appending is for the runtime role (`db_roles` grants it), not for every role that can connect.
        f"REVOKE EXECUTE ON FUNCTION {APPEND_SIGNATURE} FROM PUBLIC;",
        f"REVOKE EXECUTE ON FUNCTION {CHECKPOINT_SIGNATURE} FROM PUBLIC;",
        PRIVILEGES_LOCK,
        "SELECT audit_ledger_privileges_lock();",
    ]
    for statement in statements:
        schema_editor.execute(statement, params=None)


def reverse(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    statements = [
        "DROP FUNCTION IF EXISTS audit_ledger_privileges_lock();",
        f"DROP FUNCTION IF EXISTS {CHECKPOINT_SIGNATURE};",
        f"ALTER FUNCTION {APPEND_SIGNATURE} SECURITY INVOKER RESET search_path;",
        f"GRANT EXECUTE ON FUNCTION {APPEND_SIGNATURE} TO PUBLIC;",
        REFUSE_TRUNCATE_WITH_SETTING,
    ]
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_action_without_choices")]
    operations = [
        migrations.AddField(
            model_name="auditcheckpoint", name="segment_start", field=models.BigIntegerField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="auditcheckpoint", name="segment_hashes", field=models.TextField(blank=True, default="")
        ),
        migrations.RunPython(forward, reverse),
    ]
