#!/usr/bin/env python
"""schemathesis against the live app (issue 12): every operation of /api/v1/schema/, at least 100 examples each,
`--checks all`, as a signed-in patient, against gunicorn on a fresh PostgreSQL database. Exits non-zero on any
server error, response-schema violation, undocumented status code or other failed check, and on a traceback in the
server's log. The two acceptance checks (does the server take every request the schema allows, refuse every one it
does not) are printed with their cases but fail the run only with --strict (ADVISORY_CHECKS says why).

    .venv/bin/python .ci/schemathesis.py [--max-examples 100] [--strict] [--keep-report DIR]   (make fuzz-api)

What it does, in order: creates a database of its own (postgres://postgres@127.0.0.1:5432, a unique name, dropped at
the end whatever happens), migrates it, seeds a care team, a clinician, a patient (and a device gateway where that
role exists), starts gunicorn on a free port with a private var/ directory (keys, artifacts), signs the patient in,
and runs `schemathesis run` twice: every operation but sign-out with one sign-in, then sign-out alone with another
(signing out would end the first run's sign-in). Phases: the schema's examples, coverage (each parameter's edges)
and fuzzing (--max-examples an operation, going on after failures); not the stateful phase, which has no links to
follow here. It prints, per route, how many requests the server answered (from its own /metrics counters), the
failures per check with a request that shows each, and the time taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SERVER = os.environ.get("FUZZ_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
PATIENT_USERNAME = "fuzz_patient"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway account in a throwaway database
LOGOUT_PATH = "/api/v1/auth/logout/"
# The checks whose failures the issue counts; any other failing check also fails the run.
SERVER_ERROR_CHECKS = {"not_a_server_error"}
SCHEMA_CHECKS = {"response_schema_conformance"}
UNDOCUMENTED_CHECKS = {"status_code_conformance"}
# Reported but not failing the run (unless --strict): whether the server accepts every request the schema allows
# and refuses every one it does not. Some rules cannot be said in JSON Schema (a reading's time within the last
# year, diastolic below systolic, `since` before `until`, a batch that answers each bad item on its own).
ADVISORY_CHECKS = {"positive_data_acceptance", "negative_data_rejection"}
SCHEMATHESIS_CONFIG = REPO / ".ci" / "schemathesis.toml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped on exit (its connections ended first)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_environment(database_url: str, var_dir: Path) -> dict[str, str]:
    (var_dir.parent / "metrics").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.base",
        "DATABASE_URL": database_url,
        # Keys, artifacts and the sign-in cache of this run only.
        "CLINAIOPS_VAR_DIR": str(var_dir),
        # A run takes longer than the 15-minute access token; a 401 half-way would hide everything after it.
        "JWT_ACCESS_MINUTES": "240",
        # Only errors (a 500 logs its traceback); every refused request logs a warning otherwise.
        "LOG_LEVEL": "ERROR",
        # The app's own request counters (clinaiops/ops/metrics.py), which say how many requests each route took.
        "PROMETHEUS_MULTIPROC_DIR": str(var_dir.parent / "metrics"),
        "PYTHONUNBUFFERED": "1",
    }


SEED = """
import django
django.setup()
from django.contrib.auth.hashers import make_password
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import Role, User
from datetime import UTC, date, datetime

password = make_password({password!r})
team = CareTeam.objects.create(name="Fuzz care team")
clinician = User.objects.create(username="fuzz_clinician", role=Role.CLINICIAN, printed_name="Fuzz Clinician",
                                password=password)
team.members.add(clinician)
user = User.objects.create(username={username!r}, role=Role.PATIENT, password=password)
Patient.objects.create(
    user=user, code="P-FUZZ", care_team=team, given_name="Ada", family_name="Fuzz", mrn="F0000001",
    date_of_birth=date(1962, 3, 14), sex="female", birth_year=1962, race_ethnicity="white", skin_tone=3,
    current_step=2, target_sbp=130, target_dbp=80, enrolled_at=datetime(2026, 1, 1, tzinfo=UTC),
)
# A device gateway (issue 12's FHIR ingest) where the role exists: a service account of the same care team.
gateway_role = getattr(Role, "DEVICE_GATEWAY", None)
if gateway_role is not None:
    team.members.add(User.objects.create(username="fuzz_gateway", role=gateway_role, password=password))
    print("seeded: a device gateway")
print("seeded: a care team, a clinician, a patient")
"""


def run_checked(command: list[str], env: dict[str, str], what: str) -> None:
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"{what} failed ({done.returncode})")
    print(f"{what}: {time.monotonic() - started:.0f} s {done.stdout.strip()}".rstrip())


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    # fmt: off
    command = [
        str(VENV_BIN / "gunicorn"), "-c", "python:clinaiops.gunicorn_config", "clinaiops.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", env.get("FUZZ_GUNICORN_WORKERS", "2"), "--log-level", "warning",
    ]
    # fmt: on
    log = log_path.open("ab")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/schema/", timeout=5) as answer:  # noqa: S310 - our own
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; its log: {log_path}")
            time.sleep(0.5)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


_RESPONSES = re.compile(r"^clinaiops_http_responses_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")


def responses_by_route(base: str) -> Counter[tuple[str, str, str]]:
    """The server's own count of answers, per (route name, method, status class), from /metrics (loopback only)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as answer:  # noqa: S310 - our own server
        text = answer.read().decode()
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        match = _RESPONSES.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
            key = (labels.get("view", "?"), labels.get("method", "?"), labels.get("status_class", "?"))
            counts[key] += int(float(match.group("value")))
    return counts


def print_route_counts(before: Counter[tuple[str, str, str]], after: Counter[tuple[str, str, str]]) -> None:
    """Requests per route and method; the one or two probes of a method a route does not take (405) in one line."""
    delta = after - before
    routes = sorted({(view, method) for view, method, _ in delta})
    probes = {route: sum(delta[(*route, cls)] for cls in ("2xx", "3xx", "4xx", "5xx")) for route in routes}
    small = [route for route in routes if probes[route] <= 2]
    if small:
        print(f"    {sum(probes[route] for route in small)} requests in probes of 1 or 2 (other methods, 405)")
    for view, method in (route for route in routes if route not in small):
        by_class = {
            cls: delta[(view, method, cls)] for cls in ("2xx", "3xx", "4xx", "5xx") if delta[(view, method, cls)]
        }
        total = sum(by_class.values())
        print(f"    {method:6} {view:40} {total:6}  " + " ".join(f"{cls}:{n}" for cls, n in by_class.items()))


def sign_in(base: str) -> str:
    body = json.dumps({"username": PATIENT_USERNAME, "password": PASSWORD}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{base}/api/v1/auth/token/", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return str(json.load(answer)["access"])


@dataclass
class RunCounts:
    """What a run did, from schemathesis' ndjson events: the operations and cases, the responses by status, and
    each failing check once per distinct failure (check, operation, title, message), as schemathesis counts them."""

    operations: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def absorb(self, other: RunCounts) -> None:
        self.operations |= other.operations
        self.cases |= other.cases
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)

    def failing(self, checks: set[str] | None = None) -> Counter[str]:
        return Counter(name for (name, _, _) in self.failures if checks is None or name in checks)


def counts_from_ndjson(path: Path) -> RunCounts:
    counts = RunCounts()
    for line in path.read_text().splitlines():
        event = json.loads(line) if line.strip() else {}
        scenario = event.get("ScenarioFinished")
        if not scenario:
            continue
        recorder = scenario.get("recorder") or {}
        cases = recorder.get("cases") or {}
        interactions = recorder.get("interactions") or {}
        for case_id, case in cases.items():
            value = case.get("value") or {}
            operation = f"{value.get('method', '?')} {value.get('path', '?')}"
            counts.cases.add(f"{scenario.get('suite_id')}:{case_id}")
            if value.get("method") in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                counts.operations.add(recorder.get("label") if scenario.get("phase") != "stateful" else operation)
            response = (interactions.get(case_id) or {}).get("response") or {}
            if "status_code" in response:
                counts.statuses[f"{operation} {response['status_code']}"] += 1
        for case_id, checks in (recorder.get("checks") or {}).items():
            value = (cases.get(case_id) or {}).get("value") or {}
            operation = f"{value.get('method', '?')} {value.get('path', '?')}"
            for check in checks or []:
                if check.get("status") == "success":
                    continue
                failure = ((check.get("failure_info") or {}).get("failure")) or {}
                key = (str(check.get("name")), operation, f"{failure.get('title')}: {failure.get('message')}")
                if key not in counts.failures:
                    response = (interactions.get(case_id) or {}).get("response") or {}
                    counts.failures[key] = _example(value, response)
    counts.operations.discard(None)  # type: ignore[arg-type]
    return counts


def server_tracebacks(log: str) -> list[str]:
    """Each traceback in the server's log, with the line before it (which request) and its last lines."""
    blocks: list[str] = []
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((i for i in range(index + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), index)
            tail = lines[max(index + 1, end - 12) : end + 1]
            blocks.append("\n".join([*lines[max(0, index - 1) : index + 1], *tail]))
    return blocks


def _example(case: dict[str, Any], response: dict[str, Any]) -> str:
    """The request and the answer of a failure, short: enough to reproduce it."""
    import base64

    sent = {key: case[key] for key in ("query", "body", "headers") if case.get(key)}
    sent.get("headers", {}).pop("Authorization", None)
    body = response.get("content") or response.get("body") or ""
    if isinstance(body, dict) and "$base64" in body:
        body = base64.b64decode(body["$base64"]).decode(errors="replace")
    sent_text = json.dumps(sent, default=str, ensure_ascii=True)[:300]
    return f"sent {sent_text} -> {response.get('status_code')} {str(body)[:300]}"


def schemathesis_run(
    base: str, token: str, *, max_examples: int, report_dir: Path, only_logout: bool, seed: int | None
) -> tuple[int, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    ndjson = report_dir / "events.ndjson"
    config = ["--config-file", str(SCHEMATHESIS_CONFIG)] if SCHEMATHESIS_CONFIG.exists() else []
    # fmt: off
    command = [
        str(VENV_BIN / "schemathesis"), *config, "run", f"{base}/api/v1/schema/", "--url", base,
        "--checks", "all", "--max-examples", str(max_examples),
        # Go on after a failure, so that every operation gets its examples, not just those before the first one.
        "--continue-on-failure",
        # Examples from the schema, the coverage of each parameter's edges, then the fuzzing (--max-examples an
        # operation); not the stateful phase, which has no links to follow in this schema and doubled the time.
        "--phases", os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing"),
        "--header", f"Authorization: Bearer {token}",
        "--report", "ndjson,junit", "--report-dir", str(report_dir), "--report-ndjson-path", str(ndjson),
        "--workers", os.environ.get("FUZZ_SCHEMATHESIS_WORKERS", "2"),
        "--no-color", "--suppress-health-check", "all", "--request-timeout", "60",
        # No example database (.schemathesis/ in the clone): each run starts afresh, reproducible from its seed.
        "--generation-database", "none",
        "--include-path" if only_logout else "--exclude-path", LOGOUT_PATH,
    ]
    # fmt: on
    if seed is not None:
        command += ["--seed", str(seed)]
    with (report_dir / "output.txt").open("w") as log:
        done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    return done.returncode, ndjson


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "100")))
    parser.add_argument("--database-prefix", default=os.environ.get("FUZZ_DATABASE_PREFIX", "clinaiops_fuzz"))
    parser.add_argument("--keep-report", type=Path, default=None, help="copy schemathesis' reports here")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--strict", action="store_true", help="fail on the advisory checks too")
    args = parser.parse_args()

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="clinaiops-fuzz-"))
    total = RunCounts()
    exit_codes: list[int] = []
    server_log = ""
    try:
        with fresh_database(args.database_prefix) as database_url:
            env = app_environment(database_url, work / "var")
            python = str(VENV_BIN / "python")
            run_checked([python, "manage.py", "migrate", "--verbosity", "0"], env, "migrate")
            run_checked([python, "-c", SEED.format(password=PASSWORD, username=PATIENT_USERNAME)], env, "seed")
            with gunicorn(env, _free_port(), work / "gunicorn.log") as base:
                print(f"app: {base} (gunicorn, database {database_url.rsplit('/', 1)[-1]})")
                # Two sign-ins up front (the token endpoint is throttled, and the run itself spends the budget).
                tokens = {"operations": sign_in(base), "logout": sign_in(base)}
                for name, token in tokens.items():
                    run_started = time.monotonic()
                    before = responses_by_route(base)
                    code, ndjson = schemathesis_run(
                        base, token, max_examples=args.max_examples, report_dir=work / name,
                        only_logout=name == "logout", seed=args.seed,
                    )  # fmt: skip
                    exit_codes.append(code)
                    counts = counts_from_ndjson(ndjson) if ndjson.exists() else RunCounts()
                    print(
                        f"schemathesis ({name}): exit {code}, {len(counts.operations)} operations, "
                        f"{len(counts.cases)} cases, {time.monotonic() - run_started:.0f} s"
                    )
                    total.absorb(counts)
                    print("    requests the server answered, per route (its own counters):")
                    print_route_counts(before, responses_by_route(base))
                    output = (work / name / "output.txt").read_text(errors="replace")
                    if not ndjson.exists() or "Traceback" in output:
                        print(output[-3000:])
            server_log = (work / "gunicorn.log").read_text(errors="replace") if (work / "gunicorn.log").exists() else ""
    finally:
        if args.keep_report is not None:
            args.keep_report.mkdir(parents=True, exist_ok=True)
            for name in ("operations", "logout"):
                if (work / name).exists():
                    shutil.copytree(work / name, args.keep_report / name, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)

    failing = total.failing()
    server_errors = sum(failing[name] for name in SERVER_ERROR_CHECKS)
    schema_violations = sum(failing[name] for name in SCHEMA_CHECKS)
    undocumented = sum(failing[name] for name in UNDOCUMENTED_CHECKS)
    print(f"operations: {len(total.operations)}; cases: {len(total.cases)}; max examples each: {args.max_examples}")
    print(f"server errors: {server_errors}")
    print(f"response-schema violations: {schema_violations}")
    print(f"undocumented status codes: {undocumented}")
    for name, count in sorted(failing.items()):
        advisory = "" if name not in ADVISORY_CHECKS or args.strict else " (reported, not failing the run: see below)"
        print(f"failing check {name}: {count} distinct{advisory}")
    for (name, operation, message), example in sorted(total.failures.items()):
        print(f"  - {name} on {operation}: {message.splitlines()[0]} | {' '.join(message.splitlines()[1:])[:200]}")
        print(f"      {example}")
    tracebacks = server_tracebacks(server_log)
    for traceback in tracebacks[:5]:
        print(f"the server logged:\n{traceback}")
    print(f"time: {time.monotonic() - started:.0f} s")
    blocking = {name for name in failing if args.strict or name not in ADVISORY_CHECKS}
    return 1 if blocking or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
