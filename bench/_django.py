"""Sets up Django against the bench's own PostgreSQL database for the benchmarks.

bench/run.py gives each bench a database of its own in BENCH_DATABASE_URL (named clinaiops_bench_…, dropped
afterwards). Run alone, a bench uses clinaiops_bench_adhoc. Either way the database is created when it does not
exist, and nothing here touches a database whose name lacks the bench prefix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinaiops_bench_adhoc")


def django_setup(fresh: bool = True) -> None:
    """fresh: drop and recreate the bench database first; otherwise create it only when it is missing."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["DATABASE_URL"] = BENCH_DATABASE
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinaiops.settings.test")
    if BENCH_DATABASE.startswith("postgres"):
        from harness import pg

        name = BENCH_DATABASE.rsplit("/", 1)[1]
        if fresh:
            pg.db_drop(name)
        if not pg.db_exists(name):
            pg.db_create(name)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
