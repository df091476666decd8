"""Ingest sync bench (issue 12 "Proof"): offline batch sync against single POSTs, and FHIR Bundle ingest against
native JSON, readings/s each, in the same run against the same gunicorn.

- **Batch:** `POST /api/v1/readings/batch/` with `{"readings": [500 readings]}`, against 500 single
  `POST /api/v1/readings/` one after another on one keep-alive connection (a phone syncing without the batch).
- **FHIR:** `POST /api/v1/fhir/` with `transaction` Bundles of the same readings as US Core Blood Pressure
  Observations (LOINC 85354-9, components 8480-6 / 8462-4 in `mm[Hg]`, `ifNoneExist` on the identifier), each
  Bundle as large as fits the 256 KiB body limit (500 Observations are ~450 KB: 413), against the native batch
  of the same readings. When the FHIR endpoint is not routed (it answers 404 or 405),
  that figure is skipped with a message and the batch figure still stands.

Each figure uses a patient of its own (a batch and its baseline never dedupe against each other), and every
reading has a time of its own within the last day. The rounds alternate the three ways, so a busy stretch of the
shared machine hits all of them; the figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import pg
from harness.report import Figure, figures_print, machine, results_write
from harness.server import ROOT, Gunicorn, environment_for


def _setup(database: str) -> None:
    os.environ["DATABASE_URL"] = pg.db_url(database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinaiops.settings.base"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _accounts(n: int) -> list[tuple[str, str]]:
    """(access token, patient code) for n patients, minted directly (signing in is not what is measured)."""
    from clinaiops.api.auth_services import access_token_issue
    from clinaiops.care.models import Patient

    patients = list(Patient.objects.select_related("user").order_by("-pk")[:n])
    return [(access_token_issue(p.user, lifetime=timedelta(hours=3)), p.code) for p in patients]


def _readings(n: int, offset: int) -> list[dict[str, Any]]:
    """n readings, each at a time of its own (seconds apart, `offset` keeps rounds apart) within the last day."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    out = []
    for i in range(n):
        taken = now - timedelta(minutes=10, seconds=offset + i * 13)
        out.append({"taken_at": taken.isoformat().replace("+00:00", "Z"), "systolic": 118 + i % 24,
                    "diastolic": 74 + i % 12, "heart_rate": 60 + i % 25, "source": "cuff"})  # fmt: skip
    return out


def _bp_observation(reading: dict[str, Any], patient_code: str, identifier: str) -> dict[str, Any]:
    """A US Core Blood Pressure Observation (vital-signs category, LOINC panel and components, UCUM mm[Hg])."""

    def component(code: str, display: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": "urn:clinaiops:bench", "value": identifier}],
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "85354-9",
                    "display": "Blood pressure panel with all children optional",
                }
            ],
            "text": "Blood pressure systolic and diastolic",
        },
        "subject": {"reference": f"Patient/{patient_code}"},
        "effectiveDateTime": reading["taken_at"],
        "component": [
            component("8480-6", "Systolic blood pressure", reading["systolic"]),
            component("8462-4", "Diastolic blood pressure", reading["diastolic"]),
        ],
    }


def _bundle(readings: list[dict[str, Any]], patient_code: str, tag: str) -> dict[str, Any]:
    entries = []
    for i, reading in enumerate(readings):
        identifier = f"{tag}-{i}"
        entries.append({
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            "resource": _bp_observation(reading, patient_code, identifier),
            "request": {"method": "POST", "url": "Observation",
                        "ifNoneExist": f"identifier=urn:clinaiops:bench|{identifier}"},
        })  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class _Client:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.token = token

    def post(
        self, path: str, body: Any, content_type: str = "application/json", key: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        self.conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def _singles(client: _Client, readings: list[dict[str, Any]]) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    began = time.perf_counter()
    for reading in readings:
        status, _ = client.post("/api/v1/readings/", reading)
        statuses[status] = statuses.get(status, 0) + 1
    return len(readings) / (time.perf_counter() - began), statuses


def _batch(client: _Client, readings: list[dict[str, Any]], key: str | None = None) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    status, body = client.post("/api/v1/readings/batch/", {"readings": readings}, key=key)
    seconds = time.perf_counter() - began
    answer = json.loads(body) if body else {}
    outcome = {"status": status, **{k: answer.get(k) for k in ("created", "duplicate", "refused")}}
    if status != 200 or answer.get("created") != len(readings):
        print(f"  WARNING: batch answered {outcome}", flush=True)
    return len(readings) / seconds, outcome


BODY_LIMIT = 250 * 1024  # under DATA_UPLOAD_MAX_MEMORY_SIZE (256 KiB by default), which answers 413 past it


def _bundles(readings: list[dict[str, Any]], patient_code: str, tag: str) -> list[dict[str, Any]]:
    """The readings as transaction Bundles, each as large as fits under the body limit (a Bundle of 500 US Core
    BP Observations is about 450 KB, over Django's 256 KiB default: 413)."""
    whole = _bundle(readings, patient_code, tag)
    per_entry = len(json.dumps(whole)) / max(1, len(readings))
    size = max(1, int(BODY_LIMIT / per_entry) - 1)
    return [_bundle(readings[i : i + size], patient_code, f"{tag}-{i}") for i in range(0, len(readings), size)]


def _fhir(client: _Client, bundles: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    outcome: dict[str, Any] = {"bundles": len(bundles), "statuses": {}, "created": 0, "entries": 0}
    began = time.perf_counter()
    for bundle in bundles:
        status, body = client.post("/api/v1/fhir/", bundle, content_type="application/fhir+json")
        outcome["statuses"][status] = outcome["statuses"].get(status, 0) + 1
        try:
            answer = json.loads(body)
            statuses = [e.get("response", {}).get("status", "") for e in answer.get("entry", [])]
            outcome["entries"] += len(statuses)
            outcome["created"] += sum(1 for s in statuses if s.startswith("201"))
            if answer.get("resourceType") == "OperationOutcome":
                outcome["issue"] = [i.get("diagnostics") or i.get("code") for i in answer.get("issue", [])][:3]
        except (ValueError, AttributeError):
            pass
    seconds = time.perf_counter() - began
    return sum(len(b["entry"]) for b in bundles) / seconds, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--readings", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="ingest_sync.json")
    args = parser.parse_args()

    _setup(args.db)
    accounts = _accounts(4 * args.rounds + 1)
    work = Path(tempfile.mkdtemp(prefix="clinaiops-bench-sync-"))
    (work / "metrics").mkdir()
    env = environment_for(
        "clinaiops.settings.production",
        {
            "DATABASE_URL": pg.db_url(args.db), "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "CELERY_BROKER_URL": os.environ["BENCH_BROKER_URL"],
        },
    )  # fmt: skip
    print(f"ingest sync bench: {args.readings} readings per figure × {args.rounds} rounds, gunicorn sync × 2; logs "
          f"in {work}", flush=True)  # fmt: skip
    rates: dict[str, list[float]] = {"single": [], "batch": [], "batch_idempotent": [], "fhir": []}
    outcomes: dict[str, list[Any]] = {"single": [], "batch": [], "batch_idempotent": [], "fhir": []}
    fhir_skip = ""
    with Gunicorn("clinaiops.wsgi", env=env, config="python:clinaiops.ops.gunicorn", log=work / "product.log") as web:
        # Warm both workers (a worker's first requests import and cache what later ones reuse).
        warm_token, _ = accounts[-1]
        warm = _Client(web.port, warm_token)
        for reading in _readings(8, 900_000):
            warm.post("/api/v1/readings/", reading)
        probe_status, _ = warm.post("/api/v1/fhir/", {"resourceType": "Bundle", "type": "transaction", "entry": []},
                                    content_type="application/fhir+json")  # fmt: skip
        if probe_status in (404, 405):
            fhir_skip = (f"POST /api/v1/fhir/ answered {probe_status}: the FHIR Bundle endpoint (issue 12) is not "
                         "routed in this tree, so the FHIR figure is skipped")  # fmt: skip
            print(f"  SKIPPED: {fhir_skip}", flush=True)
        for round_ in range(args.rounds):
            offset = round_ * args.readings * 13 + 1000
            single_acc, batch_acc, fhir_acc, keyed_acc = accounts[4 * round_ : 4 * round_ + 4]
            readings = _readings(args.readings, offset)
            rate, statuses = _singles(_Client(web.port, single_acc[0]), readings)
            rates["single"].append(rate)
            outcomes["single"].append(statuses)
            rate, outcome = _batch(_Client(web.port, batch_acc[0]), readings)
            rates["batch"].append(rate)
            outcomes["batch"].append(outcome)
            # With an Idempotency-Key the whole batch is one transaction (clinaiops/api/idempotency.py), so the
            # ledger's lock is held from its first reading's event to the batch's commit.
            rate, keyed = _batch(_Client(web.port, keyed_acc[0]), readings, key=f"bench-{os.getpid()}-{round_}")
            rates["batch_idempotent"].append(rate)
            outcomes["batch_idempotent"].append(keyed)
            line = (f"  round {round_ + 1}: single POSTs {rates['single'][-1]:.1f}/s {statuses}; batch "
                    f"{rates['batch'][-1]:.1f}/s {outcome}; with Idempotency-Key {rate:.1f}/s {keyed}")  # fmt: skip
            if not fhir_skip:
                rate, outcome = _fhir(_Client(web.port, fhir_acc[0]), _bundles(readings, fhir_acc[1], f"r{round_}"))
                outcomes["fhir"].append(outcome)
                if outcome["created"] == len(readings):
                    rates["fhir"].append(rate)
                else:  # a rate of refusals is not an ingest rate
                    print(f"  WARNING: the FHIR Bundles stored {outcome['created']} of {len(readings)}: {outcome}")
                line += f"; FHIR Bundle {rate:.1f}/s {outcome}"
            print(line, flush=True)
        rss = web.worker_rss_mb()

    single, batch = statistics.median(rates["single"]), statistics.median(rates["batch"])
    detail = {"rates": rates, "outcomes": outcomes, "readings": args.readings, "rounds": args.rounds,
              "web_rss_mb": rss, "load_average": os.getloadavg()[0]}  # fmt: skip
    figures = [
        Figure("sync", f"batch sync of {args.readings} readings", batch, "readings/s", single,
               f"{args.readings} single POSTs", detail=detail),
        Figure("sync", f"batch sync of {args.readings} readings, with Idempotency-Key (one transaction)",
               statistics.median(rates["batch_idempotent"]), "readings/s", single, f"{args.readings} single POSTs"),
    ]  # fmt: skip
    if rates["fhir"]:
        fhir = statistics.median(rates["fhir"])
        bundles = outcomes["fhir"][0]["bundles"]
        figures.append(
            Figure(
                "sync",
                f"FHIR: {args.readings} BP Observations in {bundles} transaction Bundles",
                fhir,
                "readings/s",
                batch,
                "native JSON batch",
                detail={"vs_single_posts": fhir / single, "bundles": bundles},
            )
        )
    figures_print("ingest sync bench (same run, same machine)", figures)
    if fhir_skip:
        print(f"  FHIR figure skipped: {fhir_skip}")
    path = results_write(args.out, {"machine": machine(), "figures": [f.as_dict() for f in figures],
                                    "details": detail, "skipped": fhir_skip})  # fmt: skip
    print(f"  written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
