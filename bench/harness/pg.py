"""The bench's own PostgreSQL databases. Every name starts with `clinaiops_bench_` and nothing here touches a
database without that prefix: the bench can create, copy and drop only what it made."""

from __future__ import annotations

import os
import re

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PREFIX = "clinaiops_bench_"
_NAME = re.compile(r"^clinaiops_bench_[a-z0-9_]{1,40}$")


class NotABenchDatabase(ValueError):
    pass


def _guard(name: str) -> str:
    if not _NAME.match(name):
        raise NotABenchDatabase(f"refusing to touch {name!r}: bench databases are named {PREFIX}…")
    return name


def db_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + _guard(name)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def server_reachable() -> bool:
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def db_exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_guard(name)]).fetchone() is not None


def db_list(prefix: str) -> list[str]:
    if not prefix.startswith(PREFIX):
        raise NotABenchDatabase(prefix)
    with _admin() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"]).fetchall()
    return sorted(str(row[0]) for row in rows)


def db_create(name: str, *, template: str | None = None) -> str:
    """Create `name` (empty, or a copy of `template`, which PostgreSQL copies file by file in seconds)."""
    with _admin() as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_guard(name))))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(_guard(name)), sql.Identifier(_guard(template))
                )
            )
    return db_url(name)


def db_drop(name: str) -> None:
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_guard(name))))


def db_rename(old: str, new: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(_guard(old)), sql.Identifier(_guard(new)))
        )
