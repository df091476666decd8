"""The two PostgreSQL roles of an installation (issue 8, docs/security.md "Database roles").

- The **owner** owns the schema objects and runs the migrations (`manage.py migrate` connects with
  MIGRATION_DATABASE_URL). Its credentials belong to the deploy job, not to the app servers.
- The **runtime** role is what DATABASE_URL names for the web and the workers. It owns nothing, cannot create
  anything, has SELECT, INSERT, UPDATE and DELETE on the application tables (default privileges carry them to
  the tables later migrations create) and only SELECT on the ledger tables: it appends events and checkpoints
  through the SECURITY DEFINER functions `audit_append()` and `audit_checkpoint_append()`, and has no UPDATE,
  DELETE, TRUNCATE, TRIGGER or ownership there, so it can neither change the ledger nor switch its triggers off.
  The events' monthly partitions (migration 0006) count as ledger tables: SELECT only, and the coming months are
  made by the SECURITY DEFINER `audit_auditevent_partitions_ensure()`, which it may call.

`database_roles_ensure` makes both on the connected database and repairs what differs, so running it twice
changes nothing the second time. It must run as a superuser (or a role with CREATEROLE that may grant on the
database), typically once before the first `migrate` and again after adopting an existing installation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import environ
from django.conf import settings
from django.db import connection, connections, transaction

LEDGER_TABLES = ("audit_auditevent", "audit_auditcheckpoint")
# The append functions (migrations 0003 and 0005), by signature.
LEDGER_APPEND_FUNCTIONS = (
    "audit_append(bigint, bigint, varchar, varchar, varchar, varchar, varchar, varchar, inet, text)",
    "audit_checkpoint_append(bigint, varchar, bigint, timestamptz, varchar, varchar, varchar, bigint, text)",
)
# Every SECURITY DEFINER function the runtime role may execute: the appends, and the one that makes the coming
# months' partitions of the events (migration 0006; a daily beat task calls it).
LEDGER_FUNCTIONS = (*LEDGER_APPEND_FUNCTIONS, "audit_auditevent_partitions_ensure(integer)")
# The other SECURITY DEFINER function it may execute: the coming months of the readings (care migration 0009).
# Named, not imported: the ledger imports nothing above the kernel.
RUNTIME_FUNCTIONS = (*LEDGER_FUNCTIONS, "care_reading_partitions_ensure(integer)")
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
_FORBIDDEN_ON_LEDGER = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


class RolesRefused(RuntimeError):
    """The roles cannot be made safe as asked (for example a superuser named as the runtime role)."""


@dataclass(frozen=True)
class RuntimeRoleStatus:
    """What the runtime role can do, read from the catalog. `safe` is the property the ledger relies on."""

    role: str
    superuser: bool
    owned_objects: int
    ledger_privileges: tuple[str, ...]  # privileges it holds on the ledger tables and any of their partitions
    can_append: bool  # EXECUTE on audit_append() and audit_checkpoint_append()
    member_of_owner: bool
    # EXECUTE on audit_auditevent_partitions_ensure() and care_reading_partitions_ensure() (False before they exist)
    can_ensure_partitions: bool = False

    @property
    def safe(self) -> bool:
        return (
            not self.superuser
            and self.owned_objects == 0
            and set(self.ledger_privileges) <= {"SELECT"}
            and not self.member_of_owner
        )


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677). Sent instead of the password,
    so the plain text never reaches the server's statement log."""
    if not password.isascii() or not password.isprintable():
        # PostgreSQL SASLprep-normalises other passwords before hashing; printable ASCII needs no normalising.
        raise RolesRefused("use a printable ASCII password")
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _name(role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise RolesRefused(f"{role!r} is not a plain role name (lower-case letters, digits and _)")
    return connection.ops.quote_name(role)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Catalog:
    """Reads and changes on one cursor, each change remembered as a sentence for the operator."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.done: list[str] = []

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql, params or [])
        return list(self.cursor.fetchall())

    def value(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def change(self, sql: str, what: str) -> None:
        self.cursor.execute(sql)
        self.done.append(what)


def _role_ensure(catalog: _Catalog, role: str, password: str | None) -> None:
    quoted = _name(role)
    attributes = catalog.rows(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles "
        "WHERE rolname = %s",
        [role],
    )
    secret = f" PASSWORD {_literal(scram_sha256_verifier(password))}" if password else ""
    if not attributes:
        catalog.change(
            f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS{secret}",
            f"created role {role}" + (" with a password" if password else ""),
        )
        return
    superuser, createdb, createrole, replication, bypassrls, login = attributes[0]
    if superuser:
        raise RolesRefused(f"{role} is a superuser, which passes every protection: name another role")
    wrong = [
        name for name, held in (("CREATEDB", createdb), ("CREATEROLE", createrole), ("REPLICATION", replication),
                                ("BYPASSRLS", bypassrls)) if held
    ]  # fmt: skip
    if wrong or not login:
        clauses = " ".join([f"NO{name}" for name in wrong] + ([] if login else ["LOGIN"]))
        catalog.change(f"ALTER ROLE {quoted} {clauses}", f"set {clauses} on role {role}")
    if password:
        catalog.change(f"ALTER ROLE {quoted}{secret}", f"set the password of role {role}")


def _explicit_privileges(catalog: _Catalog, acl_sql: str, params: list[Any], role: str) -> set[str]:
    """Privileges granted to `role` by name in the ACL that `acl_sql` selects (one aclitem[] value)."""
    rows = catalog.rows(
        f"SELECT a.privilege_type FROM ({acl_sql}) s(acl) CROSS JOIN LATERAL aclexplode(s.acl) a "  # noqa: S608
        "WHERE a.grantee = %s::regrole",
        [*params, role],
    )
    return {row[0] for row in rows}


def _ownership_ensure(catalog: _Catalog, owner: str, runtime: str, schema: str) -> None:
    """The owner owns every object of the schema, and the runtime role owns nothing in the database."""
    quoted_owner, quoted_schema = _name(owner), connection.ops.quote_name(schema)
    database = catalog.value("SELECT current_database()")
    if catalog.value("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()") == runtime:
        catalog.change(
            f"ALTER DATABASE {connection.ops.quote_name(database)} OWNER TO {quoted_owner}",
            f"database {database} now belongs to {owner}, not to {runtime}",
        )
    if catalog.value("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", [schema]) == runtime:
        catalog.change(
            f"ALTER SCHEMA {quoted_schema} OWNER TO {quoted_owner}", f"schema {schema} now belongs to {owner}"
        )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE"}
    relations = catalog.rows(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner <> %s::regrole "
        # A sequence that belongs to a column (identity, serial) follows its table.
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass "
        "                AND d.deptype IN ('a', 'i', 'e')) "
        "ORDER BY c.relname",
        [schema, owner],
    )
    for name, kind in relations:
        catalog.cursor.execute(
            f"ALTER {kinds[kind]} {quoted_schema}.{connection.ops.quote_name(name)} OWNER TO {quoted_owner}"
        )
    if relations:
        catalog.done.append(f"{len(relations)} tables, views and sequences in {schema} now belong to {owner}")
    routines = catalog.rows(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s AND p.proowner <> %s::regrole AND NOT EXISTS "
        "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e') "
        "ORDER BY 1",
        [schema, owner],
    )
    for (signature,) in routines:
        catalog.cursor.execute(f"ALTER ROUTINE {signature} OWNER TO {quoted_owner}")
    if routines:
        catalog.done.append(f"{len(routines)} functions in {schema} now belong to {owner}")
    owned_elsewhere = catalog.value(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = %s::regrole)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = %s::regrole)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = %s::regrole)",
        [runtime, runtime, runtime],
    )
    if owned_elsewhere:
        catalog.change(
            f"REASSIGN OWNED BY {_name(runtime)} TO {quoted_owner}",
            f"{owned_elsewhere} other objects of {runtime} in {database} now belong to {owner}",
        )


def _membership_ensure(catalog: _Catalog, owner: str, runtime: str) -> None:
    if not catalog.value("SELECT pg_has_role(%s, %s, 'USAGE')", [runtime, owner]):
        return
    direct = catalog.value(
        "SELECT 1 FROM pg_auth_members WHERE roleid = %s::regrole AND member = %s::regrole", [owner, runtime]
    )
    if direct:
        catalog.change(f"REVOKE {_name(owner)} FROM {_name(runtime)}", f"{runtime} is no longer a member of {owner}")
    if catalog.value("SELECT pg_has_role(%s, %s, 'USAGE')", [runtime, owner]):
        raise RolesRefused(f"{runtime} still acts as {owner} through another role it belongs to: remove that first")


def _grants_ensure(catalog: _Catalog, owner: str, runtime: str, schema: str) -> None:
    quoted_owner, quoted_runtime, quoted_schema = _name(owner), _name(runtime), connection.ops.quote_name(schema)
    database = catalog.value("SELECT current_database()")
    database_acl = "SELECT datacl FROM pg_database WHERE datname = current_database()"
    for role, quoted in ((owner, quoted_owner), (runtime, quoted_runtime)):
        missing = {"CONNECT", "TEMPORARY"} - _explicit_privileges(catalog, database_acl, [], role)
        if missing:
            listed = ", ".join(sorted(missing))
            catalog.change(
                f"GRANT {listed} ON DATABASE {connection.ops.quote_name(database)} TO {quoted}",
                f"granted {listed} on database {database} to {role}",
            )
    schema_acl = "SELECT nspacl FROM pg_namespace WHERE nspname = %s"
    missing = {"USAGE", "CREATE"} - _explicit_privileges(catalog, schema_acl, [schema], owner)
    if missing:
        listed = ", ".join(sorted(missing))
        catalog.change(
            f"GRANT {listed} ON SCHEMA {quoted_schema} TO {quoted_owner}",
            f"granted {listed} on schema {schema} to {owner}",
        )
    if "USAGE" not in _explicit_privileges(catalog, schema_acl, [schema], runtime):
        catalog.change(
            f"GRANT USAGE ON SCHEMA {quoted_schema} TO {quoted_runtime}",
            f"granted USAGE on schema {schema} to {runtime}",
        )
    if catalog.value("SELECT has_schema_privilege(%s, %s, 'CREATE')", [runtime, schema]):
        # PostgreSQL before 15 let PUBLIC create in the public schema; the runtime role must not create anything.
        catalog.cursor.execute(f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM PUBLIC")
        catalog.cursor.execute(f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM {quoted_runtime}")
        catalog.done.append(f"{runtime} (and PUBLIC) can no longer create objects in schema {schema}")
        if catalog.value("SELECT has_schema_privilege(%s, %s, 'CREATE')", [runtime, schema]):
            raise RolesRefused(f"{runtime} can still create objects in {schema}: check the roles it belongs to")

    # Default privileges: what the owner's later migrations create, the runtime role may use. The ledger tables
    # get them too when they are created; migration 0005 and the lock below take them back.
    wanted = {
        "r": ("TABLES", set(_TABLE_PRIVILEGES)),
        "S": ("SEQUENCES", {"USAGE", "SELECT"}),
        "f": ("FUNCTIONS", {"EXECUTE"}),
    }
    default_acl = (
        "SELECT defaclacl FROM pg_default_acl WHERE defaclrole = %s::regrole AND defaclnamespace = %s::regnamespace "
        "AND defaclobjtype = %s"
    )
    for objtype, (plural, privileges) in wanted.items():
        missing = privileges - _explicit_privileges(catalog, default_acl, [owner, schema, objtype], runtime)
        if missing:
            listed = ", ".join(sorted(missing))
            catalog.change(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {quoted_owner} IN SCHEMA {quoted_schema} "
                f"GRANT {listed} ON {plural} TO {quoted_runtime}",
                f"{plural.lower()} {owner} creates in {schema} from now on grant {listed} to {runtime}",
            )

    # Existing objects (the ledger's partitions are ledger tables, not application tables).
    tables = catalog.rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT (c.relname = ANY(%s)) AND NOT ("
        "has_table_privilege(%s, c.oid, 'SELECT') AND has_table_privilege(%s, c.oid, 'INSERT') AND "
        "has_table_privilege(%s, c.oid, 'UPDATE') AND has_table_privilege(%s, c.oid, 'DELETE')) ORDER BY 1",
        [schema, _ledger_relations(catalog, schema), runtime, runtime, runtime, runtime],
    )
    for (table,) in tables:
        catalog.cursor.execute(
            f"GRANT {', '.join(_TABLE_PRIVILEGES)} ON TABLE {quoted_schema}.{connection.ops.quote_name(table)} "
            f"TO {quoted_runtime}"
        )
    if tables:
        catalog.done.append(f"granted {', '.join(_TABLE_PRIVILEGES)} on {len(tables)} application tables to {runtime}")
    sequences = catalog.rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
        "AND c.relkind = 'S' AND NOT (has_sequence_privilege(%s, c.oid, 'USAGE') "
        "AND has_sequence_privilege(%s, c.oid, 'SELECT')) ORDER BY 1",
        [schema, runtime, runtime],
    )
    for (sequence,) in sequences:
        catalog.cursor.execute(
            f"GRANT USAGE, SELECT ON SEQUENCE {quoted_schema}.{connection.ops.quote_name(sequence)} TO {quoted_runtime}"
        )
    if sequences:
        catalog.done.append(f"granted USAGE, SELECT on {len(sequences)} sequences to {runtime}")


_LEDGER_RELATIONS = (
    # The ledger tables of `schema` and, recursively, their partitions (migration 0006 partitions the events by month).
    "WITH RECURSIVE ledger(relid) AS ("
    " SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = ANY(%s)"
    " UNION SELECT i.inhrelid FROM pg_inherits i JOIN ledger l ON i.inhparent = l.relid"
    ") SELECT c.relname FROM ledger l JOIN pg_class c ON c.oid = l.relid ORDER BY c.relname"
)


def _ledger_relations(catalog: _Catalog, schema: str) -> list[str]:
    """The ledger tables that exist in `schema`, with every partition attached to them."""
    return [str(row[0]) for row in catalog.rows(_LEDGER_RELATIONS, [schema, list(LEDGER_TABLES)])]


def _ledger_ensure(catalog: _Catalog, runtime: str, schema: str) -> None:
    quoted_runtime, quoted_schema = _name(runtime), connection.ops.quote_name(schema)
    present = _ledger_relations(catalog, schema)
    if not present:
        catalog.done.append("the ledger tables do not exist yet: `migrate`, run as the owner, locks them")
        return
    before = _ledger_privileges(catalog, runtime, schema)
    if catalog.value("SELECT to_regprocedure(%s)", [f"{schema}.audit_ledger_privileges_lock()"]) is not None:
        catalog.cursor.execute(f"SELECT {quoted_schema}.audit_ledger_privileges_lock()")
    else:  # before migration 0005: the same revocation, for the runtime role and PUBLIC
        for table in present:
            target = f"{quoted_schema}.{connection.ops.quote_name(table)}"
            forbidden = ", ".join(_FORBIDDEN_ON_LEDGER)
            catalog.cursor.execute(f"REVOKE {forbidden} ON TABLE {target} FROM PUBLIC, {quoted_runtime}")
    for table in present:
        target = f"{quoted_schema}.{connection.ops.quote_name(table)}"
        catalog.cursor.execute(f"GRANT SELECT ON TABLE {target} TO {quoted_runtime}")
    after = _ledger_privileges(catalog, runtime, schema)
    if before != after:
        taken = ", ".join(sorted(set(before) - set(after))) or "nothing"
        catalog.done.append(f"on the ledger tables {runtime} now has only SELECT (taken away: {taken})")
    for function in RUNTIME_FUNCTIONS:
        qualified = f"{schema}.{function}"
        if catalog.value("SELECT to_regprocedure(%s)", [qualified]) is None:
            continue
        name = function.split("(")[0]
        if not catalog.value("SELECT has_function_privilege(%s, %s, 'EXECUTE')", [runtime, qualified]):
            catalog.change(
                f"GRANT EXECUTE ON FUNCTION {quoted_schema}.{function} TO {quoted_runtime}",
                f"{runtime} may call {name}()",
            )
        if catalog.value("SELECT has_function_privilege('public', %s, 'EXECUTE')", [qualified]):
            catalog.change(
                f"REVOKE EXECUTE ON FUNCTION {quoted_schema}.{function} FROM PUBLIC",
                f"roles other than {runtime} may no longer call {name}()",
            )


def _ledger_privileges(catalog: _Catalog, role: str, schema: str) -> tuple[str, ...]:
    """What `role` holds on the ledger tables and their partitions: INSERT on one partition would let it bypass
    audit_append(), so every partition counts."""
    held = set()
    for table in _ledger_relations(catalog, schema):
        qualified = f"{connection.ops.quote_name(schema)}.{connection.ops.quote_name(table)}"
        for privilege in ("SELECT", *_FORBIDDEN_ON_LEDGER):
            if catalog.value("SELECT has_table_privilege(%s, %s, %s)", [role, qualified, privilege]):
                held.add(privilege)
    return tuple(sorted(held))


def runtime_role_status(*, runtime: str, owner: str, schema: str = "public") -> RuntimeRoleStatus:
    """What `runtime` can do on the connected database."""
    with connection.cursor() as cursor:
        catalog = _Catalog(cursor)
        superuser = bool(catalog.value("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [runtime]))
        owned = int(
            catalog.value(
                "SELECT (SELECT count(*) FROM pg_class WHERE relowner = %s::regrole)"
                " + (SELECT count(*) FROM pg_proc WHERE proowner = %s::regrole)"
                " + (SELECT count(*) FROM pg_namespace WHERE nspowner = %s::regrole)"
                " + (SELECT count(*) FROM pg_database WHERE datdba = %s::regrole AND datname = current_database())",
                [runtime] * 4,
            )
        )

        def executes(function: str) -> bool:
            qualified = f"{schema}.{function}"
            return bool(
                catalog.value("SELECT to_regprocedure(%s) IS NOT NULL", [qualified])
                and catalog.value("SELECT has_function_privilege(%s, %s, 'EXECUTE')", [runtime, qualified])
            )

        member = bool(catalog.value("SELECT pg_has_role(%s, %s, 'USAGE')", [runtime, owner]))
        return RuntimeRoleStatus(
            role=runtime,
            superuser=superuser,
            owned_objects=owned,
            ledger_privileges=_ledger_privileges(catalog, runtime, schema),
            can_append=all(executes(f) for f in LEDGER_APPEND_FUNCTIONS),
            member_of_owner=member,
            can_ensure_partitions=all(executes(f) for f in RUNTIME_FUNCTIONS[len(LEDGER_APPEND_FUNCTIONS) :]),
        )


def database_roles_ensure(
    *, owner: str, runtime: str, owner_password: str | None = None, runtime_password: str | None = None
) -> list[str]:
    """Create or repair the owner and runtime roles on the connected PostgreSQL database (see the module
    docstring); return what was changed, one sentence each (empty when everything already held)."""
    if connection.vendor != "postgresql":
        raise RolesRefused("database roles exist on PostgreSQL only (the embedded SQLite default has none)")
    if owner == runtime:
        raise RolesRefused("the owner and the runtime role must be two different roles")
    _name(owner), _name(runtime)
    with transaction.atomic(), connection.cursor() as cursor:
        catalog = _Catalog(cursor)
        schema = catalog.value("SELECT current_schema()")
        if schema is None:
            raise RolesRefused("the connection has no current schema (check search_path)")
        _role_ensure(catalog, owner, owner_password)
        _role_ensure(catalog, runtime, runtime_password)
        _membership_ensure(catalog, owner, runtime)
        _ownership_ensure(catalog, owner, runtime, schema)
        _grants_ensure(catalog, owner, runtime, schema)
        _ledger_ensure(catalog, runtime, schema)
        done = catalog.done
    status = runtime_role_status(runtime=runtime, owner=owner, schema=schema)
    if not status.safe:
        raise RolesRefused(f"{runtime} is still not safe for the ledger: {status}")
    return done


@contextmanager
def database_connection_as(url: str, alias: str = "default") -> Iterator[str]:
    """Point connection `alias` at the role (and host) of database URL `url` for the duration, e.g. the owner role
    for `migrate`. The URL must name the same database. Yields the role's name."""
    target: dict[str, Any] = dict(environ.Env.db_url_config(url))
    wrapper = connections[alias]
    current = wrapper.settings_dict
    if target["ENGINE"] != current["ENGINE"] or target["NAME"] != current["NAME"]:
        raise RolesRefused(
            f"MIGRATION_DATABASE_URL names database {target['NAME']!r} but the connection uses {current['NAME']!r}"
        )
    keys = ("USER", "PASSWORD", "HOST", "PORT")
    saved = {key: current.get(key) for key in keys}
    wrapper.close()
    current.update({key: target.get(key) or "" for key in keys})
    try:
        yield str(target.get("USER") or "")
    finally:
        wrapper.close()
        current.update(saved)


@contextmanager
def owner_connection(alias: str = "default") -> Iterator[None]:
    """The owner role's connection for an operator command that changes the schema (`ledger_archive`, `partitions
    --split-default`), as `migrate` uses it: MIGRATION_DATABASE_URL when it is set, else the connection as it is
    (whose role the command's own check then accepts or refuses)."""
    url = settings.MIGRATION_DATABASE_URL
    if not url:
        yield
        return
    with database_connection_as(url, alias):
        yield
