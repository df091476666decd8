"""`manage.py simulate` (issue 10): simulated patient-days per second through the real services, against the pure
cohort simulator's patient-days per second (fixtures.cohort, no services, no database) measured in the same run.

Figures:
- each monitoring arm (clinician-only, ClinAIOps) and the history phase: the patient-days of that phase over its
  seconds, as the command reports them (ingest, doses, symptoms, alerts, weekly evaluations, signed reviews and
  patient responses, audited), each against the baseline;
- the baseline: the same simulated days with `CohortSimulator.day` and `true_daytime_bp` for every patient-day and
  `clinician_decide` at every weekly checkpoint, in this process.

The command builds and deletes its own throwaway SQLite database, so this bench needs no database of its own and
touches none. Sizes: BENCH_SIMULATE_PATIENTS (40), BENCH_SIMULATE_DAYS (28), BENCH_SIMULATE_HISTORY_PATIENTS (100),
BENCH_SIMULATE_HISTORY_DAYS (60): the history must be long enough for the model to pass its gates.

    .venv/bin/python bench/bench_simulate.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.report import Figure, figures_print, machine, results_write

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = int(os.environ.get("BENCH_SIMULATE_PATIENTS", "40"))
DAYS = int(os.environ.get("BENCH_SIMULATE_DAYS", "28"))
HISTORY_PATIENTS = int(os.environ.get("BENCH_SIMULATE_HISTORY_PATIENTS", "100"))
HISTORY_DAYS = int(os.environ.get("BENCH_SIMULATE_HISTORY_DAYS", "60"))


def pure_simulator_rate(patients: int, days: int, seed: int = 7) -> float:
    """Patient-days per second of the simulator alone: every draw the command makes, none of the services."""
    from fixtures.cohort import CohortSimulator

    sim = CohortSimulator(seed=seed, n_patients=patients, start=datetime.now(UTC) - timedelta(days=days))
    steps = [p.initial_step for p in sim.profiles]
    started = time.perf_counter()
    for day in range(days):
        for index in range(patients):
            sim.true_daytime_bp(index, day, steps[index])
            sim_day = sim.day(index, day, steps[index])
            if day >= 7 and (day + index) % 7 == 0:
                cuff = [r for r in sim_day.readings if r.source == "cuff"] or list(sim_day.readings)
                mean_sbp = sum(r.systolic for r in cuff) / len(cuff) if cuff else 130.0
                mean_dbp = sum(r.diastolic for r in cuff) / len(cuff) if cuff else 80.0
                decision = sim.clinician_decide(
                    index=index, day=day, current_step=steps[index], mean_sbp=mean_sbp, mean_dbp=mean_dbp,
                    target_sbp=sim.profiles[index].target_sbp, target_dbp=sim.profiles[index].target_dbp,
                    low_readings=0, proposed_step=None,
                )  # fmt: skip
                if sim.patient_follows(index, day):
                    steps[index] = decision.to_step
    return patients * days / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="clinaiops-bench-simulate-") as tmp:
        out = Path(tmp) / "results.json"
        command = [
            sys.executable, str(ROOT / "manage.py"), "simulate", "--patients", str(PATIENTS), "--days", str(DAYS),
            "--history-patients", str(HISTORY_PATIENTS), "--history-days", str(HISTORY_DAYS), "--out", str(out),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS_MODULE")}
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        wall = time.monotonic() - started
        results = json.loads(out.read_text())
    baseline = pure_simulator_rate(PATIENTS, DAYS)
    phases = results["throughput"]["by_phase"]
    figures = [
        Figure("simulate", f"{name.replace('_', '-')} phase through the services", float(p["patient_days"]) /
               float(p["seconds"]), "patient-days/s", baseline=baseline, baseline_name="pure simulator",
               detail={"patient_days": p["patient_days"], "seconds": p["seconds"]})
        for name, p in phases.items() if name in ("history", "clinician_only", "clinaiops") and p["seconds"]
    ]  # fmt: skip
    figures.append(
        Figure("simulate", "whole command, wall clock", float(results["throughput"]["patient_days"]) / wall,
               "patient-days/s", baseline=baseline, baseline_name="pure simulator",
               detail={"patient_days": results["throughput"]["patient_days"], "seconds": round(wall, 1)})
    )  # fmt: skip
    figures_print(f"=== simulate: {PATIENTS} patients × {DAYS} days per arm, history {HISTORY_PATIENTS} × "
                  f"{HISTORY_DAYS} ===", figures)  # fmt: skip
    path = results_write(
        "simulate.json", {"machine": machine(), "figures": [f.as_dict() for f in figures], "goal": results["goal"]}
    )
    print(f"  written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
