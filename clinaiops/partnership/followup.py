"""The adaptive follow-up rule (DESIGN §2, issue 11): how soon the care team should next review a patient.

Pure: the standard library only, no Django, so the rule can be read, table-tested and cited on its own.

The rule looks at the last 28 days (FOLLOWUP_WINDOW_DAYS) of home readings and safety alerts, and the first line
that applies decides:

=====================  ===========================================================================  ========
category               when                                                                          interval
=====================  ===========================================================================  ========
alert                  a safety alert (hypertensive crisis, sustained hypotension) in the 28 days    1 week
too few readings       fewer than 6 readings in the 28 days: control cannot be judged                4 weeks
volatile               under 50 % of readings in range, or a systolic standard deviation ≥ 15 mmHg   2 weeks
stable                 at least 80 % of readings in range (and, by the lines above, no alert)        12 weeks
partly controlled      anything else                                                                 4 weeks
=====================  ===========================================================================  ========

"In range" is below the patient's own target on both numbers and not low: SBP < target SBP and DBP < target DBP,
and SBP ≥ 90 and DBP ≥ 60 (the hypotension line of the safety rules, DESIGN §2). A reading at exactly the target
is not below it: the portal states targets as "< 130/80".

Why these measures: more time in the target range goes with fewer cardiovascular events (Fatani et al., JACC
2021), and systolic variability predicts stroke independently of the mean (Rothwell et al., Lancet 2010). The
cut-offs themselves are this project's starting point, not a guideline's; a clinic changes them here, in one
place, and a clinician can always override a date with a reason.

The due date is the last follow-up (or enrolment) plus the interval; a clinician's override replaces it until the
next follow-up is recorded.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

FOLLOWUP_WINDOW_DAYS = 28
MIN_READINGS = 6
STABLE_IN_RANGE = 0.80
VOLATILE_IN_RANGE = 0.50
VOLATILE_SBP_SD = 15.0
LOW_SBP = 90
LOW_DBP = 60

INTERVAL_WEEKS_ALERT = 1
INTERVAL_WEEKS_VOLATILE = 2
INTERVAL_WEEKS_DEFAULT = 4
INTERVAL_WEEKS_STABLE = 12


class FollowUpCategory(StrEnum):
    ALERT = "alert"
    TOO_FEW_READINGS = "too_few_readings"
    VOLATILE = "volatile"
    STABLE = "stable"
    PARTLY_CONTROLLED = "partly_controlled"


CATEGORY_LABELS: dict[FollowUpCategory, str] = {
    FollowUpCategory.ALERT: "Recent safety alert",
    FollowUpCategory.TOO_FEW_READINGS: "Too few readings to judge",
    FollowUpCategory.VOLATILE: "Volatile",
    FollowUpCategory.STABLE: "Stable",
    FollowUpCategory.PARTLY_CONTROLLED: "Partly controlled",
}

# The patient's copy of the visit summary says why in plain words, without numbers or thresholds.
PATIENT_REASONS: dict[FollowUpCategory, str] = {
    FollowUpCategory.ALERT: "because of a recent alert about your blood pressure",
    FollowUpCategory.TOO_FEW_READINGS: "because there have been few readings lately",
    FollowUpCategory.VOLATILE: "because your readings have been changing a lot",
    FollowUpCategory.STABLE: "because your blood pressure has been steady",
    FollowUpCategory.PARTLY_CONTROLLED: "to keep an eye on your progress",
}


def bp_in_range(systolic: int, diastolic: int, *, target_sbp: int, target_dbp: int) -> bool:
    """Below the patient's target on both numbers, and not low (see the module docstring)."""
    return systolic < target_sbp and diastolic < target_dbp and systolic >= LOW_SBP and diastolic >= LOW_DBP


@dataclass(frozen=True)
class BPWindowStats:
    """How a patient's readings in a window sat against their target."""

    readings: int
    in_range: int
    sbp_sd: float | None  # sample standard deviation; None under two readings

    @property
    def fraction_in_range(self) -> float | None:
        return self.in_range / self.readings if self.readings else None


def bp_window_stats(readings: Sequence[tuple[int, int]], *, target_sbp: int, target_dbp: int) -> BPWindowStats:
    """`readings` are (systolic, diastolic) pairs."""
    in_range = sum(1 for s, d in readings if bp_in_range(s, d, target_sbp=target_sbp, target_dbp=target_dbp))
    sd = statistics.stdev(float(s) for s, _ in readings) if len(readings) >= 2 else None
    return BPWindowStats(readings=len(readings), in_range=in_range, sbp_sd=sd)


@dataclass(frozen=True)
class FollowUpRule:
    category: FollowUpCategory
    interval_weeks: int
    reason: str

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self.category]

    @property
    def patient_reason(self) -> str:
        return PATIENT_REASONS[self.category]


def _weeks(n: int) -> str:
    return "1 week" if n == 1 else f"{n} weeks"


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100)} %"


def followup_rule(stats: BPWindowStats, *, alerts: int) -> FollowUpRule:
    """The follow-up interval for a patient, with its reason in words (the first line of the table that applies)."""
    days = FOLLOWUP_WINDOW_DAYS
    if alerts > 0:
        what = "a safety alert was" if alerts == 1 else f"{alerts} safety alerts were"
        return FollowUpRule(
            FollowUpCategory.ALERT,
            INTERVAL_WEEKS_ALERT,
            f"{what.capitalize()} raised in the last {days} days: follow up in {_weeks(INTERVAL_WEEKS_ALERT)}.",
        )
    fraction = stats.fraction_in_range
    if stats.readings < MIN_READINGS or fraction is None:
        count = "No readings" if stats.readings == 0 else f"Only {stats.readings} of the {MIN_READINGS} readings needed"
        return FollowUpRule(
            FollowUpCategory.TOO_FEW_READINGS,
            INTERVAL_WEEKS_DEFAULT,
            f"{count} in the last {days} days, too few to judge control: "
            f"follow up in {_weeks(INTERVAL_WEEKS_DEFAULT)}.",
        )
    in_range = f"{_percent(fraction)} of {stats.readings} readings in range"
    sd_high = stats.sbp_sd is not None and stats.sbp_sd >= VOLATILE_SBP_SD
    if fraction < VOLATILE_IN_RANGE or sd_high:
        why = [in_range] if fraction < VOLATILE_IN_RANGE else []
        if sd_high and stats.sbp_sd is not None:
            why.append(f"systolic varies by {stats.sbp_sd:.0f} mmHg (SD)")
        return FollowUpRule(
            FollowUpCategory.VOLATILE,
            INTERVAL_WEEKS_VOLATILE,
            f"Volatile over the last {days} days ({'; '.join(why)}): follow up in {_weeks(INTERVAL_WEEKS_VOLATILE)}.",
        )
    if fraction >= STABLE_IN_RANGE:
        return FollowUpRule(
            FollowUpCategory.STABLE,
            INTERVAL_WEEKS_STABLE,
            f"Stable: {in_range} over the last {days} days and no safety alerts: "
            f"follow up in {_weeks(INTERVAL_WEEKS_STABLE)}.",
        )
    return FollowUpRule(
        FollowUpCategory.PARTLY_CONTROLLED,
        INTERVAL_WEEKS_DEFAULT,
        f"Partly controlled: {in_range} over the last {days} days: follow up in {_weeks(INTERVAL_WEEKS_DEFAULT)}.",
    )


def followup_due(anchor: date, rule: FollowUpRule) -> date:
    """The rule's due date: the last follow-up (or enrolment) plus the interval."""
    return anchor + timedelta(weeks=rule.interval_weeks)
