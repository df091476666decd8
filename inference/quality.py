"""Data-quality gate for dataset snapshots: schema, null rates, value ranges, class coverage. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inference.features import FEATURE_NAMES

QUALITY_MIN_ROWS = 100
MAX_NULL_RATE = 0.0
# Physiological or arithmetic ranges each feature must stay inside.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "sbp_mean_7d": (50, 300),
    "dbp_mean_7d": (25, 200),
    "sbp_excess_7d": (-150, 200),
    "dbp_excess_7d": (-100, 150),
    "sbp_slope_14d": (-50, 50),
    "sbp_sd_14d": (0, 100),
    "frac_above_target_14d": (0, 1),
    "frac_low_14d": (0, 1),
    "readings_7d": (0, 1000),
    "wearable_sbp_mean_7d": (50, 300),
    "wearable_sbp_sd_14d": (0, 100),
    "wearable_readings_7d": (0, 1000),
    "hr_mean_7d": (20, 250),
    "adherence_14d": (0, 1),
    "current_step": (0, 20),
    "days_since_change": (0, 60),
    "age": (18, 120),
    "diabetes": (0, 1),
    "ckd": (0, 1),
}
LABELS = {"decrease", "maintain", "increase"}


@dataclass(frozen=True)
class QualityResult:
    passed: bool
    report: dict[str, Any]


def snapshot_quality(rows: list[dict[str, Any]]) -> QualityResult:
    checks: dict[str, dict[str, Any]] = {}
    checks["min_rows"] = {"value": len(rows), "bound": QUALITY_MIN_ROWS, "passed": len(rows) >= QUALITY_MIN_ROWS}
    schema_bad = sum(1 for row in rows if set(row["features"]) != set(FEATURE_NAMES) or row["label"] not in LABELS)
    checks["schema"] = {"rows_failing": schema_bad, "passed": schema_bad == 0}
    null_rates: dict[str, float] = {}
    out_of_range: dict[str, int] = {}
    for name in FEATURE_NAMES:
        values = [row["features"].get(name) for row in rows]
        nulls = sum(1 for v in values if v is None or (isinstance(v, float) and math.isnan(v)))
        null_rates[name] = nulls / max(len(rows), 1)
        low, high = FEATURE_RANGES[name]
        bad = sum(1 for v in values if v is not None and not (low <= v <= high))
        if bad:
            out_of_range[name] = bad
    checks["null_rates"] = {
        "max": max(null_rates.values(), default=0.0),
        "bound": MAX_NULL_RATE,
        "passed": max(null_rates.values(), default=0.0) <= MAX_NULL_RATE,
    }
    checks["value_ranges"] = {"out_of_range": out_of_range, "passed": not out_of_range}
    classes = {row["label"] for row in rows}
    checks["class_coverage"] = {"present": sorted(classes), "passed": classes == LABELS}
    return QualityResult(all(c["passed"] for c in checks.values()), {"checks": checks, "null_rates": null_rates})
