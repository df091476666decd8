"""The ledger survives its own application role (issue 8): the app runs as a runtime role that owns nothing and
may only read the ledger and append to it through `audit_append()`; migrations run as the owner role.

A database of its own is built for this module, the way an installation is: `manage.py db_roles` as a superuser,
then `manage.py migrate` with DATABASE_URL naming the runtime role and MIGRATION_DATABASE_URL the owner. The app
then runs as the runtime role in a separate process, and the attacks connect as that role with psycopg. Role and
database names carry the test database's name, so parallel runs on one cluster never collide; all are dropped
afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

LEDGER_LOCK_KEY = 0x0C1A_A0D1  # clinaiops.audit.services: the advisory lock that serialises appends

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles exist on PostgreSQL"),
    # Every test here is a database test, so pytest-django (which runs database tests before the others) keeps the
    # module together and the module's installation is built once, not once per group.
    pytest.mark.django_db,
]

APP_AS_RUNTIME = """
import json
from django.db import connection, transaction
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.audit.verify import ledger_verify
from clinaiops.core.models import User

with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    role = cursor.fetchone()[0]
user = User.objects.create_user(username="runtime-probe", password="a-long-enough-password")
for i in range(25):
    with transaction.atomic():
        audit_record(action=AuditAction.EXPORT_CREATED, object_type="probe", object_id=i, actor=user)
checkpoint = audit_checkpoint_create()
result = ledger_verify()
print(json.dumps({"role": role, "checkpoint": checkpoint.seq, "ok": result.ok, "events": result.events_checked,
                  "checkpoints": result.checkpoints_checked, "witness": result.witness_entries}))
"""


@dataclass(frozen=True)
class RolesDatabase:
    name: str
    owner: str
    runtime: str
    superuser: str
    host: str
    port: int
    artifacts: Path

    def url(self, role: str, name: str | None = None) -> str:
        return f"postgres://{role}@{self.host}:{self.port}/{name or self.name}"

    def connect(self, role: str, name: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(
            dbname=name or self.name, user=role, host=self.host, port=self.port, autocommit=True, connect_timeout=10
        )

    def manage(self, *args: str, role: str, name: str | None = None, artifacts: Path | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test",
            "DATABASE_URL": self.url(role, name),
            "ARTIFACT_ROOT": str(artifacts or self.artifacts),
            "CELERY_TASK_ALWAYS_EAGER": "1",
            **env,
        }
        if "MIGRATION_DATABASE_URL" not in env:
            environment.pop("MIGRATION_DATABASE_URL", None)
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip


def _drop(admin: Any, db: RolesDatabase, *databases: str) -> None:
    for name in (*databases, db.name):
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for role in (db.runtime, db.owner):
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@dataclass(frozen=True)
class Installation:
    db: RolesDatabase
    first_roles: str
    migrate: str
    second_roles: str
    app: dict[str, Any]


@pytest.fixture(scope="module")
def installation(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    settings_dict = connection.settings_dict
    base = str(settings_dict["NAME"])
    db = RolesDatabase(
        name=f"{base}_roles", owner=f"{base}_owner", runtime=f"{base}_runtime",
        superuser=str(settings_dict.get("USER") or "postgres"), host=str(settings_dict.get("HOST") or "127.0.0.1"),
        port=int(settings_dict.get("PORT") or 5432), artifacts=tmp_path_factory.mktemp("roles-artifacts"),
    )  # fmt: skip
    admin = db.connect(db.superuser, "postgres")
    clones = [f"{db.name}_cut"]
    try:
        _drop(admin, db, *clones)  # what an interrupted earlier run left
        admin.execute(f'CREATE DATABASE "{db.name}"')
        first = db.manage("db_roles", "--owner", db.owner, "--runtime", db.runtime, role=db.superuser)
        assert first.returncode == 0, first.stderr
        migrate = db.manage(
            "migrate", "--no-input", role=db.runtime, MIGRATION_DATABASE_URL=db.url(db.owner)
        )  # the app's URL is the runtime role; migrate switches to the owner
        assert migrate.returncode == 0, migrate.stderr
        second = db.manage("db_roles", "--owner", db.owner, "--runtime", db.runtime, role=db.superuser)
        assert second.returncode == 0, second.stderr
        app = db.manage("shell", "-c", APP_AS_RUNTIME, role=db.runtime, AUDIT_CHECKPOINT_EVERY="10")
        assert app.returncode == 0, app.stderr
        yield Installation(db, first.stdout, migrate.stdout, second.stdout, json.loads(app.stdout.splitlines()[-1]))
    finally:
        _drop(admin, db, *clones)
        admin.close()


def test_db_roles_makes_both_roles_and_a_second_run_changes_nothing(installation: Installation) -> None:
    db = installation.db
    assert f"- created role {db.owner}" in installation.first_roles
    assert f"- created role {db.runtime}" in installation.first_roles
    assert f"tables {db.owner} creates in public from now on grant DELETE, INSERT, SELECT, UPDATE" in (
        installation.first_roles
    )
    # After migrate, the second run found the ledger tables carrying only SELECT for the runtime role (migration
    # 0005 had taken the default privileges back), so it had nothing left to do.
    assert installation.second_roles.startswith("0 changes."), installation.second_roles
    assert "ledger privileges SELECT, appends through audit_append(): yes" in installation.second_roles


def test_migrate_ran_as_the_owner_and_the_runtime_role_owns_nothing(installation: Installation) -> None:
    db = installation.db
    assert f"Migrating as the owner role {db.owner}" in installation.migrate
    with db.connect(db.superuser) as admin:
        owners = dict(
            admin.execute(
                "SELECT pg_get_userbyid(c.relowner), count(*) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' GROUP BY 1"
            ).fetchall()
        )
        definer = admin.execute(
            "SELECT pg_get_userbyid(proowner), prosecdef, proconfig FROM pg_proc WHERE proname = 'audit_append'"
        ).fetchone()
        runtime = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s", [db.runtime]
        ).fetchone()
    assert set(owners) == {db.owner} and owners[db.owner] > 40  # every table, index and sequence
    assert definer == (db.owner, True, ["search_path=public, pg_temp"])
    assert runtime == (False, False, False, False)


def test_the_app_runs_as_the_runtime_role_and_appends_events_and_checkpoints(installation: Installation) -> None:
    # 25 events, checkpoints after the commits of seq 10 and 20 (each with its own event) and one on demand.
    assert installation.app == {
        "role": installation.db.runtime, "checkpoint": 27, "ok": True, "events": 28, "checkpoints": 3, "witness": 3,
    }  # fmt: skip


def test_the_runtime_role_has_only_select_on_the_ledger_and_the_rest_it_needs(installation: Installation) -> None:
    db = installation.db
    with db.connect(db.runtime) as runtime:
        privileges = {
            (table, privilege): runtime.execute("SELECT has_table_privilege(%s, %s)", [table, privilege]).fetchone()[0]
            for table in ("audit_auditevent", "audit_auditcheckpoint", "care_reading", "core_user")
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
        }
        tables_without_writes = runtime.execute(
            "SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
            "AND c.relname NOT LIKE 'audit\\_%%' AND NOT (has_table_privilege(c.oid, 'INSERT') AND "
            "has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))"
        ).fetchone()[0]
    for table in ("audit_auditevent", "audit_auditcheckpoint"):
        held = {p for (t, p), has in privileges.items() if t == table and has}
        assert held == {"SELECT"}, (table, held)
    for table in ("care_reading", "core_user"):
        held = {p for (t, p), has in privileges.items() if t == table and has}
        assert held == {"SELECT", "INSERT", "UPDATE", "DELETE"}, (table, held)
    assert tables_without_writes == 0  # default privileges reached every table migrate created


ATTACKS = {
    "the old truncate switch": [
        "SET clinaiops.allow_ledger_truncate = on",
        "TRUNCATE audit_auditevent, audit_auditcheckpoint",
    ],
    "truncate": ["TRUNCATE audit_auditevent CASCADE"],
    "disable the trigger": ["ALTER TABLE audit_auditevent DISABLE TRIGGER USER"],
    "drop the trigger": ["DROP TRIGGER audit_auditevent_append_only ON audit_auditevent"],
    "suspend every trigger for the session": ["SET session_replication_role = replica"],
    "delete the tail": ["DELETE FROM audit_auditevent WHERE seq > 12"],
    "delete the tail's checkpoints": ["DELETE FROM audit_auditcheckpoint WHERE seq > 12"],
    "edit an event": ["UPDATE audit_auditevent SET payload = '{}' WHERE seq = 5"],
    "insert an event directly": [
        "INSERT INTO audit_auditevent (seq, recorded_at, actor_role, action, object_type, object_id, outcome, "
        "request_id, payload, prev_hash, hash) VALUES (99, now(), 'system', 'x', 'x', '', 'success', '', '{}', "
        "repeat('0', 64), repeat('0', 64))"
    ],
    "insert a checkpoint directly": [
        "INSERT INTO audit_auditcheckpoint (seq, head_hash, event_count, created_at, key_id, signature, reason, "
        "segment_hashes) VALUES (28, repeat('0', 64), 28, now(), 'k', 's', 'x', '')"
    ],
    "a checkpoint over a head that is not the ledger's": [
        "SELECT audit_checkpoint_append(28, repeat('0', 64), 28, now(), 'k', 's', 'x', NULL, '')"
    ],
    "make audit_append run as the caller": [
        "ALTER FUNCTION audit_append(bigint, bigint, varchar, varchar, varchar, varchar, varchar, varchar, inet, "
        "text) SECURITY INVOKER"
    ],
    "replace the refusal trigger's function": [
        "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$ BEGIN RETURN OLD; END $$ "
        "LANGUAGE plpgsql"
    ],
    "drop the ledger": ["DROP TABLE audit_auditevent CASCADE"],
    "create a table of its own": ["CREATE TABLE ledger_copy (id int)"],
    "unlock the ledger's privileges": ["SELECT audit_ledger_privileges_lock()"],
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_runtime_role_cannot_erase_edit_or_unprotect_the_ledger(installation: Installation, attack: str) -> None:
    import psycopg

    db = installation.db
    with db.connect(db.runtime) as runtime:
        before = runtime.execute(
            "SELECT (SELECT count(*) FROM audit_auditevent), (SELECT count(*) FROM audit_auditcheckpoint),"
            " (SELECT max(hash) FROM audit_auditevent)"
        ).fetchone()
        *setup, statement = ATTACKS[attack]
        with pytest.raises(psycopg.Error) as refused, runtime.transaction():
            for step in setup:
                runtime.execute(step)
            runtime.execute(statement)
        # Refused for want of privilege (or, for the forged head, by the function's check), not merely failed.
        assert refused.value.sqlstate in {"42501", "23514"}, refused.value
        after = runtime.execute(
            "SELECT (SELECT count(*) FROM audit_auditevent), (SELECT count(*) FROM audit_auditcheckpoint),"
            " (SELECT max(hash) FROM audit_auditevent)"
        ).fetchone()
    assert after == before


def test_the_runtime_role_cannot_grant_itself_more(installation: Installation) -> None:
    db = installation.db
    with db.connect(db.runtime) as runtime:
        runtime.execute("GRANT DELETE, TRUNCATE ON audit_auditevent TO CURRENT_USER")  # only a warning: no grant option
        gained = runtime.execute(
            "SELECT has_table_privilege('audit_auditevent', 'DELETE') OR has_table_privilege('audit_auditevent', "
            "'TRUNCATE')"
        ).fetchone()[0]
    assert gained is False


def test_a_temporary_table_cannot_stand_in_for_the_ledger_in_audit_append(installation: Installation) -> None:
    # pg_temp comes first on an unpinned search_path: audit_append() pins it last, so it writes the real ledger.
    db = installation.db
    with db.connect(db.runtime) as runtime:
        runtime.execute("CREATE TEMP TABLE audit_auditevent (LIKE public.audit_auditevent INCLUDING DEFAULTS)")
        row = runtime.execute(
            "SELECT event_seq FROM audit_append(%s, NULL, 'system', 'probe', 'probe', '', 'success', '', NULL, "
            '\'{"system_reason":"probe"}\')',
            [LEDGER_LOCK_KEY],
        ).fetchone()
        in_temp = runtime.execute("SELECT count(*) FROM pg_temp.audit_auditevent").fetchone()[0]
        in_ledger = runtime.execute("SELECT count(*) FROM public.audit_auditevent WHERE seq = %s", [row[0]]).fetchone()
    assert (in_temp, in_ledger[0]) == (0, 1)


def test_the_owner_can_switch_triggers_off_and_cut_the_tail_but_the_witness_catches_it(
    installation: Installation, tmp_path: Path
) -> None:
    # The owner role is not the app's (its credentials belong to the deploy job); what it can still do is caught.
    db = installation.db
    clone, artifacts = f"{db.name}_cut", tmp_path / "artifacts"
    shutil.copytree(db.artifacts, artifacts)
    with db.connect(db.superuser, "postgres") as admin:
        admin.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{db.name}"')
    with db.connect(db.owner, clone) as owner:
        owner.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        owner.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")
        owner.execute("DELETE FROM audit_auditcheckpoint WHERE seq > 12")
        owner.execute("DELETE FROM audit_auditevent WHERE seq > 12")
    verify = db.manage("audit_verify", role=db.runtime, name=clone, artifacts=artifacts)
    assert verify.returncode == 1
    assert "audit ledger BROKEN at seq 13: truncation" in verify.stderr
    assert "Traceback" not in verify.stderr


def test_the_deploy_check_warns_when_the_app_connects_with_a_role_that_can_change_the_ledger(
    installation: Installation, db: None
) -> None:
    from clinaiops.audit.checks import ledger_role_check

    # The suite connects as a superuser, which owns the ledger: exactly what production must not do.
    warnings = ledger_role_check(databases=["default"])
    assert [w.id for w in warnings] == ["audit.W001"]
    assert "is a superuser and owns the ledger tables" in warnings[0].msg
    db_ = installation.db
    runtime = db_.manage("check", "--deploy", "--database", "default", role=db_.runtime)
    assert runtime.returncode == 0, runtime.stderr
    assert "audit.W001" not in runtime.stdout + runtime.stderr
