"""Deploy check: the app's own database role must not be able to switch the ledger's protection off.

`manage.py check --deploy --database default` warns (audit.W001) when DATABASE_URL names a superuser, the owner of
the ledger tables, or a role that may change or empty them: then the triggers and the append-only privileges
protect nothing against the app's credentials (docs/security.md "Database roles"). It is tagged `database`, so
it queries only when asked to, never during `migrate` (which runs as the owner on purpose).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import connections


@register(Tags.database, deploy=True)
def ledger_role_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
            " pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = to_regclass('audit_auditevent')),"
            " 'USAGE'),"
            # The events and each of their monthly partitions (migration 0006): INSERT on one partition is enough
            # to write around audit_append().
            " EXISTS (SELECT 1 FROM (SELECT 'audit_auditevent'::regclass::oid UNION ALL SELECT inhrelid"
            " FROM pg_inherits WHERE inhparent = 'audit_auditevent'::regclass) AS ledger(relid),"
            " unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)"
            " WHERE has_table_privilege(ledger.relid, p.privilege))"
            " WHERE to_regclass('audit_auditevent') IS NOT NULL"
        )
        row = cursor.fetchone()
    if row is None:
        return []
    role, superuser, owner, writes = row
    problems = [p for p, held in (("is a superuser", superuser), ("owns the ledger tables", owner),
                                  ("may write to them directly", writes)) if held]  # fmt: skip
    if not problems:
        return []
    return [
        CheckWarning(
            f"The app's database role {role} {' and '.join(problems)}: the app's own credentials could erase or "
            "rewrite the audit ledger.",
            hint="Run `manage.py db_roles --owner … --runtime …` as a superuser and point DATABASE_URL at the runtime "
            "role (MIGRATION_DATABASE_URL at the owner); see docs/security.md.",
            id="audit.W001",
        )
    ]
