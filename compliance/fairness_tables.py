"""The numbers of the fairness report. Pure: numpy, fairlearn (through inference.fairness), no Django.

For every class one-vs-rest and every sensitive attribute and pairwise intersection:

- per group: n, selection rate, TPR and FPR, and the group/reference ratios: inference.fairness, the module the
  fairness gate runs, which takes them from fairlearn's MetricFrame; its policy verdict (differences and ratios
  against the bounds) is the report's pass/fail, so the report and the gate can never judge differently;
- the demographic-parity and equalized-odds differences (inference.fairness, by fairlearn's functions) and ratios
  (min/max over the judged groups, as fairlearn's `demographic_parity_ratio` / `equalized_odds_ratio` define them);
- a percentile bootstrap interval for each of the four, seeded.

The bootstrap resamples rows with replacement. Rows that agree on every sensitive attribute, the truth and the
prediction are exchangeable, so it draws multinomial counts over those distinct profiles (a few hundred) rather
than over rows: the same distribution, and the cost no longer grows with the row count. Each replicate then needs
only per-group confusion counts (`disparity_from_counts`), computed for every replicate at once. The same
replicates serve every attribute and class, so the intervals of one report are consistent with each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from inference.fairness import (
    INTERSECTION_SEPARATOR,
    MISSING_GROUP,
    AttributeFairness,
    FairnessBounds,
    GroupMetrics,
    fairness_report,
)

SENSITIVE = ("sex", "age_band", "race_ethnicity", "skin_tone")
INTERSECTIONS: tuple[tuple[str, str], ...] = tuple(combinations(SENSITIVE, 2))
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20240109  # HTI-1's publication date; any fixed seed would do, the report records it
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Disparity:
    """The four disparity measures of one attribute and class over its judged groups; None when undefined (fewer
    than two judged groups, or a ratio whose largest rate is 0)."""

    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    demographic_parity_ratio: float | None
    equalized_odds_ratio: float | None


@dataclass(frozen=True)
class AttributeDisparity:
    attribute: str
    positive_class: str
    reference_group: str
    groups: tuple[GroupMetrics, ...]
    point: Disparity
    # Bootstrap intervals of the four measures, in Disparity's order; (None, None) when nothing can be compared.
    intervals: tuple[Interval, Interval, Interval, Interval]
    passed: bool
    failures: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def is_intersection(self) -> bool:
        return INTERSECTION_SEPARATOR in self.attribute


@dataclass(frozen=True)
class FairnessTables:
    n: int
    classes: tuple[str, ...]
    attributes: tuple[AttributeDisparity, ...]
    passed: bool
    bounds: FairnessBounds
    resamples: int
    seed: int
    confidence: float

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(f for a in self.attributes for f in a.failures)


def fairness_tables(
    y_true: Sequence[str] | npt.NDArray[Any],
    y_pred: Sequence[str] | npt.NDArray[Any],
    sensitive: Mapping[str, Sequence[Any]],
    *,
    classes: Sequence[str],
    bounds: FairnessBounds,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> FairnessTables:
    """Every class one-vs-rest × every attribute in `sensitive` and every pairwise intersection of them."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    truth = np.asarray(y_true).astype(str)
    predicted = np.asarray(y_pred).astype(str)
    names = [name for name in SENSITIVE if name in sensitive] + [n for n in sensitive if n not in SENSITIVE]
    pairs = tuple((a, b) for a, b in combinations(names, 2))
    report = fairness_report(
        truth,
        predicted,
        {n: sensitive[n] for n in names},
        positive_classes=tuple(classes),
        intersections=pairs,
        bounds=bounds,
    )
    labels = {name: group_labels(sensitive[name], len(truth)) for name in names}
    for first, second in pairs:
        labels[f"{first}{INTERSECTION_SEPARATOR}{second}"] = np.char.add(
            np.char.add(labels[first], INTERSECTION_SEPARATOR), labels[second]
        )
    weights, profile_of_row = _bootstrap_weights(labels, names, truth, predicted, resamples, seed)
    attributes = tuple(
        _attribute(a, labels[a.attribute], truth, predicted, weights, profile_of_row, confidence)
        for a in report.attributes
    )
    return FairnessTables(
        n=len(truth),
        classes=tuple(classes),
        attributes=attributes,
        passed=report.passed,
        bounds=bounds,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


def group_labels(values: Sequence[Any], n: int) -> npt.NDArray[np.str_]:
    """Each row's group label as inference.fairness writes it (missing values form the group "unknown")."""
    array = np.asarray(values, dtype=object)
    if array.shape != (n,):
        raise ValueError(f"a sensitive attribute has shape {array.shape}; expected one value per prediction ({n})")
    missing = np.equal(array, np.asarray(None, dtype=object)) | np.not_equal(array, array)
    return np.asarray(np.where(missing, MISSING_GROUP, array.astype(str)), dtype=str)


def _bootstrap_weights(
    labels: Mapping[str, npt.NDArray[np.str_]],
    names: Sequence[str],
    truth: npt.NDArray[np.str_],
    predicted: npt.NDArray[np.str_],
    resamples: int,
    seed: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """(replicate × profile) row counts of `resamples` bootstrap samples, and each row's profile."""
    columns = [labels[name] for name in names] + [truth, predicted]
    codes = np.stack([np.unique(column, return_inverse=True)[1].reshape(-1) for column in columns], axis=1)
    _, profile_of_row, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(truth), counts / counts.sum(), size=resamples).astype(np.float64)
    return weights, profile_of_row.reshape(-1).astype(np.intp)


def _attribute(
    fairness: AttributeFairness,
    labels: npt.NDArray[np.str_],
    truth: npt.NDArray[np.str_],
    predicted: npt.NDArray[np.str_],
    weights: npt.NDArray[np.float64],
    profile_of_row: npt.NDArray[np.intp],
    confidence: float,
) -> AttributeDisparity:
    judged = [g for g in fairness.groups if g.judged]
    point = Disparity(
        demographic_parity_difference=fairness.demographic_parity_difference,
        equalized_odds_difference=fairness.equalized_odds_difference,
        demographic_parity_ratio=_min_over_max([g.selection_rate for g in judged]) if len(judged) >= 2 else None,
        equalized_odds_ratio=_equalized_odds_ratio(judged) if len(judged) >= 2 else None,
    )
    none = Interval(None, None)
    intervals: tuple[Interval, Interval, Interval, Interval] = (none, none, none, none)
    if len(judged) >= 2:
        names = [g.group for g in judged]
        positive = fairness.positive_class
        cell = _cells_per_profile(labels, truth == positive, predicted == positive, profile_of_row, names)
        per_replicate = weights @ cell  # (replicates, groups × 4)
        stats = disparity_from_counts(per_replicate.reshape(len(weights), len(names), 4))
        low_high = [_percentile_interval(stats[:, i], confidence) for i in range(4)]
        intervals = (low_high[0], low_high[1], low_high[2], low_high[3])
    return AttributeDisparity(
        attribute=fairness.attribute,
        positive_class=fairness.positive_class,
        reference_group=fairness.reference_group,
        groups=fairness.groups,
        point=point,
        intervals=intervals,
        passed=fairness.passed,
        failures=fairness.failures,
        notes=fairness.notes,
    )


def _cells_per_profile(
    labels: npt.NDArray[np.str_],
    is_true: npt.NDArray[np.bool_],
    is_predicted: npt.NDArray[np.bool_],
    profile_of_row: npt.NDArray[np.intp],
    groups: Sequence[str],
) -> npt.NDArray[np.float64]:
    """A (profile × group·4) indicator: which judged group and confusion cell (t0p0, t0p1, t1p0, t1p1) each
    profile's rows fall in. Every row of a profile shares its attributes, truth and prediction, so one row decides."""
    n_profiles = int(profile_of_row.max()) + 1
    index = {group: i for i, group in enumerate(groups)}
    matrix = np.zeros((n_profiles, len(groups) * 4), dtype=np.float64)
    first_row = np.full(n_profiles, -1, dtype=np.intp)
    first_row[profile_of_row[::-1]] = np.arange(len(profile_of_row))[::-1]
    for profile, row in enumerate(first_row):
        group = index.get(str(labels[row]))
        if group is not None:
            matrix[profile, group * 4 + int(is_true[row]) * 2 + int(is_predicted[row])] = 1.0
    return matrix


def disparity_from_counts(counts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(replicates × groups × 4 confusion counts t0p0, t0p1, t1p0, t1p1) → (replicates × 4): demographic-parity
    difference, equalized-odds difference, demographic-parity ratio, equalized-odds ratio, as fairlearn defines
    them (between groups, worst case). A rate whose denominator is 0 in a replicate is left out of that replicate's
    spread (NaN-aware max/min), as inference.fairness leaves undefined rates out of the point estimate."""
    t0p0, t0p1, t1p0, t1p1 = (counts[..., i] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        size = t0p0 + t0p1 + t1p0 + t1p1
        selection = np.where(size > 0, (t0p1 + t1p1) / size, np.nan)
        tpr = np.where(t1p0 + t1p1 > 0, t1p1 / (t1p0 + t1p1), np.nan)
        fpr = np.where(t0p0 + t0p1 > 0, t0p1 / (t0p0 + t0p1), np.nan)
        out = np.full((counts.shape[0], 4), np.nan)
        sel_hi, sel_lo = _nan_max(selection), _nan_min(selection)
        tpr_hi, tpr_lo = _nan_max(tpr), _nan_min(tpr)
        fpr_hi, fpr_lo = _nan_max(fpr), _nan_min(fpr)
        out[:, 0] = sel_hi - sel_lo
        out[:, 1] = np.fmax(tpr_hi - tpr_lo, fpr_hi - fpr_lo)
        out[:, 2] = np.where(sel_hi > 0, sel_lo / sel_hi, np.nan)
        out[:, 3] = np.fmin(
            np.where(tpr_hi > 0, tpr_lo / tpr_hi, np.nan), np.where(fpr_hi > 0, fpr_lo / fpr_hi, np.nan)
        )
    return out


def _nan_max(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # np.nanmax warns on an all-NaN row; fmax.reduce returns NaN there quietly.
    return np.asarray(np.fmax.reduce(values, axis=1), dtype=np.float64)


def _nan_min(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(np.fmin.reduce(values, axis=1), dtype=np.float64)


def _percentile_interval(values: npt.NDArray[np.float64], confidence: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(None, None)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _min_over_max(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    if len(defined) < 2 or max(defined) == 0:
        return None
    return min(defined) / max(defined)


def _equalized_odds_ratio(groups: Sequence[GroupMetrics]) -> float | None:
    ratios = [
        r for r in (_min_over_max([g.tpr for g in groups]), _min_over_max([g.fpr for g in groups])) if r is not None
    ]
    return min(ratios) if ratios else None
