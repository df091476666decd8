"""The one feature module for training and serving (DESIGN §3). Pure: numpy only, no Django.

`feature_vector` turns a window of a patient's records into named features. Training snapshots and the
serving path both call it through `inference.feature_source.feature_window_load`, so they cannot skew.
Bump FEATURE_SET_VERSION whenever a feature's meaning changes.

Sources are kept apart (bp-features/2). A home cuff (or a reading typed in by hand from one) measures blood
pressure; a wearable (PPG or ECG-derived, cuffless) estimates it, and PPG under-reads on darker skin (DESIGN §8).
In bp-features/1 both were one series, so a cuff reading at 07:00 and a wearable estimate at 03:00 made a zigzag
that became "systolic variability", the top factor, and carried the skin-tone bias into the model. Now every BP
feature without a prefix is computed from cuff readings only, the wearable has its own `wearable_*` features
(mean, variability, count), and the night-time dip, which could only ever compare wearable nights with cuff days,
is gone. Heart rate is taken from every source: the PPG bias is in the pressure estimate, not the pulse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

FEATURE_SET_VERSION = "bp-features/2"
WINDOW_DAYS = 14
RECENT_DAYS = 7
# Readings between 00:00 and 05:59 local clock time count as nocturnal (ESH 2023 ABPM night period); the weekly
# means are daytime means, as home-BP guidance asks.
NIGHT_HOURS = range(0, 6)
LOW_SBP = 100
# Measured blood pressure (validated cuff, or typed in from one) and cuffless estimates (clinaiops.care.models
# ReadingSource values; this module stays free of Django).
CUFF_SOURCES = frozenset({"cuff", "manual"})
WEARABLE_SOURCES = frozenset({"ppg", "ecg"})

FEATURE_NAMES: tuple[str, ...] = (
    "sbp_mean_7d",
    "dbp_mean_7d",
    "sbp_excess_7d",
    "dbp_excess_7d",
    "sbp_slope_14d",
    "sbp_sd_14d",
    "frac_above_target_14d",
    "frac_low_14d",
    "readings_7d",
    "wearable_sbp_mean_7d",
    "wearable_sbp_sd_14d",
    "wearable_readings_7d",
    "hr_mean_7d",
    "adherence_14d",
    "current_step",
    "days_since_change",
    "age",
    "diabetes",
    "ckd",
)

FEATURE_LABELS: dict[str, str] = {
    "sbp_mean_7d": "average systolic BP, cuff (7 days)",
    "dbp_mean_7d": "average diastolic BP, cuff (7 days)",
    "sbp_excess_7d": "systolic BP above target, cuff (7 days)",
    "dbp_excess_7d": "diastolic BP above target, cuff (7 days)",
    "sbp_slope_14d": "systolic BP trend, cuff (14 days)",
    "sbp_sd_14d": "systolic BP variability, cuff (14 days)",
    "frac_above_target_14d": "share of cuff readings above target",
    "frac_low_14d": "share of low cuff readings",
    "readings_7d": "number of cuff readings this week",
    "wearable_sbp_mean_7d": "average systolic estimate, wearable (7 days)",
    "wearable_sbp_sd_14d": "systolic estimate variability, wearable (14 days)",
    "wearable_readings_7d": "number of wearable readings this week",
    "hr_mean_7d": "average heart rate",
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
    source: npt.NDArray[np.str_]  # ReadingSource value per reading
    doses_logged: int
    doses_taken: int
    current_step: int
    last_change_at: datetime | None
    age: int
    diabetes: bool
    ckd: bool
    target_sbp: int
    target_dbp: int


def _series_stats(
    taken_at: npt.NDArray[np.float64], sbp: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]
) -> tuple[float, float]:
    """(SD, slope in mmHg a day) of one source's systolic series; 0 where too few readings to say."""
    values, times = sbp[mask], taken_at[mask]
    sd = float(values.std()) if values.size >= 2 else 0.0
    if values.size >= 3 and np.ptp(times) > 0:
        slope = float(np.polyfit((times - times.min()) / 86400.0, values, 1)[0])
    else:
        slope = 0.0
    return sd, slope


def feature_vector(window: FeatureWindow) -> dict[str, float]:
    as_of = window.as_of.timestamp()
    recent = window.taken_at >= as_of - RECENT_DAYS * 86400
    day = ~np.isin(window.hour_of_day, list(NIGHT_HOURS))
    cuff = np.isin(window.source, list(CUFF_SOURCES))
    wearable = np.isin(window.source, list(WEARABLE_SOURCES))
    sbp, dbp = window.systolic, window.diastolic

    def mean(values: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_], fallback: float) -> float:
        selected = values[mask]
        selected = selected[~np.isnan(selected)]
        return float(selected.mean()) if selected.size else fallback

    # No cuff readings this week reads as "at target", so absence alone never suggests a change; the count
    # features tell the model how much there was to go on.
    sbp_mean = mean(sbp, recent & day & cuff, float(window.target_sbp))
    dbp_mean = mean(dbp, recent & day & cuff, float(window.target_dbp))
    sd, slope = _series_stats(window.taken_at, sbp, cuff)
    wearable_sd, _ = _series_stats(window.taken_at, sbp, wearable)
    n_cuff = max(int(cuff.sum()), 1)
    adherence = window.doses_taken / window.doses_logged if window.doses_logged else 1.0
    since_change = (
        min((window.as_of - window.last_change_at) / timedelta(days=1), 60.0) if window.last_change_at else 60.0
    )
    above = cuff & ((sbp >= window.target_sbp) | (dbp >= window.target_dbp))
    return {
        "sbp_mean_7d": sbp_mean,
        "dbp_mean_7d": dbp_mean,
        "sbp_excess_7d": sbp_mean - window.target_sbp,
        "dbp_excess_7d": dbp_mean - window.target_dbp,
        "sbp_slope_14d": slope,
        "sbp_sd_14d": sd,
        "frac_above_target_14d": float(above.sum()) / n_cuff,
        "frac_low_14d": float((cuff & (sbp < LOW_SBP)).sum()) / n_cuff,
        "readings_7d": float((recent & cuff).sum()),
        "wearable_sbp_mean_7d": mean(sbp, recent & wearable, float(window.target_sbp)),
        "wearable_sbp_sd_14d": wearable_sd,
        "wearable_readings_7d": float((recent & wearable).sum()),
        "hr_mean_7d": mean(window.heart_rate, recent, 72.0),
        "adherence_14d": adherence,
        "current_step": float(window.current_step),
        "days_since_change": float(since_change),
        "age": float(window.age),
        "diabetes": float(window.diabetes),
        "ckd": float(window.ckd),
    }


def low_cuff_readings(features: dict[str, float]) -> int:
    """How many low cuff readings the 14-day window held, from the share and the count (what a clinician, real or
    simulated, counts before titrating)."""
    return round(features["frac_low_14d"] * max(features["readings_7d"], 1.0))


def feature_matrix(rows: list[dict[str, float]]) -> npt.NDArray[np.float32]:
    return np.asarray([[row[name] for name in FEATURE_NAMES] for row in rows], dtype=np.float32)
