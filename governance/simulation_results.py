"""The latest results of `manage.py simulate` (issue 10), read from SIMULATION_RESULTS_PATH for the portal's
simulation page and the model card. Read-only: the file is written by the command, never by the web app.

The command and its figures live in fixtures (fixtures/simulation_outcomes.py defines them); this module only
turns its JSON into frozen dataclasses with words for people, and says plainly when the file is missing or
unreadable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

SCHEMA = "clinaiops-simulation/1"
ARM_ORDER = ("usual_care", "clinician_only", "clinaiops")
ARM_SHORT_LABELS = {"usual_care": "Usual care", "clinician_only": "Clinician-only", "clinaiops": "ClinAIOps"}
SUBGROUP_LABELS = {"skin_tone": "Skin tone (Fitzpatrick)", "sex": "Sex", "age_band": "Age band"}
DEFINITION_LABELS = {
    "true_bp": "True blood pressure", "at_target_end": "At target at the end", "time_in_range": "Time in range",
    "mean_sbp_change": "Change in systolic BP", "reviews_per_100_patient_weeks": "Reviews per 100 patient-weeks",
    "hypotension_events": "Hypotension days", "crisis_events": "Crisis days",
    "crisis_to_p0_seconds": "Crisis reading to alert", "autonomous_step_changes": "Step changes without review",
}  # fmt: skip
PRODUCE_COMMAND = "python manage.py simulate --patients 200 --days 180"


@dataclass(frozen=True)
class SubgroupRow:
    attribute: str
    group: str
    patients: int
    at_target_end: float
    time_in_range: float
    mean_sbp_change: float
    reviews_per_100_patient_weeks: float
    hypotension_events: int


@dataclass(frozen=True)
class ArmResult:
    key: str
    label: str
    short_label: str
    patients: int
    patient_days: int
    at_target_end: float
    time_in_range: float
    mean_sbp_change: float
    reviews_per_100_patient_weeks: float
    hypotension_events: int
    crisis_events: int
    crisis_alerts: int
    crisis_to_p0_max_seconds: float | None
    autonomous_step_changes: int
    autonomous_outside_bounds: int
    office_visits: int
    subgroups: tuple[SubgroupRow, ...]


@dataclass(frozen=True)
class GoalResult:
    name: str
    statement: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class SimulationResults:
    generated_at: datetime
    patients: int
    days: int
    seed: int
    history_patients: int
    history_days: int
    model_sha256: str
    fairness_gate_enforced: bool
    patient_days_per_second: float | None
    seconds: float
    arms: tuple[ArmResult, ...]
    goals: tuple[GoalResult, ...]
    goal_passed: bool
    definitions: dict[str, str]

    def arm(self, key: str) -> ArmResult:
        return next(a for a in self.arms if a.key == key)


@dataclass(frozen=True)
class SimulationState:
    """The results, or why there are none (`problem`, in words), and the command that produces them."""

    results: SimulationResults | None
    problem: str
    path: Path
    command: str = PRODUCE_COMMAND


def _pct(value: object) -> str:
    return f"{float(value):.0%}" if isinstance(value, int | float) else "n/a"  # type: ignore[arg-type]


def _goal_detail(name: str, n: dict[str, Any]) -> str:
    """The numbers behind a goal check, as a sentence."""
    if name == "control_non_inferior":
        return (f"At target: ClinAIOps {_pct(n['clinaiops'])}, clinician-only {_pct(n['clinician_only'])} "
                f"(tolerance {_pct(n['tolerance'])}).")  # fmt: skip
    if name == "reviews_at_most_30_percent":
        share = "no clinician-only reviews to compare with" if n.get("share") is None else f"{_pct(n['share'])}"
        return (f"Reviews per 100 patient-weeks: ClinAIOps {n['clinaiops']:g}, clinician-only "
                f"{n['clinician_only']:g}; share {share} (bound {_pct(n['bound'])}).")  # fmt: skip
    if name == "beats_usual_care":
        return f"At target: ClinAIOps {_pct(n['clinaiops'])}, usual care {_pct(n['usual_care'])}."
    if name == "no_more_safety_events":
        events = n["safety_events"]
        return (f"Hypotension and crisis days: ClinAIOps {events['clinaiops']}, clinician-only "
                f"{events['clinician_only']}, usual care {events['usual_care']}.")  # fmt: skip
    if name == "subgroup_gap":
        if not n.get("judged_groups"):
            return "No subgroup was large enough to judge."
        worst = (f"largest shortfall {_pct(n['gap'])} ({SUBGROUP_LABELS.get(n['attribute'], n['attribute'])} "
                 f"{n['group']})" if n.get("attribute") else "no subgroup below the rest of the arm")  # fmt: skip
        return f"{n['judged_groups']} groups judged; {worst}; margin {_pct(n['margin'])}."
    return ""


def _subgroups(data: dict[str, Any]) -> tuple[SubgroupRow, ...]:
    rows = []
    for attribute in SUBGROUP_LABELS:
        for group, f in data.get(attribute, {}).items():
            rows.append(
                SubgroupRow(
                    attribute=SUBGROUP_LABELS[attribute],
                    group=group,
                    patients=int(f["patients"]),
                    at_target_end=float(f["at_target_end"]),
                    time_in_range=float(f["time_in_range"]),
                    mean_sbp_change=float(f["mean_sbp_change"]),
                    reviews_per_100_patient_weeks=float(f["reviews_per_100_patient_weeks"]),
                    hypotension_events=int(f["hypotension_events"]),
                )
            )
    return tuple(rows)


def _arm(key: str, a: dict[str, Any]) -> ArmResult:
    latency = a.get("crisis_to_p0_seconds") or {}
    return ArmResult(
        key=key, label=str(a["label"]), short_label=ARM_SHORT_LABELS[key], patients=int(a["patients"]),
        patient_days=int(a["patient_days"]),
        at_target_end=float(a["at_target_end"]), time_in_range=float(a["time_in_range"]),
        mean_sbp_change=float(a["mean_sbp_change"]),
        reviews_per_100_patient_weeks=float(a["reviews_per_100_patient_weeks"]),
        hypotension_events=int(a["hypotension_events"]), crisis_events=int(a["crisis_events"]),
        crisis_alerts=int(a.get("crisis_alerts", 0)),
        crisis_to_p0_max_seconds=None if latency.get("max") is None else float(latency["max"]),
        autonomous_step_changes=int(a["autonomous_step_changes"]),
        autonomous_outside_bounds=int(a.get("autonomous_outside_bounds", 0)),
        office_visits=int(a.get("office_visits", 0)), subgroups=_subgroups(a.get("by_subgroup", {})),
    )  # fmt: skip


def simulation_results_parse(data: dict[str, Any]) -> SimulationResults:
    """The results in a parsed results file; KeyError, TypeError or ValueError when it lacks a field."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} file")
    config, model = data["config"], data["model"]
    return SimulationResults(
        generated_at=datetime.fromisoformat(data["generated_at"]),
        patients=int(config["patients"]),
        days=int(config["days"]),
        seed=int(config["seed"]),
        history_patients=int(config["history_patients"]),
        history_days=int(config["history_days"]),
        model_sha256=str(model["sha256"]),
        fairness_gate_enforced=bool(model["fairness_gate_enforced"]),
        patient_days_per_second=data["throughput"].get("patient_days_per_second"),
        seconds=float(data["seconds"]),
        arms=tuple(_arm(key, data["arms"][key]) for key in ARM_ORDER),
        goals=tuple(
            GoalResult(
                name=c["name"],
                statement=c["statement"],
                passed=bool(c["passed"]),
                detail=_goal_detail(c["name"], c["numbers"]),
            )
            for c in data["goal"]["checks"]
        ),
        goal_passed=bool(data["goal"]["passed"]),
        definitions={DEFINITION_LABELS.get(k, k.replace("_", " ")): str(v) for k, v in data["definitions"].items()},
    )


def simulation_results_latest(path: Path | None = None) -> SimulationState:
    """The results at SIMULATION_RESULTS_PATH (or `path`), or why there are none."""
    path = Path(path or settings.SIMULATION_RESULTS_PATH)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SimulationState(None, "No simulation has been run yet.", path)
    except (OSError, ValueError):
        return SimulationState(None, "The results file could not be read.", path)
    try:
        return SimulationState(simulation_results_parse(data), "", path)
    except (KeyError, TypeError, ValueError, AttributeError):
        return SimulationState(None, "The results file is from another version or incomplete; run it again.", path)


def simulation_card_section(*, model_sha256: str, path: Path | None = None) -> dict[str, Any]:
    """The model card's "Simulated clinical value" section: the latest results in words and numbers, or "not run".
    The simulation trains its own model on the simulated history, so the section says whether that is this card's
    version (same ONNX hash) or the same pipeline's."""
    state = simulation_results_latest(path)
    r = state.results
    if r is None:
        return {"run": False, "note": f"not run: {state.problem} `{state.command}` produces it"}
    return {
        "run": True,
        "generated_at": r.generated_at.isoformat(timespec="seconds"),
        "cohort": f"{r.patients} synthetic patients per arm (the same in each) for {r.days} days, seed {r.seed}; "
        f"the model trained on {r.history_patients} other patients' {r.history_days}-day clinician-titrated history",
        "model": "this version" if r.model_sha256 == model_sha256 else
        f"a model trained by the same pipeline in the simulation ({r.model_sha256[:12]}), not this version",
        "arms": [
            {"label": a.label, "at_target_end": f"{a.at_target_end:.1%}", "time_in_range": f"{a.time_in_range:.1%}",
             "mean_sbp_change": f"{a.mean_sbp_change:+.1f} mmHg",
             "reviews_per_100_patient_weeks": f"{a.reviews_per_100_patient_weeks:.1f}",
             "hypotension_events": a.hypotension_events, "crisis_events": a.crisis_events,
             "autonomous_step_changes": a.autonomous_step_changes}
            for a in r.arms
        ],
        "goals": [{"passed": g.passed, "statement": g.statement, "detail": g.detail} for g in r.goals],
        "goal_passed": r.goal_passed,
        "note": "simulated outcomes on the simulator's true blood pressure; not evidence from patients",
    }  # fmt: skip
