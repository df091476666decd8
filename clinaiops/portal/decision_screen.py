"""What the decision screen shows beside a proposal (issue 11, DESIGN §2 clinician–AI loop): the readings behind
the chart as a table, the symptoms, the regimen and adherence history, each SHAP factor next to the value the
model saw, and how many signature attempts are left. Reads only, through the apps' selectors; the view stays thin.

Every block says how old it is: the model's inputs are as of the proposal, the readings, symptoms and doses as of
the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from clinaiops.care.models import Patient, Reading, ReadingSource, RegimenChange, Symptom
from clinaiops.care.selectors import doses_recent, readings_recent, regimen_changes_for, symptoms_recent
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation
from clinaiops.portal.charts import BP_SERIES, BPPoint, bp_series_of
from governance.models import ApprovalPolicy
from inference.features import FEATURE_LABELS

READINGS_DAYS = 30
SYMPTOM_DAYS = 30
ADHERENCE_WEEKS = 4
REGIMEN_DAYS = 180

SOURCE_WORDS = dict(ReadingSource.choices)


# --- The model's inputs, in words and units ----------------------------------------------------------------


def _mmhg(value: float) -> str:
    return f"{value:.0f} mmHg"


def _signed_mmhg(value: float) -> str:
    return f"{value:+.0f} mmHg" if round(value) else "0 mmHg"


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def _count(noun: str) -> Callable[[float], str]:
    return lambda value: f"{value:.0f} {noun}{'' if round(value) == 1 else 's'}"


def _yes_no(value: float) -> str:
    return "yes" if value >= 0.5 else "no"


def _days_since(value: float) -> str:
    # The feature is capped at 60 days (inference.features): 60 means "60 days or more, or never changed".
    return "60 days or more" if value >= 60 else _count("day")(value)


_FEATURE_FORMATS: dict[str, Callable[[float], str]] = {
    "sbp_mean_7d": _mmhg,
    "dbp_mean_7d": _mmhg,
    "sbp_excess_7d": _signed_mmhg,
    "dbp_excess_7d": _signed_mmhg,
    "sbp_slope_14d": lambda v: f"{v:+.1f} mmHg a day",
    "sbp_sd_14d": _mmhg,
    "frac_above_target_14d": _percent,
    "frac_low_14d": _percent,
    "nocturnal_dip": _percent,
    "hr_mean_7d": lambda v: f"{v:.0f} beats a minute",
    "readings_7d": _count("reading"),
    "wearable_sbp_mean_7d": _mmhg,
    "wearable_sbp_sd_14d": _mmhg,
    "wearable_readings_7d": _count("reading"),
    "adherence_14d": _percent,
    "current_step": lambda v: f"step {v:.0f}",
    "days_since_change": _days_since,
    "age": _count("year"),
    "diabetes": _yes_no,
    "ckd": _yes_no,
}


def feature_value_words(feature: str, value: object) -> str:
    """A model input as a clinician reads it ("152 mmHg", "86 %", "yes"); a feature this table does not know yet
    is shown as a plain number, never as a raw float with three zeros."""
    if not isinstance(value, int | float):
        return "not recorded"
    formatter = _FEATURE_FORMATS.get(feature)
    if formatter is not None:
        return formatter(float(value))
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class FactorRow:
    label: str
    value: str
    contribution: str
    toward: bool  # pushed toward the proposed action


def factor_rows(rec: Recommendation) -> list[FactorRow]:
    """Each SHAP factor beside the feature's value at the proposal (Recommendation.features), in words."""
    features: Mapping[str, Any] = rec.features or {}
    rows = []
    for factor in rec.top_factors:
        name = str(factor.get("feature", ""))
        label = FEATURE_LABELS.get(name) or str(factor.get("label") or name)
        value = features.get(name, factor.get("value"))
        contribution = float(factor.get("contribution") or 0.0)
        rows.append(
            FactorRow(
                label=label[:1].upper() + label[1:],
                value=feature_value_words(name, value),
                contribution=f"{contribution:+.2f}" if round(contribution, 2) else "0.00",
                toward=contribution >= 0,
            )
        )
    return rows


# --- Readings, symptoms, doses and the regimen ---------------------------------------------------------------


@dataclass(frozen=True)
class ReadingRow:
    taken_at: datetime
    systolic: int
    diastolic: int
    heart_rate: int | None
    source: str
    series: str  # charts.BP_SERIES key: the table filters with the chart's toggles
    flag: str  # words: "crisis", "low", "above target" or ""


def _flag(reading: Reading, patient: Patient, policy: ApprovalPolicy) -> str:
    if reading.systolic >= policy.crisis_sbp or reading.diastolic >= policy.crisis_dbp:
        return "crisis"
    if reading.systolic < policy.hypotension_sbp or reading.diastolic < policy.hypotension_dbp:
        return "low"
    if reading.systolic >= patient.target_sbp or reading.diastolic >= patient.target_dbp:
        return "above target"
    return ""


@dataclass(frozen=True)
class SeriesCount:
    key: str
    label: str
    count: int


@dataclass(frozen=True)
class AdherenceWeek:
    first: date
    last: date
    taken: int
    logged: int
    steps: str  # the step(s) logged that week, e.g. "2" or "2, 3"

    @property
    def percent(self) -> int | None:
        return round(100 * self.taken / self.logged) if self.logged else None


@dataclass(frozen=True)
class RegimenRow:
    changed_at: datetime
    from_step: int
    to_step: int
    to_regimen: str
    cause: str  # words


def _cause_words(change: RegimenChange) -> str:
    kind, _, ident = change.cause.partition(":")
    if kind == "recommendation" and ident:
        return f"recommendation {ident}"
    return kind.replace("_", " ") or "not recorded"


@dataclass(frozen=True)
class PatientContext:
    """The patient's recent record beside a proposal, as of `as_of`."""

    as_of: datetime
    points: list[BPPoint]
    readings: list[ReadingRow]  # newest first
    series: list[SeriesCount]
    last_reading_at: datetime | None
    symptoms: list[Symptom]  # newest first
    adherence: list[AdherenceWeek]  # newest first
    last_dose_day: date | None
    regimen: list[RegimenRow]


def reading_rows(readings: list[Reading], *, patient: Patient, policy: ApprovalPolicy) -> list[ReadingRow]:
    """The readings as table rows, newest first."""
    return [
        ReadingRow(
            taken_at=r.taken_at,
            systolic=r.systolic,
            diastolic=r.diastolic,
            heart_rate=r.heart_rate,
            source=SOURCE_WORDS.get(r.source, r.source),
            series=bp_series_of(r.source).key,
            flag=_flag(r, patient, policy),
        )
        for r in reversed(readings)
    ]


def series_counts(readings: list[Reading]) -> list[SeriesCount]:
    """How many readings each series (charts.BP_SERIES) has, in the chart's order, for its toggles."""
    counts: dict[str, int] = {}
    for r in readings:
        key = bp_series_of(r.source).key
        counts[key] = counts.get(key, 0) + 1
    return [SeriesCount(s.key, s.label, counts[s.key]) for s in BP_SERIES if s.key in counts]


def bp_points(readings: list[Reading]) -> list[BPPoint]:
    return [BPPoint(r.taken_at, r.systolic, r.diastolic, r.source) for r in readings]


def patient_context(*, patient: Patient, policy: ApprovalPolicy, as_of: datetime) -> PatientContext:
    """Four queries: readings, symptoms, doses and regimen changes."""
    readings = list(readings_recent(patient=patient, end=as_of, window=timedelta(days=READINGS_DAYS)))
    today = as_of.date()
    doses = list(doses_recent(patient=patient, end=today, days=7 * ADHERENCE_WEEKS))
    weeks = []
    for week in range(ADHERENCE_WEEKS):
        last = today - timedelta(days=7 * week)
        first = last - timedelta(days=6)
        logged = [d for d in doses if first <= d.day <= last]
        weeks.append(
            AdherenceWeek(
                first=first,
                last=last,
                taken=sum(1 for d in logged if d.taken),
                logged=len(logged),
                steps=", ".join(str(step) for step in sorted({d.step for d in logged})),
            )
        )
    changes = regimen_changes_for(patient=patient, since=as_of - timedelta(days=REGIMEN_DAYS), limit=10)
    return PatientContext(
        as_of=as_of,
        points=bp_points(readings),
        readings=reading_rows(readings, patient=patient, policy=policy),
        series=series_counts(readings),
        last_reading_at=readings[-1].taken_at if readings else None,
        symptoms=list(symptoms_recent(patient=patient, end=as_of, window=timedelta(days=SYMPTOM_DAYS))),
        adherence=weeks,
        last_dose_day=doses[0].day if doses else None,
        regimen=[
            RegimenRow(c.changed_at, c.from_step, c.to_step, regimen_label(c.to_step), _cause_words(c)) for c in changes
        ],
    )
