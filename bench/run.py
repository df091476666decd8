"""`make bench` / `make bench-quick`: every benchmark, each figure beside its baseline from the same run.

It needs only what `make install services system-deps` provide (PostgreSQL, RabbitMQ, wrk). It creates its own
databases (clinaiops_bench_r<run>_…, dropped at the end, whatever happens) from a seed template it builds once
through the real services (bench/harness/seed.py), a RabbitMQ virtual host of its own (deleted at the end), and
touches nothing else. Results: printed, and written as JSON to bench/results/<time>.json (and latest.json).

    python bench/run.py            # full: history at 200k and 2M readings, 20 s of wrk per figure
    python bench/run.py --quick    # reduced: 200k only, 6 s of wrk, a 20k-event ledger, no Evidently; under
                                   # 5 minutes once the seed template exists (its first build adds 5–10 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import pg
from harness.load import wrk_binary
from harness.report import Figure, figures_load, figures_print, machine, results_write
from harness.seed import production_env, seed_template
from harness.server import ROOT, RabbitVhost

BENCH = ROOT / "bench"


def _run(title: str, command: list[str], env: dict[str, str], timeout: int) -> dict[str, Any]:
    """Run one bench as a child process, echoing its output; a failing bench is reported, not fatal."""
    print(f"\n=== {title} ===", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            code = -9
    seconds = time.monotonic() - started
    if code != 0:
        print(f"  !! {title} FAILED (exit {code})", flush=True)
    return {"title": title, "exit_code": code, "seconds": round(seconds, 1), "output": "".join(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--drift-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--celery-rate", default="50", help="readings/s for the reading→recommendation latency")
    parser.add_argument("--only", default="",
                        help="comma-separated: web,history,celery,sync,scoring,drift,audit,export,modelcard,"
                             "simulate")  # fmt: skip
    args = parser.parse_args()
    everything = {"web", "history", "celery", "sync", "scoring", "drift", "audit", "export", "modelcard", "simulate"}
    # The quick run keeps the issue-13 figures and leaves out the two benches of earlier issues that take minutes
    # however small they are made (the simulation trains a model through the gates; the model card renders PDFs):
    # `make bench` runs them, and `--only simulate,modelcard` runs them alone.
    quick_set = everything - {"simulate", "modelcard"}
    wanted = set(filter(None, args.only.split(","))) or (quick_set if args.quick else everything)

    if not pg.server_reachable():
        sys.exit(f"PostgreSQL does not answer at {pg.ADMIN_URL} (make services)")
    wrk_binary()  # fails early with the install hint
    run = f"r{os.getpid()}{secrets.token_hex(2)}"
    created: list[str] = []
    started = time.monotonic()
    print(f"bench run {run} ({'quick' if args.quick else 'full'}) on {os.cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip

    template, seed_artifacts, keys = seed_template(rebuild=os.environ.get("BENCH_RESEED") == "1")
    artifacts = Path(tempfile.mkdtemp(prefix=f"clinaiops-bench-{run}-"))
    shutil.copytree(seed_artifacts, artifacts / "artifacts")
    (artifacts / "var" / "static").mkdir(parents=True)  # production's STATIC_ROOT, which WhiteNoise expects

    def database(purpose: str, *, from_template: bool) -> str:
        name = f"clinaiops_bench_{run}_{purpose}"
        pg.db_create(name, template=template if from_template else None)
        created.append(name)
        return name

    reports: list[dict[str, Any]] = []
    results_dir = f"run-{run}"
    try:
        with RabbitVhost(f"clinaiops_bench_{run}") as vhost:
            base_env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))},
                **keys, "ARTIFACT_ROOT": str(artifacts / "artifacts"), "BENCH_BROKER_URL": vhost.url,
                "CELERY_BROKER_URL": vhost.url, "JWT_ACCESS_MINUTES": "240", "PYTHONPATH": str(ROOT),
                "CLINAIOPS_VAR_DIR": str(artifacts / "var"), "LOG_LEVEL": "WARNING",
            }  # fmt: skip
            env = production_env(base_env)
            python = sys.executable
            if "web" in wanted:
                product, ceiling = database("web", from_template=True), database("ceiling", from_template=False)
                duration = "6" if args.quick else "20"
                reports.append(_run("web: product vs bare DRF (wrk, 16 connections)", [
                    python, "bench/web_bench.py", "--product-db", product, "--ceiling-db", ceiling,
                    "--duration", duration, "--out", f"{results_dir}/web.json",
                ], env, timeout=900))  # fmt: skip
            if "history" in wanted:
                sizes = ["0", "200000"] if args.quick else ["0", "200000", "2000000"]
                copies = [database(f"history{i}", from_template=True) for i in range(len(sizes))]
                reports.append(_run("history: flat cost at 26k → 200k → 2M readings", [
                    python, "bench/history_bench.py", "--dbs", ",".join(copies), "--sizes", ",".join(sizes),
                    "--requests", "8" if args.quick else "120", "--rounds", "2" if args.quick else "4",
                    "--eval-rounds", "1" if args.quick else "2", "--evaluations", "4" if args.quick else "8",
                    "--warmup", "1" if args.quick else "3",
                    "--out", f"{results_dir}/history.json",
                ], env, timeout=3600))  # fmt: skip
            if "celery" in wanted:
                # Real workers on this run's vhost: evaluations/s at concurrency 1, 2, 4 (a copy of the seed), and
                # reading-POST → recommendation latency at 50 readings/s (another copy, every patient made due).
                throughput_db = database("celery", from_template=True)
                latency_db = database("latency", from_template=True)
                reports.append(_run("celery: evaluations/s at concurrency 1/2/4, reading→recommendation latency", [
                    python, "bench/celery_bench.py", "--throughput-db", throughput_db, "--latency-db", latency_db,
                    "--levels", "1,2" if args.quick else "1,2,4", "--patients", "30" if args.quick else "200",
                    "--rate", args.celery_rate,
                    "--seconds", "6" if args.quick else "20", "--drain", "20" if args.quick else "60",
                    "--out", f"{results_dir}/celery.json",
                ], env, timeout=1800))  # fmt: skip
            if "sync" in wanted:
                # Issue 12: batch sync of 500 readings vs 500 single POSTs, FHIR Bundle vs native JSON.
                sync_db = database("sync", from_template=True)
                reports.append(_run("sync: batch of 500 vs single POSTs, FHIR Bundle vs native JSON", [
                    python, "bench/ingest_sync_bench.py", "--db", sync_db, "--readings", "500",
                    "--rounds", "1" if args.quick else "3", "--out", f"{results_dir}/ingest_sync.json",
                ], env, timeout=1200))  # fmt: skip
            if "scoring" in wanted:
                scoring_env = {**base_env, "BENCH_DATABASE_URL": pg.db_url(database("scoring", from_template=False))}
                reports.append(_run("scoring: model_score vs bare onnxruntime and sklearn",
                                    [python, "bench/scoring_bench.py"], scoring_env, timeout=900))  # fmt: skip
            if "drift" in wanted:
                # Evidently takes a minute or more of the 5 the quick run has: quick compares with the scipy loop
                # alone (the bench runs without Evidently in the project's venv and says so).
                full = Path(args.drift_python).exists() and not args.quick
                title = "drift: ours vs Evidently" if full else "drift: ours vs a scipy loop (Evidently: make bench)"
                drift_python = args.drift_python if full else python
                reports.append(_run(title, [drift_python, "bench/drift_bench.py"], base_env, timeout=900))
            if "audit" in wanted:
                audit_env = {**base_env, "BENCH_DATABASE_URL": pg.db_url(database("audit", from_template=False))}
                if args.quick:
                    audit_env |= {"BENCH_AUDIT_LEDGER": "20000", "BENCH_AUDIT_APPENDS": "500"}
                reports.append(_run("audit ledger: append and verify", [python, "bench/audit_bench.py"], audit_env,
                                    timeout=1800))  # fmt: skip
            if "export" in wanted and (BENCH / "export_bench.py").exists():
                export_env = {**base_env, "BENCH_DATABASE_URL": pg.db_url(database("export", from_template=False))}
                if args.quick:  # its own quick mode (200k events) takes three minutes here; 20k keeps a ratio
                    export_env["BENCH_EXPORT_EVENTS"] = "20000"
                reports.append(_run("compliance exports", [python, "bench/export_bench.py"], export_env,
                                    timeout=1800))  # fmt: skip
            if "modelcard" in wanted:
                # A copy of the seed: it has the deployed model and decided recommendations the card describes.
                card_env = {**base_env, "BENCH_DATABASE_URL": pg.db_url(database("modelcard", from_template=True))}
                reports.append(_run("model card PDF vs decision-record PDF", [python, "bench/model_card_bench.py"],
                                    card_env, timeout=900))  # fmt: skip
            if "simulate" in wanted:  # its own throwaway SQLite database (manage.py simulate); quick: fewer patients
                simulate_env = {**base_env, **({"BENCH_SIMULATE_PATIENTS": "20", "BENCH_SIMULATE_DAYS": "21"}
                                               if args.quick else {})}  # fmt: skip
                reports.append(_run("simulate: patient-days/s vs the pure simulator",
                                    [python, "bench/bench_simulate.py"], simulate_env, timeout=1800))  # fmt: skip
    finally:
        for name in created:
            pg.db_drop(name)
        shutil.rmtree(artifacts, ignore_errors=True)

    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for name in ("web.json", "history.json", "celery.json", "ingest_sync.json"):
        path = BENCH / "results" / results_dir / name
        if path.exists():
            figures += figures_load(path)
            details[name.removesuffix(".json")] = json.loads(path.read_text())
    shutil.rmtree(BENCH / "results" / results_dir, ignore_errors=True)  # folded into the run's one file below
    figures_print("=== summary: figures with their baseline from this run ===", figures)
    for report in reports:
        status = report.get("status") or ("ok" if report["exit_code"] == 0 else f"FAILED ({report['exit_code']})")
        print(f"  {report['title']:<58} {status:>10}  {report.get('seconds', 0):6.0f}s")
    payload = {
        "run": run, "quick": args.quick, "machine": machine(), "seconds": round(time.monotonic() - started),
        "figures": [f.as_dict() for f in figures], "details": details, "benches": reports,
    }  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = results_write(f"{stamp}{'-quick' if args.quick else ''}.json", payload)
    shutil.copyfile(path, path.with_name("latest.json"))
    print(f"\nbench run {run} took {payload['seconds']}s; results in {path.relative_to(ROOT)} (and latest.json)")
    if any(r["exit_code"] not in (0, None) for r in reports):
        sys.exit(1)


if __name__ == "__main__":
    main()
