"""Calibration and non-inferiority gates (DESIGN §3 "Gates"). Pure: numpy and scikit-learn, no Django.

Calibration matters here because the approval policy delivers a proposal without review only when its confidence
is at or above a bound (default 0.80, DESIGN §2). A model that says 0.9 but is right 70 % of the time would skip
clinician review on proposals it has no business being sure of.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# Metrics are ratios of counts; representation error (0.80 - 0.02 is 0.7800000000000001) must not flip a gate
# exactly at its margin.
_MARGIN_SLACK = 1e-12


@dataclass(frozen=True)
class CalibrationResult:
    ece: float  # expected calibration error, top-label, equal-width bins
    # (lower edge, mean confidence, accuracy, count) per non-empty bin, lowest first: enough for a reliability chart.
    bins: tuple[tuple[float, float, float, int], ...]
    n: int


def expected_calibration_error(
    proba: npt.NDArray[np.floating[Any]], y_true_idx: npt.NDArray[np.integer[Any]], n_bins: int = 10
) -> CalibrationResult:
    """Top-label ECE: the count-weighted gap between confidence and accuracy over equal-width confidence bins.

    Top-label, because the policy acts on the winning class's probability. Bins are (lower, upper], so a
    confidence of exactly 0.8 falls in the bin that ends at the policy bound rather than the one above it.
    """
    probabilities, truth = _validated(proba, y_true_idx)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    n = len(truth)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == truth).astype(np.float64)
    edges = np.arange(n_bins + 1) / n_bins  # i / n_bins is correctly rounded, so 0.8 is exactly 0.8
    # right=True puts a value equal to an inner edge into the bin below it; 0 (impossible for a top label) joins bin 0.
    index = np.digitize(confidence, edges[1:-1], right=True)
    counts = np.bincount(index, minlength=n_bins)
    confidence_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(index, weights=correct, minlength=n_bins)
    # sum over bins of (count/n)·|accuracy − confidence| = sum of |correct_sum − confidence_sum| / n.
    ece = float(np.abs(correct_sum - confidence_sum).sum() / n)
    bins = tuple(
        (float(edges[i]), float(confidence_sum[i] / counts[i]), float(correct_sum[i] / counts[i]), int(counts[i]))
        for i in np.flatnonzero(counts)
    )
    return CalibrationResult(ece=ece, bins=bins, n=n)


def multiclass_metrics(
    proba: npt.NDArray[np.floating[Any]], y_true_idx: npt.NDArray[np.integer[Any]]
) -> dict[str, float]:
    """accuracy, balanced_accuracy, log_loss and (when every class occurs) macro one-vs-rest AUROC.

    AUROC is omitted, not NaN, when a class is absent from `y_true_idx`: it is undefined for that class, and a NaN
    would compare False against any bound and read like a failure of the model rather than of the sample.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score  # heavy; gates only

    probabilities, truth = _validated(proba, y_true_idx)
    k = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected when the sample lacks a class; the score is still right.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(truth, predicted))
    metrics = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": balanced,
        "log_loss": float(log_loss(truth, probabilities, labels=list(range(k)))),
    }
    if np.unique(truth).size == k:
        if k == 2:
            metrics["macro_auroc"] = float(roc_auc_score(truth, probabilities[:, 1]))
        else:
            metrics["macro_auroc"] = float(roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"))
    return metrics


@dataclass(frozen=True)
class NonInferiority:
    metric: str
    candidate: float
    baseline: float  # NaN when there is no incumbent value to compare with; see `note`
    margin: float
    passed: bool  # candidate >= baseline - margin
    note: str = ""  # why a comparison was not made, e.g. "no incumbent"


def non_inferiority(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    *,
    metrics: Sequence[str] = ("balanced_accuracy", "macro_auroc"),
    margin: float = 0.02,
) -> tuple[NonInferiority, ...]:
    """Is the candidate no worse than the production model, within `margin`, on each metric?

    - No production model (`baseline` None), or an incumbent that never recorded the metric: there is nothing to
      be inferior to, so the check passes with baseline NaN and the note says so. The other gates still apply.
    - The candidate lacks the metric (or it is NaN), e.g. AUROC omitted because a class was missing from the
      validation sample: it fails, because non-inferiority has not been shown.
    """
    if not metrics:
        raise ValueError("at least one metric is needed")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite non-negative number, got {margin}")
    results: list[NonInferiority] = []
    for metric in metrics:
        value = float(candidate.get(metric, math.nan))
        incumbent = math.nan if baseline is None else float(baseline.get(metric, math.nan))
        if math.isnan(value):
            results.append(NonInferiority(metric, value, incumbent, margin, False, "candidate has no value"))
        elif baseline is None:
            results.append(NonInferiority(metric, value, math.nan, margin, True, "no incumbent"))
        elif math.isnan(incumbent):
            results.append(NonInferiority(metric, value, incumbent, margin, True, "no incumbent value"))
        else:
            passed = value >= incumbent - margin - _MARGIN_SLACK
            results.append(NonInferiority(metric, value, incumbent, margin, passed))
    return tuple(results)


def _validated(
    proba: npt.NDArray[np.floating[Any]], y_true_idx: npt.NDArray[np.integer[Any]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    probabilities = np.asarray(proba, dtype=np.float64)
    truth = np.asarray(y_true_idx)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"proba must be n×k with k ≥ 2 classes, got shape {probabilities.shape}")
    if truth.shape != (probabilities.shape[0],):
        raise ValueError(f"y_true_idx must hold one class index per row of proba, got shape {truth.shape}")
    if truth.size == 0:
        raise ValueError("calibration cannot be assessed on zero rows")
    if not np.issubdtype(truth.dtype, np.integer) or truth.min() < 0 or truth.max() >= probabilities.shape[1]:
        raise ValueError(f"y_true_idx must be integer class indices in [0, {probabilities.shape[1]})")
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("proba must be finite probabilities in [0, 1]")
    return probabilities, truth.astype(np.intp)
