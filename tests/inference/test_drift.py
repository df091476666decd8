"""Drift statistics (DESIGN §3): PSI, KS / chi-square, Benjamini–Hochberg and the severity rule.

Pure numpy: no database, no Django.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]

from inference.drift import (
    ALPHA,
    CHI2,
    KS,
    PREDICTION_NAME,
    SEVERE,
    STABLE,
    WATCH,
    benjamini_hochberg,
    categorical_drift,
    drift_report,
    feature_severity,
    numeric_drift,
    psi,
)

NAMES = [f"feature_{j:02d}" for j in range(20)]


def _normal_matrix(seed: int, rows: int, columns: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc=120.0, scale=12.0, size=(rows, columns))


# --- identical distributions -------------------------------------------------------------------------------


def test_identical_samples_have_zero_psi_and_are_stable() -> None:
    data = _normal_matrix(seed=1, rows=2_000)

    report = drift_report(data, data.copy(), NAMES)

    assert report.severity == STABLE
    assert report.drifted() == []
    for feature in report.features:
        assert feature.psi == 0.0
        assert feature.statistic == 0.0
        assert feature.p_value == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(10))
def test_fresh_samples_from_the_same_distribution_raise_no_false_alarm(seed: int) -> None:
    reference = _normal_matrix(seed=2 * seed, rows=5_000)
    current = _normal_matrix(seed=2 * seed + 1, rows=5_000)

    report = drift_report(reference, current, NAMES)

    assert report.severity == STABLE, [(f.name, f.psi, f.p_adjusted) for f in report.features]
    assert max(f.psi for f in report.features) < 0.02


def test_trivial_shift_at_large_n_is_significant_but_not_severe() -> None:
    # 0.05 SD at 50k a side: the KS test rejects, but nobody should retrain a model for it.
    rng = np.random.default_rng(7)
    reference = rng.normal(size=50_000)
    current = rng.normal(loc=0.05, size=50_000)

    report = drift_report(reference[:, None], current[:, None], ["sbp_mean_7d"])

    (feature,) = report.features
    assert feature.p_adjusted < 1e-6
    assert feature.statistic < 0.1
    assert feature.psi < 0.1
    assert feature.severity == STABLE


# --- numeric shifts ------------------------------------------------------------------------------------------


def test_half_sd_mean_shift_on_two_features_flags_exactly_those_two() -> None:
    reference = _normal_matrix(seed=11, rows=5_000)
    current = _normal_matrix(seed=12, rows=5_000)
    current[:, 3] += 0.5 * 12.0
    current[:, 17] -= 0.5 * 12.0

    report = drift_report(reference, current, NAMES)

    assert report.drifted() == ["feature_03", "feature_17"]
    assert report.severity == SEVERE
    shifted = {f.name: f for f in report.features if f.name in {"feature_03", "feature_17"}}
    for feature in shifted.values():
        assert feature.test == KS
        assert feature.p_adjusted < 1e-10
        assert feature.statistic > 0.15


def test_values_beyond_the_reference_range_land_in_the_open_outer_bins() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=1_000)
    current = np.concatenate([rng.normal(size=900), np.full(100, 50.0), np.full(50, -50.0)])

    feature = numeric_drift("hr_mean_7d", reference, current)

    assert sum(feature.current_hist) == pytest.approx(1.0)
    assert feature.current_hist[-1] >= 100 / 1_050
    assert feature.current_hist[0] >= 50 / 1_050
    assert feature.bin_edges[0] == -50.0
    assert feature.bin_edges[-1] == 50.0
    assert len(feature.bin_edges) == len(feature.reference_hist) + 1 == 11


def test_missing_values_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=1_000)
    current = rng.normal(size=1_000)
    current[:37] = np.nan
    reference[:5] = np.nan

    feature = numeric_drift("adherence_14d", reference, current)

    assert feature.n_missing_current == 37
    assert feature.n_missing_reference == 5
    assert math.isfinite(feature.psi)
    assert feature.severity == STABLE


def test_all_missing_feature_is_refused_rather_than_scored() -> None:
    with pytest.raises(ValueError, match="no non-missing current"):
        numeric_drift("hr_mean_7d", np.arange(10.0), np.full(10, np.nan))


def test_discrete_feature_with_many_ties_gets_one_bin_per_value() -> None:
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 7, size=5_000).astype(float)  # regimen step 0..6
    same = rng.integers(0, 7, size=5_000).astype(float)
    stepped_up = np.minimum(reference + 1, 6)  # everyone titrated one step up

    unchanged = numeric_drift("current_step", reference, same)
    changed = numeric_drift("current_step", reference, stepped_up)

    interior = np.array(unchanged.bin_edges[1:-1])
    assert np.all(np.diff(interior) > 0), "no zero-width interior bins"
    assert sum(unchanged.reference_hist) == pytest.approx(1.0)
    assert unchanged.severity == STABLE
    assert changed.severity == SEVERE


def test_constant_feature_does_not_crash_and_is_stable() -> None:
    feature = numeric_drift("comorbidity_count", np.zeros(500), np.zeros(400))

    assert feature.psi == 0.0
    assert feature.severity == STABLE


def test_large_sample_ks_matches_scipy() -> None:
    # Above 10,000 rows a side the statistic is computed in numpy and the p-value is asymptotic.
    rng = np.random.default_rng(6)
    reference = rng.integers(0, 30, size=40_000).astype(float)
    current = rng.integers(0, 30, size=30_000).astype(float) + (rng.random(30_000) < 0.03)

    feature = numeric_drift("readings_7d", reference, current)
    expected = stats.ks_2samp(reference, current)

    assert feature.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert feature.p_value == pytest.approx(expected.pvalue, rel=0.05)


# --- categorical ---------------------------------------------------------------------------------------------


def test_categorical_shift_is_detected_by_chi_square() -> None:
    rng = np.random.default_rng(8)
    reference = rng.choice([0.0, 1.0, 2.0], p=[0.5, 0.3, 0.2], size=3_000)
    current = rng.choice([0.0, 1.0, 2.0], p=[0.3, 0.3, 0.4], size=3_000)
    names = ["sbp_mean_7d", "skin_tone"]
    ref = np.column_stack([rng.normal(size=3_000), reference])
    cur = np.column_stack([rng.normal(size=3_000), current])

    report = drift_report(ref, cur, names, categorical={"skin_tone"})

    skin_tone = report.features[1]
    assert skin_tone.kind == "categorical"
    assert skin_tone.test == CHI2
    assert skin_tone.categories == ("0", "1", "2")
    assert skin_tone.bin_edges == ()
    assert skin_tone.p_adjusted < 1e-10
    assert report.drifted() == ["skin_tone"]


def test_category_seen_only_in_current_is_counted_with_finite_psi() -> None:
    rng = np.random.default_rng(9)
    reference = rng.choice(["clinic_a", "clinic_b"], size=2_000)
    current = np.concatenate([rng.choice(["clinic_a", "clinic_b"], size=1_700), np.full(300, "clinic_new")])

    feature = categorical_drift("site", reference, current)

    assert feature.categories == ("clinic_a", "clinic_b", "clinic_new")
    assert feature.reference_hist[2] == 0.0
    assert feature.current_hist[2] == pytest.approx(0.15)
    assert math.isfinite(feature.psi)
    assert feature.severity == SEVERE


def test_single_category_on_both_sides_cannot_drift() -> None:
    feature = categorical_drift("sex", np.array(["F"] * 50), np.array(["F"] * 80))

    assert feature.p_value == 1.0
    assert feature.statistic == 0.0
    assert feature.severity == STABLE


# --- prediction drift ----------------------------------------------------------------------------------------


def test_prediction_drift_alone_makes_the_report_severe() -> None:
    rng = np.random.default_rng(10)
    reference = _normal_matrix(seed=20, rows=3_000)
    current = _normal_matrix(seed=21, rows=3_000)
    classes = ["decrease", "maintain", "increase"]
    reference_pred = rng.choice(classes, p=[0.2, 0.6, 0.2], size=3_000)
    current_pred = rng.choice(classes, p=[0.1, 0.5, 0.4], size=3_000)

    report = drift_report(reference, current, NAMES, reference_pred=reference_pred, current_pred=current_pred)

    assert all(f.severity == STABLE for f in report.features)
    assert report.prediction is not None
    assert report.prediction.severity == SEVERE
    assert report.severity == SEVERE
    assert report.drifted() == [PREDICTION_NAME]


def test_prediction_must_be_given_for_both_sides() -> None:
    data = _normal_matrix(seed=1, rows=100, columns=2)
    with pytest.raises(ValueError, match="both"):
        drift_report(data, data, ["a", "b"], reference_pred=np.zeros(100))


def test_misspelt_categorical_name_is_refused() -> None:
    data = _normal_matrix(seed=1, rows=100, columns=2)
    with pytest.raises(ValueError, match="skin_tone"):
        drift_report(data, data, ["a", "b"], categorical={"skin_tone"})


# --- severity rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("psi_value", "p_adjusted", "effect", "expected"),
    [
        (0.05, 0.5, 0.02, STABLE),
        (0.10, 0.5, 0.02, WATCH),
        (0.25, 0.5, 0.02, WATCH),
        (0.26, 0.5, 0.02, SEVERE),
        (0.05, 0.001, 0.02, STABLE),  # significant but below the effect floor
        (0.05, 0.001, 0.12, SEVERE),  # significant with KS D above the floor
        (0.12, 0.001, 0.02, SEVERE),  # significant with PSI at watch level
        (0.05, 0.06, 0.5, STABLE),  # big effect, but could be noise
    ],
)
def test_severity_follows_the_design_table_with_an_effect_floor(
    psi_value: float, p_adjusted: float, effect: float, expected: str
) -> None:
    assert feature_severity(psi_value, p_adjusted, effect) == expected


# --- PSI -----------------------------------------------------------------------------------------------------


def test_psi_matches_a_hand_computed_value() -> None:
    reference = [0.5, 0.3, 0.2]
    current = [0.3, 0.3, 0.4]
    # (0.3 − 0.5)·ln(0.3/0.5) + 0 + (0.4 − 0.2)·ln(0.4/0.2) = 0.2·0.510826 + 0.2·0.693147 = 0.240795
    by_hand = 0.2 * math.log(0.5 / 0.3) + 0.2 * math.log(2.0)

    assert psi(reference, current, eps=1e-12) == pytest.approx(by_hand, abs=1e-9)
    assert psi(reference, current) == pytest.approx(0.240795, abs=1e-3)


def test_psi_smoothing_keeps_an_empty_bin_finite() -> None:
    reference = [0.5, 0.5, 0.0]
    current = [0.5, 0.25, 0.25]
    # eps = 0.01: reference → (0.51, 0.51, 0.01)/1.03, current → (0.51, 0.26, 0.26)/1.03.
    r = [0.51 / 1.03, 0.51 / 1.03, 0.01 / 1.03]
    c = [0.51 / 1.03, 0.26 / 1.03, 0.26 / 1.03]
    by_hand = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))

    assert psi(reference, current, eps=0.01) == pytest.approx(by_hand, rel=1e-12)
    assert math.isfinite(psi(reference, current))


proportions = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30)


@given(proportions)
def test_psi_of_a_distribution_with_itself_is_zero(props: list[float]) -> None:
    assert psi(props, props) == 0.0


@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=k, max_size=k),
            st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=k, max_size=k),
        )
    )
)
def test_psi_is_never_negative(pair: tuple[list[float], list[float]]) -> None:
    reference, current = pair
    assert psi(reference, current) >= 0.0


# --- Benjamini–Hochberg --------------------------------------------------------------------------------------


def test_benjamini_hochberg_matches_a_hand_example() -> None:
    # m = 3, sorted p: 0.02 (rank 1), 0.021 (rank 2), 0.5 (rank 3).
    # p·m/rank: 0.06, 0.0315, 0.5; step-up (running minimum from the top): 0.0315, 0.0315, 0.5.
    adjusted = benjamini_hochberg([0.5, 0.02, 0.021])

    assert adjusted == pytest.approx([0.5, 0.0315, 0.0315])


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
def test_benjamini_hochberg_is_monotone_bounded_and_agrees_with_scipy(raw: list[float]) -> None:
    p = np.array(raw)
    adjusted = benjamini_hochberg(p)

    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert adjusted == pytest.approx(stats.false_discovery_control(p, method="bh"))


def _benjamini_hochberg_before_scipy(p_values: list[float]) -> np.ndarray:
    """The hand-written step-up this module used before it took scipy's (frozen here as the reference)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m / np.arange(1, m + 1))
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


@given(
    st.lists(
        st.one_of(st.floats(min_value=0.0, max_value=1.0), st.sampled_from([0.0, 0.001, 0.01, 0.025, 0.05, 1.0])),
        min_size=1,
        max_size=60,
    )
)
def test_benjamini_hochberg_from_scipy_gives_the_same_verdicts_as_the_hand_written_one(raw: list[float]) -> None:
    # The verdict is what a report acts on: which features count as significant at ALPHA.
    before = _benjamini_hochberg_before_scipy(raw)
    now = benjamini_hochberg(raw)

    assert list(now < ALPHA) == list(before < ALPHA)
    assert now == pytest.approx(before, rel=1e-12, abs=1e-15)


def test_report_adjusts_every_p_value_together() -> None:
    reference = _normal_matrix(seed=30, rows=2_000)
    current = _normal_matrix(seed=31, rows=2_000)
    current[:, 0] += 3.0

    report = drift_report(reference, current, NAMES)

    raw = [f.p_value for f in report.features]
    assert [f.p_adjusted for f in report.features] == pytest.approx(list(benjamini_hochberg(raw)))
