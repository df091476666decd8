"""Web bench (issue 13): the product under gunicorn with production settings against the bare-DRF ceiling app,
both served in this run, driven by wrk at 16 connections.

- POST /api/v1/readings/ against a bare DRF one-row insert;
- GET /api/v1/recommendations/ against a bare DRF list of the same rows;
- RSS of the web workers after the load, against the bare DRF worker's.

bench/run.py prepares the databases (a copy of the seed template for the product, an empty one for the ceiling),
the RabbitMQ virtual host and the keys, and passes them in the environment; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import pg
from harness.load import WrkResult, wrk
from harness.report import Figure, figures_print, machine, results_write
from harness.server import ROOT, Gunicorn, environment_for

BENCH = Path(__file__).resolve().parent
ACCOUNTS = 32


def product_setup(database: str) -> None:
    os.environ["DATABASE_URL"] = pg.db_url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinaiops.settings.base"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def accounts_write(path: Path) -> list[int]:
    """Access tokens for the first patients, minted directly (the token endpoint is throttled, and signing in is
    not what is measured)."""
    from clinaiops.api.auth_services import access_token_issue
    from clinaiops.care.models import Patient

    patients = list(Patient.objects.select_related("user").order_by("pk")[:ACCOUNTS])
    lines = []
    for patient in patients:
        # A revocable token of our own (clinaiops/api/auth.py); simplejwt's AccessToken.for_user is refused.
        token = access_token_issue(patient.user, lifetime=timedelta(hours=3))
        lines.append(f"{token} {patient.pk}")
    path.write_text("\n".join(lines) + "\n")
    return [p.pk for p in patients]


def ceiling_prepare(ceiling_db: str, patient_ids: list[int]) -> dict[str, str]:
    """The ceiling's tables, and a copy of these patients' recommendations, so both lists return the same rows."""
    from clinaiops.loops.models import Recommendation

    env = {**os.environ, "CEILING_DATABASE_URL": pg.db_url(ceiling_db), "DJANGO_SETTINGS_MODULE": "ceiling.settings"}
    subprocess.run(
        [sys.executable, str(BENCH / "ceiling" / "manage.py"), "migrate", "--run-syncdb", "--verbosity", "0"],
        env=env, check=True, timeout=300,
    )  # fmt: skip
    import psycopg
    from psycopg.types.json import Jsonb

    rows = Recommendation.objects.filter(patient_id__in=patient_ids).values_list(
        "patient_id", "created_at", "action", "from_step", "to_step", "final_step", "confidence", "tier", "status",
        "reason_text", "top_factors", "delivered_at",
    )  # fmt: skip
    with psycopg.connect(pg.db_url(ceiling_db)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ceiling_recommendation (patient_id, created_at, action, from_step, to_step, final_step, "
            "confidence, tier, status, reason_text, top_factors, delivered_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(*row[:10], Jsonb(row[10]), row[11]) for row in rows],
        )
    return {"CEILING_DATABASE_URL": pg.db_url(ceiling_db), "DJANGO_SETTINGS_MODULE": "ceiling.settings"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product-db", required=True)
    parser.add_argument("--ceiling-db", required=True)
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk per figure")
    parser.add_argument("--out", default="web.json")
    args = parser.parse_args()

    product_setup(args.product_db)
    work = Path(tempfile.mkdtemp(prefix="clinaiops-bench-web-"))
    accounts = work / "accounts.txt"
    patient_ids = accounts_write(accounts)
    ceiling_env = ceiling_prepare(args.ceiling_db, patient_ids)

    # Everything run.py put in the environment (keys, broker, ARTIFACT_ROOT), with production settings.
    (work / "metrics").mkdir()
    product_env = environment_for(
        "clinaiops.settings.production",
        {
            "DATABASE_URL": pg.db_url(args.product_db), "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "CELERY_BROKER_URL": os.environ["BENCH_BROKER_URL"],
        },
    )  # fmt: skip
    ceiling_env = {**environment_for("ceiling.settings", {}), **ceiling_env, "PYTHONPATH": str(BENCH)}

    print(f"web bench: gunicorn sync × 2, wrk 16 connections × {args.duration}s per figure, {len(patient_ids)} "
          f"patients' tokens; logs in {work}", flush=True)  # fmt: skip
    results: dict[str, WrkResult] = {}
    loads: dict[str, float] = {}  # the machine is shared: what else ran shows in the load average
    with (
        Gunicorn("ceiling.wsgi", env=ceiling_env, chdir=BENCH, log=work / "ceiling.log", wait=False) as ceiling,
        Gunicorn(
            "clinaiops.wsgi",
            env=product_env,
            config="python:clinaiops.ops.gunicorn",
            log=work / "product.log",
            wait=False,
        ) as product,
    ):
        ceiling.wait_ready()
        product.wait_ready()
        # Alternate ceiling and product, so a slower stretch of the shared machine hits both.
        for mode in ("post", "list"):
            for target, server in (("ceiling", ceiling), ("product", product)):
                env = {"BENCH_TOKENS": str(accounts), "BENCH_MODE": mode, "BENCH_TARGET": target}
                # A worker's first requests import and cache what later ones reuse (measured: 2.4 s for the
                # product's first POST); wrk for a few seconds first, unrecorded, so the figures are steady state.
                # Repeated until requests complete: a cold worker's first request took 6.4 s under load here.
                for _ in range(8):
                    if wrk(server.base_url, script="api.lua", env=env, duration_s=3).requests >= 16:
                        break
                result = wrk(server.base_url, script="api.lua", env=env, duration_s=args.duration)
                if result.requests == 0:
                    # No request finished within the run: a figure of 0 req/s would read as a measurement.
                    sys.exit(f"  {mode} {target}: no request completed in {args.duration}s; see {work}/{target}.log")
                results[f"{mode}:{target}"] = result
                loads[f"{mode}:{target}"] = os.getloadavg()[0]
                print(f"  {mode:4} {target:8} {result.requests_per_s:8.1f} req/s  p50 {result.p50_ms:6.1f} ms  "
                      f"p99 {result.p99_ms:6.1f} ms  non-2xx {result.non_2xx}", flush=True)  # fmt: skip
        rss_product, rss_ceiling = product.worker_rss_mb(), ceiling.worker_rss_mb()

    post_p, post_c = results["post:product"], results["post:ceiling"]
    list_p, list_c = results["list:product"], results["list:ceiling"]
    figures = [
        Figure("web", "POST /api/v1/readings/ throughput", post_p.requests_per_s, "req/s", post_c.requests_per_s,
               "bare DRF one-row insert", goal="≥ 0.60",
               detail={"product": post_p.as_dict(), "ceiling": post_c.as_dict(), "load_average": loads}),
        Figure("web", "POST /api/v1/readings/ p99", post_p.p99_ms, "ms", post_c.p99_ms, "bare DRF one-row insert",
               better="lower", goal="p99 < 50 ms"),
        Figure("web", "GET /api/v1/recommendations/ throughput", list_p.requests_per_s, "req/s",
               list_c.requests_per_s, "bare DRF list", goal="≥ 0.50",
               detail={"product": list_p.as_dict(), "ceiling": list_c.as_dict()}),
        Figure("web", "GET /api/v1/recommendations/ p99", list_p.p99_ms, "ms", list_c.p99_ms, "bare DRF list",
               better="lower"),
        Figure("web", "gunicorn worker RSS after load (max)", max(rss_product), "MB", max(rss_ceiling),
               "bare DRF worker", better="lower", goal="≤ 1.5×",
               detail={"product_mb": rss_product, "ceiling_mb": rss_ceiling}),
    ]  # fmt: skip
    for key, outcome in results.items():
        if outcome.non_2xx or outcome.socket_errors:
            print(f"  WARNING: {key} had {outcome.non_2xx} non-2xx responses and {outcome.socket_errors} socket "
                  f"errors; see {work}")  # fmt: skip
    figures_print("web bench (same run, same machine)", figures)
    path = results_write(args.out, {"machine": machine(), "figures": [f.as_dict() for f in figures]})
    print(f"  written to {path.relative_to(ROOT)}")
    # A refused request is cheaper than a stored one: figures with refusals in them flatter the product, so the run
    # says FAILED instead of printing them as if they were good (a wrk script that sent implausible times once made
    # half the POSTs 400s).
    refused = {key: o.non_2xx for key, o in results.items() if o.non_2xx > 0.01 * max(o.requests, 1)}
    if refused:
        sys.exit(f"  more than 1 % non-2xx responses in {refused}: the figures above are not valid; see {work}")


if __name__ == "__main__":
    main()
