"""The ledger's append through pgbouncer in transaction mode (issue 13, docs/scaling.md "Connection pooling").

Starts a private pgbouncer (Debian's package: `apt-get install pgbouncer`; nothing is configured system-wide) on a
spare loopback port, `pool_mode = transaction`, in front of a scratch database of its own
(clinaiops_bench_pgb_<pid>, migrated here and dropped at the end). Then:

1. appends through pgbouncer from several processes at once, more clients than server connections, so that
   consecutive transactions of one client land on different server connections (what transaction mode does), with
   `audit_record` as the services call it (the PL/pgSQL `audit_append()` under `pg_advisory_xact_lock`, executed
   with psycopg's `prepare=True`);
2. verifies the chain directly against PostgreSQL (`ledger_verify`, the `audit_verify` code path): no fork, no
   gap, every event counted;
3. times the same appends directly against PostgreSQL in the same run (the baseline);
4. appends through pgbouncer once more with psycopg's prepared statements switched on (`prepare_threshold = 1`):
   Django's psycopg backend sets `prepare_threshold = None`, which makes the ledger's `prepare=True` a no-op, so
   as shipped nothing is prepared; this shows what turning it on would do through a pgbouncer older than 1.21.

    python bench/pgbouncer_ledger.py [--clients 4] [--pool 2] [--appends 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import pg
from harness.server import ROOT, environment_for, free_port

_CHILD = r"""
import os, sys, time, django
django.setup()
from django.db import connection, transaction
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
n, prepared, errors = int(sys.argv[1]), sys.argv[2] == "prepared", {}
connection.ensure_connection()
began, ok = time.perf_counter(), 0
for i in range(n):
    try:
        if prepared:  # what prepare=True would do if Django's connection did not set prepare_threshold=None
            connection.ensure_connection()
            connection.connection.prepare_threshold = 1
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="bench", object_id=i, system_reason="bench")
        ok += 1
    except Exception as exc:  # reported, not fatal: what breaks through the pooler is the finding
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        errors[key] = errors.get(key, 0) + 1
        connection.close()
print({"ok": ok, "errors": errors, "seconds": time.perf_counter() - began})
"""


def _pgbouncer(work: Path, database: str, port: int, pool: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        sys.exit("pgbouncer is not installed (Debian: apt-get install pgbouncer); nothing measured")
    (work / "userlist.txt").write_text('"postgres" ""\n')
    (work / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{database} = host=127.0.0.1 port=5432 dbname={database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {work / 'userlist.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool}\nmax_client_conn = 100\n"
        f"logfile = {work / 'pgbouncer.log'}\npidfile = {work / 'pgbouncer.pid'}\n"
        # Django's psycopg backend sends the timeouts as a startup `options` (-c statement_timeout=…), which
        # transaction mode cannot honour; the run sets them to 0 and ignores what is left.
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    command = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root: its -u switches to the postgres account
        work.chmod(0o777)
        for path in work.iterdir():
            path.chmod(0o666)
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    if process.poll() is not None:
        sys.exit(f"pgbouncer did not start; see {work / 'pgbouncer.log'}")
    return process


def _append(
    url: str, clients: int, appends: int, env: dict[str, str], mode: str = "as-shipped"
) -> tuple[float, list[dict[str, object]]]:
    """events/s over all clients, from each child's own clock (Django's start-up is not counted)."""
    child_env = {**env, "DATABASE_URL": url}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(appends), mode],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=900)
        if child.returncode != 0:
            results.append({"ok": 0, "errors": {"process failed": 1}, "stderr": err[-1500:]})
            continue
        results.append(eval(out.strip().splitlines()[-1]))  # noqa: S307 - our own child's dict literal
    seconds = max(float(r.get("seconds", 0.0)) for r in results)  # type: ignore[arg-type]
    ok = sum(int(r["ok"]) for r in results)  # type: ignore[call-overload]
    return (ok / seconds if seconds else 0.0), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--appends", type=int, default=300, help="per client")
    args = parser.parse_args()
    database = f"clinaiops_bench_pgb_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="clinaiops-bench-pgb-"))
    env = environment_for("clinaiops.settings.test", {
        "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "60", "CELERY_TASK_ALWAYS_EAGER": "1",
        # Startup options are refused in transaction mode (docs/operations.md): the limits go on the role instead.
        "DATABASE_STATEMENT_TIMEOUT_MS": "0", "DATABASE_LOCK_TIMEOUT_MS": "0",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS": "0", "AUDIT_WITNESS_SINKS": "file",
        "CLINAIOPS_VAR_DIR": str(work / "var"), "AUDIT_KEY_DIR": str(work / "keys"),  # one signing key for all
    })  # fmt: skip
    pg.db_drop(database)
    pg.db_create(database)
    bouncer = None
    try:
        print(f"pgbouncer ledger check: {args.clients} clients × {args.appends} appends over {args.pool} server "
              f"connections (transaction mode); scratch database {database}; logs in {work}", flush=True)  # fmt: skip
        subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True,
                       env={**env, "DATABASE_URL": pg.db_url(database)}, timeout=900)  # fmt: skip
        version = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        port = free_port()
        bouncer = _pgbouncer(work, database, port, args.pool)
        through = f"postgres://postgres@127.0.0.1:{port}/{database}"
        rate_pgb, results_pgb = _append(through, args.clients, args.appends, env)
        rate_direct, results_direct = _append(pg.db_url(database), args.clients, args.appends, env)
        rate_prep, results_prep = _append(through, args.clients, args.appends, env, mode="prepared")
        verify = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from clinaiops.audit.verify import ledger_verify;"
             " r = ledger_verify(); print(f'ok={r.ok} events={r.events_checked} checkpoints={r.checkpoints_checked} '"
             "f'first_broken_seq={r.first_broken_seq} {r.kind} {r.problem}')"],
            cwd=ROOT, env={**env, "DATABASE_URL": pg.db_url(database)}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        print(f"  {version}")
        for name, rate, results in (("through pgbouncer", rate_pgb, results_pgb),
                                    ("direct", rate_direct, results_direct),
                                    ("pgbouncer, prepared", rate_prep, results_prep)):  # fmt: skip
            ok = sum(int(r["ok"]) for r in results)  # type: ignore[call-overload]
            errors: dict[str, int] = {}
            for r in results:
                for key, n in r["errors"].items():  # type: ignore[attr-defined]
                    errors[key] = errors.get(key, 0) + n
            print(f"  {name:18} {ok:5d} appended, {rate:7.1f} events/s; errors: {errors or 'none'}")
            for r in results:
                if "stderr" in r:
                    print("   ", r["stderr"])
        print(f"  ledger_verify (direct): {verify.stdout.strip() or verify.stderr[-800:]}")
        if rate_direct:
            print(f"  ratio through pgbouncer / direct: {rate_pgb / rate_direct:.2f}")
    finally:
        if bouncer is not None and bouncer.poll() is None:
            bouncer.send_signal(signal.SIGTERM)
            bouncer.wait(timeout=10)
        pg.db_drop(database)


if __name__ == "__main__":
    main()
