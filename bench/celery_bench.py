"""Celery bench (issue 13): evaluations/s with a real worker at concurrency 1, 2 and 4, and reading-POST →
recommendation-stored latency with a real worker at a steady reading rate (50/s by default).

Both use real processes on this run's RabbitMQ virtual host (bench/run.py makes it) and copies of the seed
database: `celery -A clinaiops worker -Q evaluation` with production settings, and for the latency the product
under gunicorn as in the web bench.

- **Throughput.** For each concurrency a fresh worker is started, warmed up (two evaluations per process: the
  first task of a process loads the model), then sent one evaluation per patient for a day on which no patient has
  a scheduled evaluation yet, as beat's hourly schedule sends them (`clinaiops.loops.tasks.evaluation_run`, queue
  `evaluation`). The figure is tasks / (first send → last answer), an answer being the task's audit event
  (`recommendation.created` or `evaluation.skipped`). Baseline: concurrency 1 in the same run.
- **Latency.** Some seeded patients are made due (their scheduled evaluations of the last interval are moved 100
  days back, in this run's copy only: the same state as a week without evaluations), then readings are
  POSTed at a fixed rate, open loop, to random patients. The first reading of a due patient enqueues their
  evaluation on commit (clinaiops/loops/services/evaluation_trigger.py); the figure is from sending that POST to
  the recommendation row being visible (polled every 10 ms, so up to 10 ms late). Goal: p50 < 200 ms, p99 < 1 s.
  Its baseline is the POST's own latency in the same run.

  How many are due is the question. In production a patient is evaluated once per EVALUATION_INTERVAL_DAYS (7)
  and sends about 6 readings a day, so about 1 reading in 42 makes its patient due (docs/scaling.md: 70
  readings/s carry 1.7 evaluations/s). `--due-per-reading` (default 1/42) sets how many due patients the run
  holds: that share of the readings it sends. `--due-per-reading 1` makes every patient due at once, a stress
  figure: the evaluations asked for then outrun what the worker does on a 2-core machine, and the latency is the
  backlog draining.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import pg
from harness.report import Figure, figures_print, machine, results_write
from harness.server import ROOT, CeleryWorker, Gunicorn, environment_for

TASK = "clinaiops.loops.tasks.evaluation_run"
ANSWERS = ("recommendation.created", "evaluation.skipped")


def _worker_env(database: str, work: Path, role: str = "worker") -> dict[str, str]:
    # A metrics folder per process kind: gunicorn empties its own at start (docs/operations.md).
    metrics = work / f"metrics-{role}-{database[-12:]}"
    metrics.mkdir(exist_ok=True)
    return environment_for(
        "clinaiops.settings.production",
        {
            "DATABASE_URL": pg.db_url(database), "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_BROKER_URL": os.environ["BENCH_BROKER_URL"], "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        },
    )  # fmt: skip


def _sender() -> Any:
    """A bare Celery app on the run's vhost: sends by task name, as beat does, without loading Django here."""
    from celery import Celery

    app = Celery("bench", broker=os.environ["BENCH_BROKER_URL"])
    app.conf.task_serializer = "json"
    return app


def _seq(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_auditevent").fetchone()
    return int(row[0]) if row else 0


def _answers(conn: psycopg.Connection[Any], after_seq: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT action, COUNT(*) FROM audit_auditevent WHERE seq > %s AND action = ANY(%s) GROUP BY action",
        [after_seq, list(ANSWERS)],
    ).fetchall()
    return {str(action): int(n) for action, n in rows}


def _free_days(conn: psycopg.Connection[Any], count: int) -> list[datetime]:
    """Days back from yesterday on which no patient has a scheduled evaluation, with readings in the 14 days
    before (the evaluation's window): each concurrency evaluates every patient on a day of its own."""
    taken = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT evaluation_date FROM loops_recommendation WHERE trigger = 'scheduled'"
        ).fetchall()
    }
    newest = conn.execute("SELECT MAX(taken_at) FROM care_reading").fetchone()
    anchor = (newest[0] if newest and newest[0] else datetime.now(tz=UTC)).replace(hour=12, minute=0, second=0)
    days = []
    for back in range(1, 45):
        day = anchor - timedelta(days=back)
        if day.date() not in taken:
            days.append(day)
        if len(days) == count:
            return days
    # Every recent day has some evaluation: use the least used ones (repeats answer without an audit event, so
    # only patients without one that day are sent).
    return [anchor - timedelta(days=back) for back in range(1, count + 1)]


def _unevaluated(conn: psycopg.Connection[Any], day: datetime, limit: int) -> list[int]:
    rows = conn.execute(
        "SELECT p.id FROM care_patient p WHERE NOT EXISTS (SELECT 1 FROM loops_recommendation r WHERE "
        "r.patient_id = p.id AND r.trigger = 'scheduled' AND r.evaluation_date = %s) ORDER BY p.id LIMIT %s",
        [day.date(), limit],
    ).fetchall()
    return [int(r[0]) for r in rows]


def _wait_answers(conn: psycopg.Connection[Any], after_seq: int, expected: int, timeout: float) -> tuple[float, int]:
    deadline = time.monotonic() + timeout
    while True:
        done = sum(_answers(conn, after_seq).values())
        if done >= expected or time.monotonic() > deadline:
            return time.monotonic(), done
        time.sleep(0.02)


def throughput(database: str, levels: list[int], patients: int, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    sender = _sender()
    details: dict[str, Any] = {}
    rates: dict[int, float] = {}
    with psycopg.connect(pg.db_url(database), autocommit=True) as conn:
        days = _free_days(conn, len(levels) + 1)
        warm_day, level_days = days[0], days[1:]
        warm_patients = _unevaluated(conn, warm_day, 2 * max(levels) + 2)
        warm_used = 0
        for level, day in zip(levels, level_days, strict=True):
            ids = _unevaluated(conn, day, patients)
            env = _worker_env(database, work)
            with CeleryWorker(env=env, concurrency=level, queues="evaluation", log=work / f"worker-c{level}.log") as w:
                # Warm-up: each process's first task imports onnxruntime and loads the model.
                warm = warm_patients[warm_used : warm_used + 2 * level]
                warm_used += len(warm)
                start = _seq(conn)
                for pid in warm:
                    sender.send_task(TASK, args=[pid, warm_day.isoformat()], queue="evaluation")
                _, got = _wait_answers(conn, start, len(warm), timeout=300)
                if got < len(warm):
                    sys.exit(f"  concurrency {level}: the worker answered {got} of {len(warm)} warm-up tasks in 300 s; "
                             f"see {work}/worker-c{level}.log")  # fmt: skip
                start = _seq(conn)
                began = time.monotonic()
                for pid in ids:
                    sender.send_task(TASK, args=[pid, day.isoformat()], queue="evaluation")
                ended, got = _wait_answers(conn, start, len(ids), timeout=900)
                rss = w.rss_mb()
                answers = _answers(conn, start)
            seconds = ended - began
            rates[level] = got / seconds if seconds > 0 else 0.0
            details[f"c{level}"] = {
                "tasks": len(ids), "answered": got, "seconds": round(seconds, 2), "per_s": round(rates[level], 2),
                "answers": answers, "day": day.date().isoformat(), "worker_rss_mb": rss,
                "load_average": os.getloadavg()[0],
            }  # fmt: skip
            print(f"  concurrency {level}: {got}/{len(ids)} evaluations in {seconds:.1f}s = {rates[level]:.1f}/s "
                  f"({answers}); worker RSS {', '.join(f'{r:.0f}' for r in rss)} MB", flush=True)  # fmt: skip
    figures = []
    base = levels[0]
    for level in levels:
        goal = "≥ 1.6× (2 vs 1)" if level == 2 else ""
        figures.append(Figure(
            "celery", f"evaluations/s, worker concurrency {level}", rates[level], "/s",
            rates[base] if level != base else None, f"concurrency {base}", goal=goal, detail=details[f"c{level}"],
        ))  # fmt: skip
    last = details[f"c{levels[-1]}"]["worker_rss_mb"]
    if last:
        figures.append(Figure("celery", "evaluation worker RSS after load (max process)", max(last), "MB",
                              detail={"processes_mb": last}, better="lower"))  # fmt: skip
    return figures, details


# --- latency ------------------------------------------------------------------------------------------------


def _make_due(database: str, interval_days: int, patients: list[int]) -> int:
    """These patients due, in this run's copy only: their scheduled evaluations of the last interval (the seed's
    loops end today) moved 100 days back, before any seeded history, date and time together, so the unique
    one-per-day rule still holds; and the trigger's per-day cache hints from the seed build dropped."""
    with psycopg.connect(pg.db_url(database), autocommit=True) as conn:
        cursor = conn.execute(
            "UPDATE loops_recommendation SET created_at = created_at - interval '100 days', "
            "evaluation_date = evaluation_date - 100 "
            "WHERE trigger = 'scheduled' AND created_at > now() - make_interval(days => %s) "
            "AND patient_id = ANY(%s)",
            [interval_days + 1, patients],
        )
        moved = cursor.rowcount
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        if "clinaiops_cache" in tables:
            conn.execute("DELETE FROM clinaiops_cache WHERE cache_key LIKE %s", ["%evaluation-event:%"])
        return moved


def _tokens(database: str) -> list[tuple[str, int]]:
    os.environ["DATABASE_URL"] = pg.db_url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinaiops.settings.base"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from clinaiops.api.auth_services import access_token_issue
    from clinaiops.care.models import Patient

    return [
        (access_token_issue(p.user, lifetime=timedelta(hours=3)), p.pk)
        for p in Patient.objects.select_related("user").order_by("pk")
    ]


class _Poller(threading.Thread):
    """Records when each patient's first new recommendation row becomes visible."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(pg.db_url(database), autocommit=True)
        row = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM loops_recommendation").fetchone()
        self.after = int(row[0]) if row else 0
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.conn.execute(
                "SELECT id, patient_id FROM loops_recommendation WHERE id > %s ORDER BY id", [self.after]
            ).fetchall()
            now = time.monotonic()
            for rec_id, patient_id in rows:
                self.after = max(self.after, int(rec_id))
                self.seen.setdefault(int(patient_id), now)
            time.sleep(0.01)
        self.conn.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(
    database: str,
    rate: float,
    seconds: float,
    concurrency: int,
    work: Path,
    drain: float = 60.0,
    due_per_reading: float = 1 / 42,
) -> tuple[list[Figure], dict[str, Any]]:
    interval = int(os.environ.get("EVALUATION_INTERVAL_DAYS", "7"))
    accounts = _tokens(database)
    rng = random.Random(13)
    warm, measured = accounts[: 2 * concurrency + 4], accounts[2 * concurrency + 4 :]
    # The warm-up patients are all due (they load the worker processes); of the measured, as many as the share
    # of the run's readings asks for, at least 5.
    due_count = min(len(measured), max(5, round(rate * seconds * due_per_reading)))
    due_ids = {pid for _, pid in rng.sample(measured, due_count)}
    moved = _make_due(database, interval, sorted(due_ids | {pid for _, pid in warm}))
    env = _worker_env(database, work)
    sent: dict[int, float] = {}  # patient → when its first reading of the run was sent
    post_ms: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stamp = [0]
    local = threading.local()

    def post(server: Gunicorn, token: str, patient: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        with lock:
            stamp[0] += 1
            n = stamp[0]
        taken = (datetime.now(tz=UTC) - timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        body = json.dumps({"taken_at": taken, "systolic": 150 + n % 20, "diastolic": 90 + n % 8,
                           "heart_rate": 60 + n % 25, "source": "cuff"})  # fmt: skip
        began = time.monotonic()
        if patient in due_ids or patient in warm_ids:
            with lock:
                sent.setdefault(patient, began)
        try:
            conn.request("POST", "/api/v1/readings/", body=body,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})  # fmt: skip
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            local.conn = None
            status = 0
        with lock:
            post_ms.append((time.monotonic() - began) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    warm_ids = {pid for _, pid in warm}
    product_env = _worker_env(database, work, role="web")
    with (
        Gunicorn(
            "clinaiops.wsgi", env=product_env, config="python:clinaiops.ops.gunicorn", log=work / "product.log"
        ) as server,  # fmt: skip
        CeleryWorker(env=env, concurrency=concurrency, queues="evaluation", log=work / "worker-latency.log") as worker,
    ):
        # Warm the web workers and the worker processes on patients kept out of the figure.
        warm_poller = _Poller(database)
        warm_poller.start()
        for token, pid in warm:
            post(server, token, pid)
        # Until every warm-up evaluation is stored: a worker process's first evaluation imports shap, numba and
        # the model (seconds on a busy host), and the figure must not queue behind it.
        warm_until = time.monotonic() + 180
        while time.monotonic() < warm_until and not warm_ids <= set(warm_poller.seen):
            time.sleep(0.1)
        warm_poller.stop.set()
        warm_poller.join(timeout=5)
        time.sleep(1)
        warm_ids = set()
        sent.clear()
        post_ms.clear()
        statuses.clear()
        poller = _Poller(database)
        poller.start()
        threads: list[threading.Thread] = []
        began = time.monotonic()
        total = int(rate * seconds)
        for i in range(total):
            due = began + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            token, pid = measured[rng.randrange(len(measured))]
            thread = threading.Thread(target=post, args=(server, token, pid), daemon=True)
            thread.start()
            threads.append(thread)
            threads = [t for t in threads if t.is_alive()]
        achieved = total / (time.monotonic() - began)
        for thread in threads:
            thread.join(timeout=60)
        wait_until = time.monotonic() + drain  # the evaluations still queued when the last POST answered
        while time.monotonic() < wait_until and len(set(sent) - set(poller.seen)) > 0:
            time.sleep(0.1)
        poller.stop.set()
        poller.join(timeout=5)
        rss_web, rss_worker = server.worker_rss_mb(), worker.rss_mb()
    samples = [(poller.seen[p] - sent[p]) * 1000 for p in sent if p in poller.seen]
    if not samples:
        sys.exit(f"  latency: no recommendation was stored for {len(sent)} due patients; see {work}")
    p50, p99 = statistics.median(samples), _percentile(samples, 0.99)
    post_p50, post_p99 = statistics.median(post_ms), _percentile(post_ms, 0.99)
    detail = {
        "rate_asked": rate, "rate_achieved": round(achieved, 1), "seconds": seconds, "readings": sum(statuses.values()),
        "statuses": statuses, "due_patients_posted": len(sent), "recommendations_seen": len(samples),
        "scheduled_moved_back": moved, "worker_concurrency": concurrency, "due_per_reading": due_per_reading,
        "due_patients": len(due_ids), "evaluations_asked_per_s": round(len(sent) / seconds, 2),
        "latency_ms": sorted(round(s, 1) for s in samples),
        "post_p50_ms": post_p50, "post_p99_ms": post_p99, "web_rss_mb": rss_web, "worker_rss_mb": rss_worker,
        "load_average": os.getloadavg()[0],
    }  # fmt: skip
    print(f"  {len(due_ids)} of {len(measured)} patients due (1 reading in {1 / due_per_reading:.0f}), "
          f"{len(sent) / seconds:.1f} evaluations asked for a second", flush=True)  # fmt: skip
    print(f"  {achieved:.1f} readings/s for {seconds:.0f}s ({statuses}); {len(samples)}/{len(sent)} due patients "
          f"got a recommendation: p50 {p50:.0f} ms, p99 {p99:.0f} ms; the POST itself p50 {post_p50:.0f} ms, "
          f"p99 {post_p99:.0f} ms", flush=True)  # fmt: skip
    mix = f"{rate:.0f} readings/s, 1 in {1 / due_per_reading:.0f} due"
    figures = [
        Figure("celery", f"reading POST → recommendation stored, p50 ({mix})", p50, "ms", post_p50,
               "the POST's own p50", better="lower", goal="p50 < 200 ms", detail=detail),
        Figure("celery", f"reading POST → recommendation stored, p99 ({mix})", p99, "ms", post_p99,
               "the POST's own p99", better="lower", goal="p99 < 1 s"),
    ]  # fmt: skip
    return figures, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput-db", default="")
    parser.add_argument("--latency-db", default="")
    parser.add_argument("--levels", default="1,2,4")
    parser.add_argument("--patients", type=int, default=200, help="evaluations per concurrency level")
    parser.add_argument("--rate", type=float, default=50.0, help="readings/s for the latency figure")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of readings for the latency figure")
    parser.add_argument("--latency-concurrency", type=int, default=2)
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last recommendations")
    parser.add_argument(
        "--due-per-reading",
        type=float,
        default=1 / 42,
        help="share of the readings whose patient is due (production: 1/42; 1: all due, a stress)",
    )
    parser.add_argument("--out", default="celery.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clinaiops-bench-celery-"))
    print(f"celery bench: real workers on this run's vhost; logs in {work}; load average {os.getloadavg()[0]:.2f}",
          flush=True)  # fmt: skip
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    if args.throughput_db:
        levels = [int(x) for x in args.levels.split(",")]
        got, details["throughput"] = throughput(args.throughput_db, levels, args.patients, work)
        figures += got
    if args.latency_db:
        got, details["latency"] = latency(
            args.latency_db,
            args.rate,
            args.seconds,
            args.latency_concurrency,
            work,
            drain=args.drain,
            due_per_reading=args.due_per_reading,
        )
        figures += got
    figures_print("celery bench (same run, same machine)", figures)
    path = results_write(args.out, {"machine": machine(), "figures": [f.as_dict() for f in figures],
                                    "details": details})  # fmt: skip
    print(f"  written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
