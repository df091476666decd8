"""bp-features/2 keeps cuff and wearable readings apart (issue 10): a wearable's under-reading cannot move the cuff
features, and the zigzag between the two sources is no longer "variability"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION, FeatureWindow, feature_vector

AS_OF = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def _window(readings: list[tuple[float, int, int, str]]) -> FeatureWindow:
    """readings: (days before as_of, hour, systolic, source); diastolic is systolic − 50."""
    taken = [AS_OF - timedelta(days=days) for days, _, _, _ in readings]
    taken = [t.replace(hour=hour) for t, (_, hour, _, _) in zip(taken, readings, strict=True)]
    return FeatureWindow(
        as_of=AS_OF,
        taken_at=np.array([t.timestamp() for t in taken]),
        hour_of_day=np.array([t.hour for t in taken]),
        systolic=np.array([r[2] for r in readings], dtype=np.float64),
        diastolic=np.array([r[2] - 50 for r in readings], dtype=np.float64),
        heart_rate=np.full(len(readings), 70.0),
        source=np.array([r[3] for r in readings], dtype=np.str_),
        doses_logged=14, doses_taken=14, current_step=2, last_change_at=None,
        age=60, diabetes=False, ckd=False, target_sbp=130, target_dbp=80,
    )  # fmt: skip


def _cuff_days() -> list[tuple[float, int, int, str]]:
    return [(d + 0.1, hour, 140 + (d % 2), "cuff") for d in range(6) for hour in (7, 20)]


def test_the_feature_set_is_versioned_and_names_its_sources() -> None:
    assert FEATURE_SET_VERSION == "bp-features/2"
    assert {"wearable_sbp_mean_7d", "wearable_sbp_sd_14d", "wearable_readings_7d"} <= set(FEATURE_NAMES)
    assert "nocturnal_dip" not in FEATURE_NAMES  # it compared wearable nights with cuff days


def test_wearable_under_reading_moves_only_the_wearable_features() -> None:
    cuff_only = feature_vector(_window(_cuff_days()))
    # A wearable on darker skin reads 25 mmHg low every night (DESIGN §8's bias, exaggerated).
    with_wearable = feature_vector(_window(_cuff_days() + [(d + 0.1, 3, 115, "ppg") for d in range(6)]))
    cuff_names = [n for n in FEATURE_NAMES if not n.startswith("wearable_") and n != "hr_mean_7d"]
    assert {n: with_wearable[n] for n in cuff_names} == {n: cuff_only[n] for n in cuff_names}
    assert with_wearable["sbp_sd_14d"] < 1.0  # no zigzag: the cuff series alone barely varies
    assert with_wearable["wearable_sbp_mean_7d"] == 115.0
    assert with_wearable["wearable_readings_7d"] == 6.0
    assert cuff_only["wearable_readings_7d"] == 0.0


def test_a_reading_typed_in_from_a_cuff_counts_as_a_cuff_reading_and_an_ecg_wearable_as_a_wearable() -> None:
    features = feature_vector(_window([(1.1, 8, 150, "manual"), (1.1, 2, 120, "ecg")]))
    assert features["sbp_mean_7d"] == 150.0
    assert features["readings_7d"] == 1.0
    assert features["wearable_sbp_mean_7d"] == 120.0


def test_without_cuff_readings_the_cuff_means_read_as_at_target_and_the_count_as_zero() -> None:
    features = feature_vector(_window([(d + 0.1, 3, 170, "ppg") for d in range(6)]))
    assert features["sbp_mean_7d"] == 130.0
    assert features["sbp_excess_7d"] == 0.0
    assert features["readings_7d"] == 0.0
    assert features["frac_above_target_14d"] == 0.0
