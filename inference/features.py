"""The one feature module for training and serving (DESIGN §3). Pure: numpy only, no Django.

`feature_vector` turns a window of a patient's records into named features. Training snapshots and the
serving path both call it through `inference.feature_source.feature_window_load`, so they cannot skew.
Bump FEATURE_SET_VERSION whenever a feature's meaning changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

FEATURE_SET_VERSION = "bp-features/1"
WINDOW_DAYS = 14
RECENT_DAYS = 7
# Readings between 00:00 and 05:59 local clock time count as nocturnal (ESH 2023 ABPM night period).
NIGHT_HOURS = range(0, 6)
# A normal nocturnal dip (10–20 %, ESH) is assumed when no night readings exist, so absence is not alarming.
DEFAULT_DIP = 0.10
LOW_SBP = 100

FEATURE_NAMES: tuple[str, ...] = (
    "sbp_mean_7d",
    "dbp_mean_7d",
    "sbp_excess_7d",
    "dbp_excess_7d",
    "sbp_slope_14d",
    "sbp_sd_14d",
    "frac_above_target_14d",
    "frac_low_14d",
    "nocturnal_dip",
    "hr_mean_7d",
    "readings_7d",
    "adherence_14d",
    "current_step",
    "days_since_change",
    "age",
    "diabetes",
    "ckd",
)

FEATURE_LABELS: dict[str, str] = {
    "sbp_mean_7d": "average systolic BP (7 days)",
    "dbp_mean_7d": "average diastolic BP (7 days)",
    "sbp_excess_7d": "systolic BP above target (7 days)",
    "dbp_excess_7d": "diastolic BP above target (7 days)",
    "sbp_slope_14d": "systolic BP trend (14 days)",
    "sbp_sd_14d": "systolic BP variability (14 days)",
    "frac_above_target_14d": "share of readings above target",
    "frac_low_14d": "share of low readings",
    "nocturnal_dip": "night-time dip",
    "hr_mean_7d": "average heart rate",
    "readings_7d": "number of readings this week",
    "adherence_14d": "doses taken (14 days)",
    "current_step": "current medication step",
    "days_since_change": "days since last medication change",
    "age": "age",
    "diabetes": "diabetes",
    "ckd": "chronic kidney disease",
}


@dataclass(frozen=True)
class FeatureWindow:
    """Everything the features depend on, as of one instant."""

    as_of: datetime
    taken_at: npt.NDArray[np.float64]  # POSIX seconds
    hour_of_day: npt.NDArray[np.int64]
    systolic: npt.NDArray[np.float64]
    diastolic: npt.NDArray[np.float64]
    heart_rate: npt.NDArray[np.float64]  # NaN where missing
    doses_logged: int
    doses_taken: int
    current_step: int
    last_change_at: datetime | None
    age: int
    diabetes: bool
    ckd: bool
    target_sbp: int
    target_dbp: int


def feature_vector(window: FeatureWindow) -> dict[str, float]:
    as_of = window.as_of.timestamp()
    recent = window.taken_at >= as_of - RECENT_DAYS * 86400
    day = ~np.isin(window.hour_of_day, list(NIGHT_HOURS))
    sbp, dbp = window.systolic, window.diastolic
    recent_day = recent & day

    def mean(values: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_], fallback: float) -> float:
        selected = values[mask]
        selected = selected[~np.isnan(selected)]
        return float(selected.mean()) if selected.size else fallback

    sbp_mean = mean(sbp, recent_day, float(window.target_sbp))
    dbp_mean = mean(dbp, recent_day, float(window.target_dbp))
    if sbp.size >= 3 and np.ptp(window.taken_at) > 0:
        days = (window.taken_at - window.taken_at.min()) / 86400.0
        slope = float(np.polyfit(days, sbp, 1)[0])
    else:
        slope = 0.0
    night = ~day
    if night.any() and day.any():
        dip = 1.0 - float(sbp[night].mean()) / float(sbp[day].mean())
    else:
        dip = DEFAULT_DIP
    n = max(sbp.size, 1)
    adherence = window.doses_taken / window.doses_logged if window.doses_logged else 1.0
    since_change = (
        min((window.as_of - window.last_change_at) / timedelta(days=1), 60.0) if window.last_change_at else 60.0
    )
    return {
        "sbp_mean_7d": sbp_mean,
        "dbp_mean_7d": dbp_mean,
        "sbp_excess_7d": sbp_mean - window.target_sbp,
        "dbp_excess_7d": dbp_mean - window.target_dbp,
        "sbp_slope_14d": slope,
        "sbp_sd_14d": float(sbp.std()) if sbp.size >= 2 else 0.0,
        "frac_above_target_14d": float(((sbp >= window.target_sbp) | (dbp >= window.target_dbp)).sum()) / n,
        "frac_low_14d": float((sbp < LOW_SBP).sum()) / n,
        "nocturnal_dip": dip,
        "hr_mean_7d": mean(window.heart_rate, recent, 72.0),
        "readings_7d": float(recent.sum()),
        "adherence_14d": adherence,
        "current_step": float(window.current_step),
        "days_since_change": float(since_change),
        "age": float(window.age),
        "diabetes": float(window.diabetes),
        "ckd": float(window.ckd),
    }


def feature_matrix(rows: list[dict[str, float]]) -> npt.NDArray[np.float32]:
    return np.asarray([[row[name] for name in FEATURE_NAMES] for row in rows], dtype=np.float32)
