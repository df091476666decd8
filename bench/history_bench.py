"""History bench (issue 13): what a request costs as history grows.

One copy of the seed database per size (the seed holds ≈26k readings and ≈30k ledger events), each grown with
bulk SQL to its size: readings spread over every patient, older than the seed's own (so the clinical present is
the same at every size), and as many chained ledger events (one per reading, as ingest writes them). One gunicorn
with production settings per copy; then, in interleaved rounds so that a busy stretch of this shared machine hits
every size alike, one keep-alive connection times:

- sequential ingest (POST /api/v1/readings/), the review queue, the patient page, the audit page, the readings
  list, and a /metrics scrape (its database gauges must stay flat too);
- evaluation: the evaluation task run in a process of its own per copy, with its query count.

Each figure is printed against the same figure at the seed size, with the ratio (goal: flat ±20 %).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from harness import pg
from harness.load import sequential
from harness.report import Figure, figures_print, machine, results_write
from harness.server import ROOT, Gunicorn, environment_for

INGEST = "sequential ingest (POST /api/v1/readings/)"
EVALUATION = "evaluation (task, own process)"


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM care_reading), (SELECT count(*) FROM audit_auditevent)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


LEDGER_COLUMNS = (
    "seq", "recorded_at", "actor_id", "actor_role", "action", "object_type", "object_id", "outcome", "request_id",
    "ip", "payload", "prev_hash", "hash",
)  # fmt: skip


def grow(url: str, target: int) -> None:
    """Readings up to `target` with INSERT … SELECT (500k rows a statement), then the ledger rebuilt with as many
    events of older history under the seed's own (ledger_rebuild). Every copy goes through the rebuild, the
    seed's with no history added, so all sizes hold the same newest events and no checkpoints."""
    readings, _ = counts(url)
    missing = max(0, target - readings)
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT array_agg(id ORDER BY id), min(taken_at) - interval '1 day' FROM care_patient, "
            "(SELECT min(taken_at) FROM care_reading) AS r(taken_at) GROUP BY r.taken_at"
        ).fetchone()
        assert row is not None
        patients, oldest = row
        done = 0
        while done < missing:
            chunk = min(500_000, missing - done)
            # Every 4 hours per patient, going back from before the oldest seed reading: no natural-key clash.
            conn.execute(
                """
                INSERT INTO care_reading (patient_id, taken_at, systolic, diastolic, heart_rate, source, received_at,
                                          identifier, updated_at)
                SELECT c.pids[1 + g %% cardinality(c.pids)],
                       c.t0 - (g / cardinality(c.pids)) * interval '4 hours',
                       110 + g %% 45, 65 + g %% 25, 55 + g %% 40, 'cuff',
                       c.t0 - (g / cardinality(c.pids)) * interval '4 hours', '',
                       c.t0 - (g / cardinality(c.pids)) * interval '4 hours'
                FROM generate_series(%s::bigint, %s::bigint) AS g,
                     (SELECT %s::bigint[] AS pids, %s::timestamptz AS t0) AS c
                """,
                [done, done + chunk - 1, patients, oldest],
            )
            conn.commit()
            done += chunk
        ledger_rebuild(conn, history=missing)
        conn.commit()
        partitions_split(url)
        conn.execute("ANALYZE care_reading")
        conn.execute("ANALYZE audit_auditevent")
    if missing:
        print(f"    grew to {target:,} readings (+{missing:,} readings and ledger events) in "
              f"{time.monotonic() - started:.0f}s", flush=True)  # fmt: skip


def partitions_split(url: str) -> None:
    """The grown history is older than the months the migration partitioned, so it went to the DEFAULT partitions;
    a real installation's history would have reached its months as they came. The owner's remedy moves it there
    (`manage.py partitions --split-default`, clinaiops/ops/partitions.py), so the pages read a partitioned history
    as production would, not one DEFAULT partition holding nearly all of it."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "clinaiops.settings.base",
           "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING"}  # fmt: skip
    for table in ("care_reading", "audit_auditevent"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "partitions", "--split-default", table],
            env=env, capture_output=True, text=True, check=False, timeout=3600,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"partitions --split-default {table} failed:\n{done.stdout}{done.stderr}")
        print("    " + done.stdout.strip().splitlines()[0], flush=True)


def ledger_rebuild(conn: psycopg.Connection[Any], *, history: int) -> None:
    """`history` synthetic events first (seq 1…, dated before the seed, hash-chained by clinaiops.audit.synthetic),
    then the seed's own events chained again on top with their content unchanged: time and seq order agree as in
    a real ledger, and what the pages read about the recent past (the newest rows, the last days' refusals) is the
    seed's at every size. The seed's checkpoints signed the old seq numbers and are left out at every size."""
    sys.path.insert(0, str(ROOT))
    from clinaiops.audit.chain import GENESIS_HASH, TIMESTAMP_FORMAT, event_hash
    from clinaiops.audit.synthetic import synthetic_events

    names = ", ".join(LEDGER_COLUMNS)
    seed = conn.execute(f"SELECT {names} FROM audit_auditevent ORDER BY seq").fetchall()  # noqa: S608 - constants
    # The ledger and each monthly partition refuse TRUNCATE to every session; the bench is a superuser on a database
    # of its own, and the replica role suspends every trigger, the partitions' own included, for this transaction.
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("TRUNCATE audit_auditevent, audit_auditcheckpoint")
    seq, prev_hash = 0, GENESIS_HASH
    with conn.cursor().copy(f"COPY audit_auditevent ({names}) FROM STDIN") as copy:
        for fields in synthetic_events(history):
            copy.write_row([fields[c] for c in LEDGER_COLUMNS])
            seq, prev_hash = int(fields["seq"]), str(fields["hash"])  # type: ignore[call-overload]
        for row in seed:
            seq += 1
            event = dict(zip(LEDGER_COLUMNS, row, strict=True))
            stamp = event["recorded_at"].astimezone(UTC).strftime(TIMESTAMP_FORMAT)
            ip = str(event["ip"]) if event["ip"] is not None else None
            digest = event_hash(
                seq, stamp, event["actor_id"], event["actor_role"], event["action"], event["object_type"],
                event["object_id"], event["outcome"], event["request_id"], ip, event["payload"], prev_hash,
            )  # fmt: skip
            copy.write_row([seq, *row[1:9], ip, event["payload"], prev_hash, digest])
            prev_hash = digest
    conn.commit()


def personas(first_db: str, others: list[str]) -> dict[str, Any]:
    """A patient token and staff sessions, made in the first copy by Django and copied to the others (all copies
    come from one template, so the users are the same)."""
    os.environ["DATABASE_URL"] = pg.db_url(first_db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinaiops.settings.base"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.sessions.models import Session
    from django.test import Client

    from clinaiops.api.auth_services import access_token_issue
    from clinaiops.care.models import Patient
    from clinaiops.core.models import Role, User

    patient = Patient.objects.select_related("user", "care_team").order_by("pk").first()
    assert patient is not None, "the seed has no patients"
    clinician = User.objects.filter(role=Role.CLINICIAN, care_teams=patient.care_team).order_by("pk").first()
    compliance = User.objects.filter(role=Role.COMPLIANCE_OFFICER).order_by("pk").first()
    assert clinician is not None, "no clinician on the first patient's care team"
    assert compliance is not None, "no compliance officer in the seed"

    def cookie(user: User) -> str:
        client = Client()
        client.force_login(user)
        return str(client.cookies["sessionid"].value)

    sessions = {"clinician": cookie(clinician), "compliance": cookie(compliance)}
    rows = list(Session.objects.filter(session_key__in=sessions.values()).values_list(
        "session_key", "session_data", "expire_date"))  # fmt: skip
    for name in others:
        with psycopg.connect(pg.db_url(name)) as conn:
            conn.cursor().executemany(
                "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (%s, %s, %s)", rows
            )
    # A revocable token of our own (clinaiops/api/auth.py); simplejwt's AccessToken.for_user is refused.
    token = access_token_issue(patient.user, lifetime=timedelta(hours=6))
    return {
        "patient_id": patient.pk,
        "token": token,
        "clinician": f"sessionid={sessions['clinician']}",
        "compliance": f"sessionid={sessions['compliance']}",
    }


def evaluate_here(days_back: int, evaluations: int) -> None:
    """--evaluate: run in a process of its own against one copy; prints {"ms": …, "queries": …} as JSON."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clinaiops.care.models import Patient
    from clinaiops.celery import app

    app.loader.import_default_modules()
    task = app.tasks["clinaiops.loops.tasks.evaluation_run"]
    as_of = datetime.now(tz=UTC) - timedelta(days=days_back)
    times, queries = [], []
    for patient_id in Patient.objects.order_by("pk").values_list("pk", flat=True)[1 : 1 + evaluations]:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            task.apply(args=(patient_id, as_of.isoformat()))
            times.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
    print(json.dumps({"ms": statistics.median(times), "queries": statistics.median(queries)}))


def evaluation_time(database: str, env: dict[str, str], days_back: int, evaluations: int) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--evaluate", "--db", database, "--days-back", str(days_back),
         "--evaluations", str(evaluations)],
        env={**env, "DJANGO_SETTINGS_MODULE": "clinaiops.settings.base", "LOG_LEVEL": "WARNING"},
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["ms"]), float(result["queries"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dbs", default="", help="one copy of the seed per size, comma-separated")
    parser.add_argument("--sizes", default="0,200000,2000000", help="reading count per copy; 0 keeps the seed")
    parser.add_argument("--requests", type=int, default=60, help="sequential requests per figure and size")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--eval-rounds", type=int, default=2)
    parser.add_argument("--evaluations", type=int, default=6, help="evaluations per process")
    parser.add_argument("--warmup", type=int, default=3, help="unrecorded requests before each figure")
    parser.add_argument("--out", default="history.json")
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--days-back", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate:
        os.environ["DATABASE_URL"] = pg.db_url(args.db)
        sys.path.insert(0, str(ROOT))
        evaluate_here(args.days_back, args.evaluations)
        return

    databases = args.dbs.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    assert len(databases) == len(sizes), "one database per size"
    who = personas(databases[0], databases[1:])
    for database, size in zip(databases, sizes, strict=True):
        if size:
            print(f"  growing {database} to {size:,} readings (bulk SQL, untimed)…", flush=True)
        grow(pg.db_url(database), size)
    sized = [(database, *counts(pg.db_url(database))) for database in databases]

    work = Path(tempfile.mkdtemp(prefix="clinaiops-bench-history-"))
    metrics_token = "bench-" + os.urandom(8).hex()
    bearer = {"Authorization": f"Bearer {who['token']}"}
    endpoints: dict[str, tuple[str, dict[str, str]]] = {
        "review queue (portal /queue/)": ("/queue/", {"Cookie": who["clinician"]}),
        "patient page (portal /patients/<id>/)": (f"/patients/{who['patient_id']}/", {"Cookie": who["clinician"]}),
        "audit page (portal /audit/)": ("/audit/", {"Cookie": who["compliance"]}),
        "readings list (GET /api/v1/readings/)": ("/api/v1/readings/", bearer),
        "metrics scrape (GET /metrics)": ("/metrics", {"Authorization": f"Bearer {metrics_token}"}),
    }
    per_round = max(4, args.requests // args.rounds)
    samples: dict[tuple[int, str], list[float]] = {}
    with ExitStack() as stack:
        servers = []
        for index, (database, _, _) in enumerate(sized):
            (work / f"metrics-{index}").mkdir()
            env = environment_for(
                "clinaiops.settings.production",
                {
                    "DATABASE_URL": pg.db_url(database), "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{index}"), "METRICS_TOKEN": metrics_token,
                    "CELERY_BROKER_URL": os.environ["BENCH_BROKER_URL"],
                    # The staff sessions are made by force_login, without a second factor; production's MFA gate
                    # would redirect them. Its cost (a session read the pages already do) is not what is measured.
                    "MFA_REQUIRED_FOR_SIGNING_ROLES": "0",
                },
            )  # fmt: skip
            log = work / f"product-{index}.log"
            servers.append(stack.enter_context(Gunicorn(
                "clinaiops.wsgi", env=env, config="python:clinaiops.ops.gunicorn", log=log, wait=False)))  # fmt: skip
        for server in servers:  # started together, waited for together
            server.wait_ready()
        now = datetime.now(tz=UTC)
        for round_ in range(args.rounds):
            # Alternate the order too: whichever size goes first after a switch pays for it in every other round.
            order = list(enumerate(servers))
            for index, server in order if round_ % 2 == 0 else reversed(order):

                def reading(i: int, index: int = index, round_: int = round_) -> bytes:
                    taken = now - timedelta(hours=2, seconds=round_ * 10_000 + index * 100_000 + i * 7)
                    return json.dumps({"taken_at": taken.isoformat(), "systolic": 128 + i % 9, "diastolic": 81,
                                       "heart_rate": 66, "source": "manual"}).encode()  # fmt: skip

                ingest = sequential(
                    server.base_url + "/api/v1/readings/", n=per_round, method="POST", body=reading,
                    headers={**bearer, "Content-Type": "application/json"}, warmup=args.warmup,
                )  # fmt: skip
                if set(ingest.statuses) != {201}:
                    raise RuntimeError(f"ingest answered {ingest.statuses}; see {work}")
                samples.setdefault((index, INGEST), []).append(ingest.p50_ms)
                for name, (path, headers) in endpoints.items():
                    result = sequential(server.base_url + path, n=per_round, headers=headers, warmup=args.warmup)
                    if set(result.statuses) != {200}:
                        raise RuntimeError(f"{name} answered {result.statuses}; see {work}")
                    samples.setdefault((index, name), []).append(result.p50_ms)
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)

    # Evaluations in a process per size and round, alternating sizes too; each round evaluates another day.
    evaluations: dict[int, list[tuple[float, float]]] = {}
    for round_ in range(args.eval_rounds):
        copies = list(enumerate(name for name, _, _ in sized))
        for index, database in copies if round_ % 2 == 0 else reversed(copies):
            evaluations.setdefault(index, []).append(
                evaluation_time(database, os.environ.copy(), 1 + round_, args.evaluations)
            )
    measured: list[dict[str, Any]] = []
    for index, (_, readings, events) in enumerate(sized):
        ms = {name: statistics.median(values) for (i, name), values in samples.items() if i == index}
        ms[EVALUATION] = statistics.median(t for t, _ in evaluations[index])
        queries = {EVALUATION: statistics.median(q for _, q in evaluations[index])}
        measured.append({"readings": readings, "events": events, "ms": ms, "queries": queries})
        print(f"  at {readings:,} readings / {events:,} events: "
              + ", ".join(f"{k.split(' (')[0]} {v:.1f} ms" for k, v in ms.items()), flush=True)  # fmt: skip

    figures: list[Figure] = []
    first = measured[0]
    for row in measured[1:]:
        for name, value in row["ms"].items():
            figures.append(
                Figure("history", f"{name} at {row['readings'] / 1000:,.0f}k readings", value, "ms",
                       first["ms"][name], f"{first['readings'] / 1000:,.0f}k", better="lower", goal="flat ±20 %",
                       detail={"queries": row["queries"].get(name), "baseline_queries": first["queries"].get(name)})
            )  # fmt: skip
    figures_print("history bench (median over rounds of the p50 of sequential requests; ratio to the seed)", figures)
    payload = {"machine": machine(), "sizes": measured, "figures": [f.as_dict() for f in figures]}
    written = results_write(args.out, payload)
    print(f"  written to {written.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
