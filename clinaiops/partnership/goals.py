"""Lifestyle goals: what each kind measures, in which unit, which way is better, and how progress is judged.

Pure: the standard library only, no Django. The models store a goal's kind and target; everything a person reads
about a goal (its unit, its wording, whether it is met) comes from here, in one place.

Where the progress comes from:
- adherence: the dose log (clinaiops.care DoseLog), the share of logged days with the dose taken;
- sodium, activity and sleep: the patient's own check-ins (GoalCheckIn), one value a day;
- none of them: "no data yet", never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from clinaiops.partnership.followup import FOLLOWUP_WINDOW_DAYS

# One window for goals and follow-up, so the follow-up's readings serve the BP goal too (one query, not two).
PROGRESS_WINDOW_DAYS = FOLLOWUP_WINDOW_DAYS


class GoalKindCode(StrEnum):
    SODIUM = "sodium"
    ACTIVITY = "activity"
    SLEEP = "sleep"
    ADHERENCE = "adherence"


class Direction(StrEnum):
    AT_MOST = "at_most"
    AT_LEAST = "at_least"


@dataclass(frozen=True)
class GoalSpec:
    label: str
    unit: str  # stored with the goal, shown after the number
    checkin_unit: str  # what one daily check-in reports
    direction: Direction
    minimum: Decimal
    maximum: Decimal
    # "{value}" is the target with its unit, in the patient's words.
    patient_wording: str


GOAL_SPECS: dict[GoalKindCode, GoalSpec] = {
    GoalKindCode.SODIUM: GoalSpec(
        "Salt (sodium)", "mg a day", "mg that day", Direction.AT_MOST, Decimal(500), Decimal(5000),
        "Keep salt (sodium) to at most {value}",
    ),
    GoalKindCode.ACTIVITY: GoalSpec(
        "Physical activity", "minutes a week", "minutes that day", Direction.AT_LEAST, Decimal(10), Decimal(1500),
        "Be active for at least {value}",
    ),
    GoalKindCode.SLEEP: GoalSpec(
        "Sleep", "hours a night", "hours that night", Direction.AT_LEAST, Decimal(4), Decimal(12),
        "Sleep at least {value}",
    ),
    GoalKindCode.ADHERENCE: GoalSpec(
        "Taking your medicine", "% of doses", "", Direction.AT_LEAST, Decimal(50), Decimal(100),
        "Take at least {value}",
    ),
}  # fmt: skip

# A day's check-in outside these is not plausible (a typo, or the wrong unit) and is refused.
CHECKIN_LIMITS: dict[GoalKindCode, tuple[Decimal, Decimal]] = {
    GoalKindCode.SODIUM: (Decimal(0), Decimal(20000)),
    GoalKindCode.ACTIVITY: (Decimal(0), Decimal(1440)),
    GoalKindCode.SLEEP: (Decimal(0), Decimal(24)),
}


def quantity(value: Decimal | float, unit: str) -> str:
    """A number as a person writes it: "1,500 mg a day", "7.5 hours a night", "80 % of doses"."""
    number = Decimal(str(value)).quantize(Decimal("0.1"))
    shown = f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.1f}"
    return f"{shown}{'' if unit.startswith('%') else ' '}{unit}" if unit else shown


class ProgressStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


STATUS_LABELS = {
    ProgressStatus.MET: "On track",
    ProgressStatus.NOT_MET: "Not yet",
    ProgressStatus.NO_DATA: "No data yet",
}


@dataclass(frozen=True)
class GoalProgress:
    """One goal's progress over the window, ready to show: `current` and `basis` are sentences, not codes."""

    kind: str
    label: str
    target: str
    patient_target: str
    status: ProgressStatus
    current: str
    basis: str
    # 0..1: how far the current value is towards the target (1 = met), for a progress bar; None without data.
    fraction: float | None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def _towards(current: float, target: float, direction: Direction) -> float:
    if direction is Direction.AT_LEAST:
        return max(0.0, min(1.0, current / target)) if target > 0 else 1.0
    return 1.0 if current <= target else max(0.0, min(1.0, target / current))


def _met(current: float, target: float, direction: Direction) -> bool:
    return current >= target if direction is Direction.AT_LEAST else current <= target


def lifestyle_progress(kind: GoalKindCode, target: Decimal, *, observed: float | None, basis: str) -> GoalProgress:
    """Progress of one lifestyle goal, from the observed value in the goal's unit (None: no data)."""
    spec = GOAL_SPECS[kind]
    target_text = quantity(target, spec.unit)
    patient_target = spec.patient_wording.format(value=target_text)
    if observed is None:
        return GoalProgress(
            kind, spec.label, target_text, patient_target, ProgressStatus.NO_DATA, "No data yet", basis, None
        )
    met = _met(observed, float(target), spec.direction)
    return GoalProgress(
        kind=kind,
        label=spec.label,
        target=target_text,
        patient_target=patient_target,
        status=ProgressStatus.MET if met else ProgressStatus.NOT_MET,
        current=quantity(observed, spec.unit),
        basis=basis,
        fraction=_towards(observed, float(target), spec.direction),
    )


def checkin_observed(kind: GoalKindCode, values: Sequence[Decimal], *, days_covered: int) -> float | None:
    """The observed value in the goal's unit from daily check-ins: the daily mean for sodium and sleep; for
    activity the daily minutes summed and scaled to a week over the days the check-ins cover (at least 7, so one
    busy day is not called a busy week)."""
    if not values:
        return None
    total = float(sum(values))
    if kind is GoalKindCode.ACTIVITY:
        return total * 7 / max(days_covered, 7)
    return total / len(values)
