"""Calibration (ECE, reliability bins), multiclass metrics and the non-inferiority gate."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score

from inference.calibration import expected_calibration_error, multiclass_metrics, non_inferiority


def _calibrated_sample(n: int = 50_000, seed: int = 3) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Probabilities, and labels drawn from exactly those probabilities: calibrated by construction."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    labels = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1)
    return proba, np.minimum(labels, 2)


def _sharpened(proba: npt.NDArray[np.float64], power: float) -> npt.NDArray[np.float64]:
    """An overconfident model: the same ranking, pushed towards 0 and 1."""
    sharp = proba**power
    return sharp / sharp.sum(axis=1, keepdims=True)


def test_calibrated_probabilities_have_ece_near_zero() -> None:
    proba, labels = _calibrated_sample()

    result = expected_calibration_error(proba, labels)

    assert result.ece < 0.015  # sampling noise only, at 50k rows
    assert result.n == len(labels)


def test_overconfident_model_has_a_larger_ece() -> None:
    proba, labels = _calibrated_sample()

    calibrated = expected_calibration_error(proba, labels)
    overconfident = expected_calibration_error(_sharpened(proba, 3.0), labels)

    assert overconfident.ece > 0.08
    assert overconfident.ece > calibrated.ece + 0.05
    # Overconfidence shows in the reliability chart: the top bins are right less often than they claim.
    top = overconfident.bins[-1]
    assert top[2] < top[1]


def test_bins_cover_every_row_once_and_are_ordered() -> None:
    proba, labels = _calibrated_sample(n=5_000)

    result = expected_calibration_error(proba, labels, n_bins=10)

    assert sum(count for *_, count in result.bins) == result.n == 5_000
    lowers = [lower for lower, *_ in result.bins]
    assert lowers == sorted(lowers)
    for lower, mean_confidence, accuracy, count in result.bins:
        assert count > 0
        assert lower < mean_confidence <= lower + 0.1 + 1e-12
        assert 0.0 <= accuracy <= 1.0


def test_ece_matches_a_hand_computed_example() -> None:
    proba = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 1, 1, 2])
    # Bin (0.8, 0.9]: confidence 0.9, accuracy 0.5, 2 rows. Bin (0.5, 0.6]: 0.6 vs 1.0, 2 rows.
    # Bin (0.7, 0.8]: 0.8 vs 1.0, 1 row; a confidence of exactly 0.8 belongs to the bin ending at 0.8.
    result = expected_calibration_error(proba, labels)

    assert result.ece == pytest.approx((2 * 0.4 + 2 * 0.4 + 1 * 0.2) / 5)
    assert [(lower, count) for lower, _, _, count in result.bins] == [
        (pytest.approx(0.5), 2),
        (pytest.approx(0.7), 1),
        (pytest.approx(0.8), 2),
    ]


@settings(max_examples=60, deadline=None)
@given(
    raw=arrays(np.float64, st.tuples(st.integers(1, 60), st.just(3)), elements=st.floats(0.01, 1.0)),
    seed=st.integers(0, 2**16),
    n_bins=st.integers(1, 20),
)
def test_ece_is_a_probability_gap_and_bins_account_for_every_row(
    raw: npt.NDArray[np.float64], seed: int, n_bins: int
) -> None:
    proba = raw / raw.sum(axis=1, keepdims=True)
    labels = np.random.default_rng(seed).integers(0, 3, len(proba))

    result = expected_calibration_error(proba, labels, n_bins=n_bins)

    assert 0.0 <= result.ece <= 1.0
    assert sum(count for *_, count in result.bins) == len(proba)
    assert len(result.bins) <= n_bins


@pytest.mark.parametrize(
    ("proba", "labels"),
    [
        (np.array([0.2, 0.8]), np.array([1])),  # not n×k
        (np.array([[0.2, 0.8]]), np.array([2])),  # index out of range
        (np.array([[0.2, 0.8]]), np.array([0, 1])),  # lengths differ
        (np.array([[np.nan, 0.8]]), np.array([1])),  # not finite
        (np.empty((0, 3)), np.empty(0, dtype=int)),  # nothing to assess
    ],
)
def test_malformed_inputs_are_refused(proba: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> None:
    with pytest.raises(ValueError, match=r"proba|y_true_idx|zero rows"):
        expected_calibration_error(proba, labels)


def test_multiclass_metrics_agree_with_scikit_learn() -> None:
    proba, labels = _calibrated_sample(n=3_000)

    metrics = multiclass_metrics(proba, labels)

    assert set(metrics) == {"accuracy", "balanced_accuracy", "macro_auroc", "log_loss"}
    assert metrics["accuracy"] == pytest.approx(float(np.mean(proba.argmax(axis=1) == labels)))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, proba.argmax(axis=1)))
    assert metrics["macro_auroc"] == pytest.approx(roc_auc_score(labels, proba, multi_class="ovr", average="macro"))
    assert metrics["log_loss"] == pytest.approx(log_loss(labels, proba))
    assert all(math.isfinite(value) for value in metrics.values())


def test_macro_auroc_is_omitted_when_a_class_is_absent() -> None:
    proba, labels = _calibrated_sample(n=3_000)
    present = labels != 0

    metrics = multiclass_metrics(proba[present], labels[present])

    assert "macro_auroc" not in metrics
    assert all(math.isfinite(value) for value in metrics.values())


def test_candidate_exactly_at_the_margin_is_non_inferior() -> None:
    baseline = {"balanced_accuracy": 0.80, "macro_auroc": 0.90}
    at_margin = {"balanced_accuracy": 0.78, "macro_auroc": 0.88}

    results = non_inferiority(at_margin, baseline, margin=0.02)

    assert [(r.metric, r.passed) for r in results] == [("balanced_accuracy", True), ("macro_auroc", True)]
    assert results[0].baseline == 0.80
    assert results[0].margin == 0.02


def test_candidate_just_below_the_margin_is_inferior() -> None:
    baseline = {"balanced_accuracy": 0.80, "macro_auroc": 0.90}
    below = {"balanced_accuracy": 0.7799, "macro_auroc": 0.95}

    results = non_inferiority(below, baseline, margin=0.02)

    assert [(r.metric, r.passed) for r in results] == [("balanced_accuracy", False), ("macro_auroc", True)]


def test_first_model_with_no_incumbent_passes_with_nan_baseline() -> None:
    results = non_inferiority({"balanced_accuracy": 0.55, "macro_auroc": 0.60}, None)

    assert all(r.passed for r in results)
    assert all(math.isnan(r.baseline) and r.note == "no incumbent" for r in results)


def test_candidate_missing_a_metric_fails_because_non_inferiority_is_not_shown() -> None:
    # e.g. AUROC omitted because the validation sample lacked a class
    results = non_inferiority({"balanced_accuracy": 0.85}, {"balanced_accuracy": 0.80, "macro_auroc": 0.90})

    by_metric = {r.metric: r for r in results}
    assert by_metric["balanced_accuracy"].passed
    assert not by_metric["macro_auroc"].passed
    assert math.isnan(by_metric["macro_auroc"].candidate)
