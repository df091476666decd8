"""The fairness gate: synthetic cohorts with and without a skin-tone bias, checked against fairlearn itself."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from inference.fairness import AttributeFairness, FairnessBounds, FairnessReport, fairness_report

CLASSES = np.array(["decrease", "maintain", "increase"])
Cohort = tuple[npt.NDArray[np.str_], dict[str, npt.NDArray[Any]]]


def _cohort(n: int = 10_000, seed: int = 7) -> Cohort:
    rng = np.random.default_rng(seed)
    sensitive = {
        "sex": rng.choice(["female", "male"], n),
        "age_band": rng.choice(["18-44", "45-64", "65+"], n),
        "race_ethnicity": rng.choice(["Asian", "Black", "Hispanic", "White"], n),
        "skin_tone": rng.choice([str(tone) for tone in range(1, 7)], n),
    }
    truth = CLASSES[rng.choice(3, n, p=[0.2, 0.45, 0.35])]
    return truth, sensitive


def _honest(truth: npt.NDArray[np.str_], seed: int = 11, error_rate: float = 0.1) -> npt.NDArray[np.str_]:
    """Errors that fall on every group alike."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(truth)) < error_rate
    return np.where(wrong, CLASSES[rng.integers(0, 3, len(truth))], truth)


def _under_treats_dark_skin(truth: npt.NDArray[np.str_], skin_tone: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """Half of the patients with skin tone 5–6 who need an increase are told to maintain (cf. PPG bias, DESIGN §8)."""
    predicted = _honest(truth)
    rng = np.random.default_rng(13)
    missed = (truth == "increase") & np.isin(skin_tone, ["5", "6"]) & (rng.random(len(truth)) < 0.5)
    return np.where(missed, "maintain", predicted)


def _attribute(report: FairnessReport, name: str, positive: str = "increase") -> AttributeFairness:
    return next(a for a in report.attributes if a.attribute == name and a.positive_class == positive)


def _binary(labels: npt.NDArray[np.str_], positive: str = "increase") -> npt.NDArray[np.int64]:
    return (labels == positive).astype(np.int64)


def test_model_that_under_treats_dark_skin_fails_on_skin_tone() -> None:
    truth, sensitive = _cohort()
    report = fairness_report(truth, _under_treats_dark_skin(truth, sensitive["skin_tone"]), sensitive)

    skin_tone = _attribute(report, "skin_tone")
    assert not report.passed
    assert not skin_tone.passed
    assert skin_tone.equalized_odds_difference is not None
    assert skin_tone.equalized_odds_difference > 0.15
    assert any(f.startswith("skin_tone: equalized-odds difference") for f in skin_tone.failures)
    assert any("TPR ratio" in f for f in skin_tone.failures)
    # The bias is by skin tone, so sex alone is fair; the report must not smear the failure across attributes.
    assert _attribute(report, "sex").passed
    assert set(report.failures) >= set(skin_tone.failures)


def test_model_with_even_errors_passes_every_attribute() -> None:
    truth, sensitive = _cohort()
    report = fairness_report(truth, _honest(truth), sensitive, positive_classes=("increase", "decrease"))

    assert report.passed, report.failures
    assert all(a.passed and not a.failures for a in report.attributes)


def test_per_group_rates_and_differences_equal_fairlearn_on_the_raw_rows() -> None:
    truth, sensitive = _cohort()
    predicted = _under_treats_dark_skin(truth, sensitive["skin_tone"])
    y_true, y_pred, tone = _binary(truth), _binary(predicted), sensitive["skin_tone"]

    attribute = _attribute(fairness_report(truth, predicted, sensitive), "skin_tone")

    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=tone,
    )
    for group in attribute.groups:
        expected = frame.by_group.loc[group.group]
        assert group.n == int((tone == group.group).sum())
        assert group.selection_rate == pytest.approx(expected["selection_rate"], abs=1e-12)
        assert group.tpr == pytest.approx(expected["tpr"], abs=1e-12)
        assert group.fpr == pytest.approx(expected["fpr"], abs=1e-12)
    assert attribute.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=tone), abs=1e-12
    )
    assert attribute.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=tone), abs=1e-12
    )


def test_under_served_largest_group_fails_the_ratio_bound_even_though_it_is_the_reference() -> None:
    truth, sensitive = _cohort()
    sensitive["skin_tone"][:2000] = "5"  # the under-served group is also the largest, hence the reference
    predicted = _under_treats_dark_skin(truth, sensitive["skin_tone"])
    ratio_only = FairnessBounds(max_equalized_odds_difference=1.0, max_demographic_parity_difference=1.0)

    skin_tone = _attribute(fairness_report(truth, predicted, sensitive, bounds=ratio_only), "skin_tone")

    assert skin_tone.reference_group == "5"
    assert not skin_tone.passed
    assert "skin_tone: group '1' TPR ratio" in "\n".join(skin_tone.failures)
    assert all("vs reference '5'" in f for f in skin_tone.failures)
    assert any("> 1.25" in f and "the reference gets under 0.8 of it" in f for f in skin_tone.failures)


def test_ratios_compare_each_group_with_the_largest_group() -> None:
    truth, sensitive = _cohort()
    sensitive["race_ethnicity"][:3000] = "White"  # make White clearly the largest group
    attribute = _attribute(fairness_report(truth, _honest(truth), sensitive), "race_ethnicity")

    assert attribute.reference_group == "White"
    reference = next(g for g in attribute.groups if g.group == "White")
    assert reference.selection_ratio == reference.tpr_ratio == 1.0
    for group in attribute.groups:
        assert group.selection_ratio == pytest.approx(group.selection_rate / reference.selection_rate)
        assert group.tpr is not None and reference.tpr is not None
        assert group.tpr_ratio == pytest.approx(group.tpr / reference.tpr)


def test_tiny_group_is_reported_but_not_judged() -> None:
    truth, sensitive = _cohort()
    predicted = _honest(truth)
    # Ten patients of a rare group, every one who needs an increase denied it: a rate built on ten people.
    rare = np.arange(10)
    sensitive["race_ethnicity"] = sensitive["race_ethnicity"].astype(object)
    sensitive["race_ethnicity"][rare] = "Pacific Islander"
    truth[rare], predicted[rare] = "increase", "maintain"

    report = fairness_report(truth, predicted, sensitive, intersections=())
    race = _attribute(report, "race_ethnicity")

    rare_group = next(g for g in race.groups if g.group == "Pacific Islander")
    assert rare_group.n == 10
    assert not rare_group.judged
    assert rare_group.tpr == 0.0
    assert rare_group.tpr_ratio == 0.0
    assert race.passed
    assert any("not judged" in note and "'Pacific Islander' (n=10)" in note for note in race.notes)
    # The differences are fairlearn's over the judged groups' rows only.
    judged_rows = sensitive["race_ethnicity"] != "Pacific Islander"
    y_true, y_pred = _binary(truth)[judged_rows], _binary(predicted)[judged_rows]
    groups = sensitive["race_ethnicity"][judged_rows]
    assert race.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12
    )
    assert race.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12
    )


def test_group_with_no_true_positives_has_no_tpr_and_does_not_inflate_equalized_odds() -> None:
    truth, sensitive = _cohort()
    # 200 patients of one age band, none of whom needs an increase: their TPR does not exist.
    sensitive["age_band"] = sensitive["age_band"].astype(object)
    sensitive["age_band"][:200] = "90+"
    truth[:200] = "maintain"
    predicted = _honest(truth)

    report = fairness_report(truth, predicted, sensitive, intersections=())
    age = _attribute(report, "age_band")

    oldest = next(g for g in age.groups if g.group == "90+")
    assert oldest.judged
    assert oldest.tpr is None
    assert oldest.tpr_ratio is None
    assert oldest.fpr is not None
    # fairlearn would read the missing TPR as 0.0 and report a difference near the others' TPR (~0.9).
    y_true, y_pred = _binary(truth), _binary(predicted)
    assert equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive["age_band"]) > 0.8
    assert age.equalized_odds_difference is not None
    assert age.equalized_odds_difference < 0.15
    assert not any("equalized-odds" in f for f in age.failures)
    assert any("TPR undefined" in note and "'90+'" in note for note in age.notes)


def test_report_is_json_serialisable_with_none_for_undefined_rates() -> None:
    truth, sensitive = _cohort(n=2000)
    truth[:] = "maintain"  # nobody needs an increase: every TPR is undefined
    report = fairness_report(truth, _honest(truth), sensitive)

    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))

    assert payload["bounds"] == {
        "max_equalized_odds_difference": 0.15,
        "max_demographic_parity_difference": 0.15,
        "min_group_ratio": 0.8,
        "min_group_size": 20,
        "min_rate_rows": 1,
        "parity_judged": True,
    }
    groups = [g for a in payload["attributes"] for g in a["groups"]]
    assert groups
    assert all(g["tpr"] is None and g["tpr_ratio"] is None for g in groups)
    assert payload["passed"] is report.passed


def test_intersections_are_reported_as_their_own_attributes() -> None:
    truth, sensitive = _cohort()
    report = fairness_report(truth, _honest(truth), sensitive)

    names = [a.attribute for a in report.attributes]
    assert names == ["sex", "age_band", "race_ethnicity", "skin_tone", "sex×race_ethnicity", "sex×skin_tone"]
    crossed = _attribute(report, "sex×race_ethnicity")
    assert {g.group for g in crossed.groups} == {
        f"{sex}×{race}" for sex in ("female", "male") for race in ("Asian", "Black", "Hispanic", "White")
    }
    assert sum(g.n for g in crossed.groups) == len(truth)


def test_intersection_shows_a_bias_confined_to_one_sex() -> None:
    truth, sensitive = _cohort()
    predicted = _honest(truth)
    missed = (truth == "increase") & (sensitive["sex"] == "female") & np.isin(sensitive["skin_tone"], ["5", "6"])
    predicted = np.where(missed, "maintain", predicted)

    report = fairness_report(truth, predicted, sensitive)

    crossed = _attribute(report, "sex×skin_tone")
    assert not crossed.passed
    assert any(f.startswith("sex×skin_tone: equalized-odds difference") for f in crossed.failures)
    female_dark = [g for g in crossed.groups if g.group in ("female×5", "female×6")]
    assert [g.tpr for g in female_dark] == [0.0, 0.0]


def test_decrease_is_judged_separately_when_asked() -> None:
    truth, sensitive = _cohort()
    predicted = _honest(truth)
    # Withhold decreases from skin tones 5-6; "increase" is untouched.
    withheld = (truth == "decrease") & np.isin(sensitive["skin_tone"], ["5", "6"])
    predicted = np.where(withheld, "maintain", predicted)

    report = fairness_report(truth, predicted, sensitive, positive_classes=("increase", "decrease"))

    assert _attribute(report, "skin_tone", "increase").passed
    decrease = _attribute(report, "skin_tone", "decrease")
    assert not decrease.passed
    assert all("for 'decrease'" in f for f in decrease.failures)


def test_attribute_with_fewer_than_two_judged_groups_fails_rather_than_passing_unexamined() -> None:
    truth, sensitive = _cohort(n=500)
    sensitive["sex"][:] = "female"
    sensitive["sex"][:5] = "male"

    report = fairness_report(truth, _honest(truth), sensitive, intersections=())

    sex = _attribute(report, "sex")
    assert not sex.passed
    assert sex.demographic_parity_difference is None
    assert sex.equalized_odds_difference is None
    assert sex.failures == (
        "sex: fewer than two groups with at least 20 rows; disparity for 'increase' cannot be judged",
    )
    assert not report.passed


def test_bounds_are_applied_as_given() -> None:
    truth, sensitive = _cohort()
    predicted = _under_treats_dark_skin(truth, sensitive["skin_tone"])
    loose = FairnessBounds(max_equalized_odds_difference=1.0, max_demographic_parity_difference=1.0, min_group_ratio=0)

    report = fairness_report(truth, predicted, sensitive, bounds=loose)

    assert report.passed
    assert report.bounds is loose


def test_missing_sensitive_values_form_their_own_group() -> None:
    truth, sensitive = _cohort(n=1000)
    race: list[str | None] = list(sensitive["race_ethnicity"])
    race[:30] = [None] * 30
    sensitive["race_ethnicity"] = np.asarray(race, dtype=object)

    attribute = _attribute(fairness_report(truth, _honest(truth), sensitive, intersections=()), "race_ethnicity")

    unknown = next(g for g in attribute.groups if g.group == "unknown")
    assert unknown.n == 30


def test_intersection_naming_an_absent_attribute_is_refused() -> None:
    truth, sensitive = _cohort(n=100)
    del sensitive["skin_tone"]

    with pytest.raises(ValueError, match="skin_tone"):
        fairness_report(truth, _honest(truth), sensitive)


def test_sensitive_attribute_of_the_wrong_length_is_refused() -> None:
    truth, sensitive = _cohort(n=100)
    sensitive["sex"] = sensitive["sex"][:99]

    with pytest.raises(ValueError, match="'sex'"):
        fairness_report(truth, _honest(truth), sensitive, intersections=())
