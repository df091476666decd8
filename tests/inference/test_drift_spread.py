"""Drift verdicts on a change of spread: the normed Wasserstein distance beside PSI and KS (issue 13).

Pure numpy: no database, no Django.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from inference.drift import (
    SEVERE,
    STABLE,
    WASSERSTEIN_FLOOR,
    WATCH,
    categorical_drift,
    drift_report,
    feature_severity,
    numeric_drift,
    wasserstein_normed,
)

NAMES = [f"feature_{j:02d}" for j in range(8)]
SPREAD = "feature_05"


def _matrices(seed: int, rows: int = 3_000, scale: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(loc=11.0, scale=3.0, size=(rows, len(NAMES)))
    current = rng.normal(loc=11.0, scale=3.0, size=(rows, len(NAMES)))
    col = NAMES.index(SPREAD)
    current[:, col] = 11.0 + (current[:, col] - 11.0) * scale
    return reference, current


@pytest.mark.parametrize("seed", range(20))
def test_a_spread_change_of_1_3_is_severe_and_unshifted_features_stay_stable(seed: int) -> None:
    reference, current = _matrices(seed)

    report = drift_report(reference, current, NAMES)

    assert report.drifted() == [SPREAD], [(f.name, f.psi, f.statistic, f.wasserstein_normed) for f in report.features]
    spread = next(f for f in report.features if f.name == SPREAD)
    assert spread.wasserstein_normed >= WASSERSTEIN_FLOOR
    assert spread.p_adjusted < 0.05
    assert all(f.severity == STABLE for f in report.features if f.name != SPREAD)
    # Noise alone stays under the floor at this size (≈ 0.03–0.07), so the test is not its only guard here.
    assert max(f.wasserstein_normed for f in report.features if f.name != SPREAD) < WASSERSTEIN_FLOOR


def test_at_large_n_only_the_wasserstein_distance_sees_a_spread_change_of_1_3() -> None:
    # The bench's case (50k rows a side): decile PSI and KS D stay under 0.1, so without the Wasserstein floor
    # this feature read "stable" although its p-value is astronomically small.
    rng = np.random.default_rng(20_240_601)
    reference = rng.normal(loc=11.0, scale=3.0, size=50_000)
    current = 11.0 + rng.normal(scale=3.0, size=50_000) * 1.3

    feature = numeric_drift("sbp_sd_14d", reference, current)

    assert feature.psi < 0.1
    assert feature.statistic < 0.1
    assert feature.p_value < 1e-50
    assert feature_severity(feature.psi, feature.p_value, feature.statistic) == STABLE
    assert feature.wasserstein_normed == pytest.approx(0.8 * 0.3, abs=0.02)  # E|Z| · (k − 1) for a normal
    assert feature.severity == SEVERE


@pytest.mark.parametrize(("rows", "seed"), [(200, 1), (1_000, 2), (20_000, 3)])
def test_normed_wasserstein_matches_scipy_divided_by_the_reference_std(rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=rows)
    current = rng.normal(loc=0.2, scale=1.4, size=rows // 2 + 7)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)

    assert wasserstein_normed(reference, current) == pytest.approx(expected, rel=1e-9)
    # Also through the feature report, where the samples arrive unsorted and with missing values.
    with_gaps = np.concatenate([current, [np.nan, np.nan]])
    assert numeric_drift("x", reference, with_gaps).wasserstein_normed == pytest.approx(expected, rel=1e-9)


def test_normed_wasserstein_matches_scipy_on_tied_discrete_values() -> None:
    rng = np.random.default_rng(9)
    reference = rng.integers(0, 7, size=2_500).astype(float)
    current = rng.integers(1, 7, size=1_800).astype(float)

    expected = stats.wasserstein_distance(reference, current) / np.std(reference)

    assert wasserstein_normed(reference, current) == pytest.approx(expected, rel=1e-9)


def test_constant_reference_uses_evidentlys_norm_floor_instead_of_dividing_by_zero() -> None:
    feature = numeric_drift("readings_7d", np.full(500, 3.0), np.full(500, 3.0))
    assert feature.wasserstein_normed == 0.0
    assert feature.severity == STABLE

    moved = numeric_drift("readings_7d", np.full(500, 3.0), np.full(500, 3.5))
    assert moved.wasserstein_normed == pytest.approx(0.5 / 0.001)
    assert np.isfinite(moved.wasserstein_normed)


def test_trivial_location_shift_at_large_n_still_stays_stable() -> None:
    # The floor's purpose survives the new effect size: 0.05 SD is W/sd ≈ 0.05, below 0.1.
    rng = np.random.default_rng(7)
    feature = numeric_drift("sbp_mean_7d", rng.normal(size=50_000), rng.normal(loc=0.05, size=50_000))

    assert feature.p_value < 1e-6
    assert feature.wasserstein_normed < WASSERSTEIN_FLOOR
    assert feature.severity == STABLE


def test_categorical_features_carry_no_wasserstein_distance() -> None:
    feature = categorical_drift("clinic", np.array(["a", "b"] * 100), np.array(["a"] * 150 + ["b"] * 50))
    assert feature.wasserstein_normed == 0.0


@pytest.mark.parametrize(
    ("psi_value", "p_adjusted", "effect", "wasserstein", "expected"),
    [
        (0.05, 0.001, 0.02, 0.12, SEVERE),  # significant, spread change seen by W only
        (0.05, 0.001, 0.02, 0.10, SEVERE),  # at the threshold, as Evidently (>=)
        (0.05, 0.001, 0.02, 0.09, STABLE),  # below every floor
        (0.05, 0.20, 0.02, 0.50, STABLE),  # large W, but could be noise
        (0.15, 0.20, 0.02, 0.50, WATCH),  # PSI's own watch band is unchanged
    ],
)
def test_severity_counts_the_wasserstein_floor_only_beside_a_significant_test(
    psi_value: float, p_adjusted: float, effect: float, wasserstein: float, expected: str
) -> None:
    assert feature_severity(psi_value, p_adjusted, effect, wasserstein=wasserstein) == expected
