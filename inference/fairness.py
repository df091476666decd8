"""Fairness gate and report (DESIGN §3 "Gates", §4 "Fairness report"). Pure: numpy and fairlearn, no Django.

The titration model predicts one of three steps. Disparity is assessed one-vs-rest for a clinically important
class: "increase" (being offered more medication) by default, and "decrease" when asked. Per-group selection
rate, TPR and FPR come from fairlearn's `MetricFrame`; the demographic-parity and equalized-odds differences come
from fairlearn's own functions, whose numbers are the project's reference (DESIGN §10).

Two choices a reader should know about:

- **Small groups are reported, not judged.** A group with fewer than `min_group_size` rows is listed with its
  rates, but its rows are left out before the differences are computed and its ratios are not checked: with a
  handful of rows, one patient moves a rate by several points and the gate would fail on noise. The report says
  which groups were skipped.
- **Undefined rates are `None`, never a made-up number.** A group with no true positives has no TPR (and one
  with no true negatives has no FPR). fairlearn reads 0/0 as 0.0 there, which would manufacture a large
  equalized-odds difference out of a group that simply had nobody to treat; such rates are reported as `None`
  and left out of the comparison instead.

fairlearn is fed a lossless summary of the rows, one row per (group, true, predicted) cell weighted by its count.
Every metric here is a function of those counts alone, so the numbers are identical to running fairlearn on the
raw rows. The cost then grows with the number of groups, not rows: a 100k-row report with both positive classes
takes under a second, where three raw-row MetricFrames per attribute and class at ~1 s each (DESIGN §10) would
take tens of seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

INTERSECTION_SEPARATOR = "×"
MISSING_GROUP = "unknown"
# Rates are ratios of integer counts; representation error must not flip a gate exactly at its bound.
_BOUND_SLACK = 1e-12


@dataclass(frozen=True)
class FairnessBounds:
    """Policy bounds the fairness gate judges against."""

    max_equalized_odds_difference: float = 0.15
    max_demographic_parity_difference: float = 0.15
    # Group/reference selection-rate and TPR ratios, in the spirit of the "four-fifths" rule. Judged both ways:
    # a ratio above 1/min_group_ratio means the reference group is the under-served one.
    min_group_ratio: float = 0.8
    # Smaller groups are reported but not judged.
    min_group_size: int = 20
    # A group's TPR is judged only with at least this many true positives, and its FPR with this many true
    # negatives. A TPR over 8 positives moves 12 points with one patient; at the default of 1 every defined rate
    # is judged (fairlearn's own behaviour apart from 0/0). The gate sets MODEL_GATE_FAIRNESS_MIN_RATE_ROWS.
    min_rate_rows: int = 1
    # Whether demographic parity and the selection-rate ratios fail the report, or are reported only. Groups
    # differ in how many need an increase (older patients have a higher target, DESIGN §8), so a model that
    # titrates exactly as a guideline would still "fails" parity; the gate sets MODEL_GATE_FAIRNESS_PARITY_JUDGED.
    parity_judged: bool = True

    def __post_init__(self) -> None:
        for name in ("max_equalized_odds_difference", "max_demographic_parity_difference", "min_group_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.min_group_size < 1:
            raise ValueError(f"min_group_size must be at least 1, got {self.min_group_size}")
        if self.min_rate_rows < 1:
            raise ValueError(f"min_rate_rows must be at least 1, got {self.min_rate_rows}")


@dataclass(frozen=True)
class GroupMetrics:
    group: str
    n: int
    selection_rate: float
    tpr: float | None  # None when the group has no true positives
    fpr: float | None  # None when the group has no true negatives
    selection_ratio: float | None  # vs the reference group (largest group); None when undefined
    tpr_ratio: float | None
    judged: bool  # n >= min_group_size


@dataclass(frozen=True)
class AttributeFairness:
    attribute: str  # "sex", "race_ethnicity", "sex×race_ethnicity", ...
    positive_class: str
    reference_group: str
    groups: tuple[GroupMetrics, ...]
    # Over judged groups only; None when fewer than two groups could be judged (nothing to compare).
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    passed: bool
    failures: tuple[str, ...]  # e.g. "skin_tone: equalized-odds difference 0.212 > 0.15 for 'increase'"
    notes: tuple[str, ...] = ()  # what was reported but not judged, and why


@dataclass(frozen=True)
class FairnessReport:
    attributes: tuple[AttributeFairness, ...]
    passed: bool
    bounds: FairnessBounds

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(failure for attribute in self.attributes for failure in attribute.failures)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: plain floats, all finite, and None wherever a rate is undefined."""
        return {
            "passed": self.passed,
            "bounds": asdict(self.bounds),
            "attributes": [
                {
                    "attribute": a.attribute,
                    "positive_class": a.positive_class,
                    "reference_group": a.reference_group,
                    "demographic_parity_difference": _finite_or_none(a.demographic_parity_difference),
                    "equalized_odds_difference": _finite_or_none(a.equalized_odds_difference),
                    "passed": a.passed,
                    "failures": list(a.failures),
                    "notes": list(a.notes),
                    "groups": [
                        {
                            "group": g.group,
                            "n": g.n,
                            "selection_rate": _finite_or_none(g.selection_rate),
                            "tpr": _finite_or_none(g.tpr),
                            "fpr": _finite_or_none(g.fpr),
                            "selection_ratio": _finite_or_none(g.selection_ratio),
                            "tpr_ratio": _finite_or_none(g.tpr_ratio),
                            "judged": g.judged,
                        }
                        for g in a.groups
                    ],
                }
                for a in self.attributes
            ],
        }


def fairness_report(
    y_true: Sequence[str] | npt.NDArray[Any],
    y_pred: Sequence[str] | npt.NDArray[Any],
    sensitive: Mapping[str, Sequence[Any] | npt.NDArray[Any]],
    *,
    positive_classes: Sequence[str] = ("increase",),
    intersections: Sequence[tuple[str, str]] = (("sex", "race_ethnicity"), ("sex", "skin_tone")),
    bounds: FairnessBounds = FairnessBounds(),  # frozen, so one shared default is safe
) -> FairnessReport:
    """Judge the model's disparity for each sensitive attribute and intersection against `bounds`.

    One `AttributeFairness` per (positive class, attribute), attributes in `sensitive` order followed by the
    intersections. The report passes only if every one of them does: a gate that averaged attributes would let
    a large disparity for one skin tone hide behind parity by sex.
    """
    truth = np.asarray(y_true).astype(str)
    predicted = np.asarray(y_pred).astype(str)
    n = len(truth)
    if truth.ndim != 1 or predicted.shape != truth.shape:
        raise ValueError(f"y_true and y_pred must be 1-D and equally long, got {truth.shape} and {predicted.shape}")
    if n == 0:
        raise ValueError("fairness cannot be assessed on zero rows")
    if not positive_classes:
        raise ValueError("at least one positive class is needed")
    if not sensitive:
        raise ValueError("at least one sensitive attribute is needed; an empty report would pass vacuously")

    encoded = {name: _group_codes(name, values, n) for name, values in sensitive.items()}
    for first, second in intersections:
        missing = [name for name in (first, second) if name not in encoded]
        if missing:
            # Refuse rather than skip: a silently dropped intersection is a gate that checks less than it claims.
            name = f"{first}{INTERSECTION_SEPARATOR}{second}"
            raise ValueError(f"intersection {name} names unknown attribute(s): {missing}")
    for first, second in intersections:
        encoded[f"{first}{INTERSECTION_SEPARATOR}{second}"] = _intersection_codes(encoded[first], encoded[second])

    attributes = tuple(
        _attribute_fairness(name, codes, labels, truth == positive, predicted == positive, positive, bounds)
        for positive in positive_classes
        for name, (codes, labels) in encoded.items()
    )
    return FairnessReport(attributes=attributes, passed=all(a.passed for a in attributes), bounds=bounds)


def _group_codes(name: str, values: Sequence[Any] | npt.NDArray[Any], n: int) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Integer group code per row and the sorted group label per code. Missing values form their own group."""
    array = np.asarray(values, dtype=object)
    if array.shape != (n,):
        raise ValueError(
            f"sensitive attribute {name!r} has shape {array.shape}; expected one value per prediction ({n})"
        )
    # None, and NaN (the only value unequal to itself), are missing; they must not vanish from the report.
    missing = np.equal(array, np.asarray(None, dtype=object)) | np.not_equal(array, array)
    labels = np.where(missing, MISSING_GROUP, array.astype(str))
    uniques, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.intp), [str(u) for u in uniques]


def _intersection_codes(
    first: tuple[npt.NDArray[np.intp], list[str]], second: tuple[npt.NDArray[np.intp], list[str]]
) -> tuple[npt.NDArray[np.intp], list[str]]:
    first_codes, first_labels = first
    second_codes, second_labels = second
    codes = first_codes * len(second_labels) + second_codes
    labels = [f"{a}{INTERSECTION_SEPARATOR}{b}" for a in first_labels for b in second_labels]
    return codes, labels


@dataclass(frozen=True)
class _Cells:
    """One row per non-empty (group, true, predicted) cell of the one-vs-rest confusion, weighted by its count.

    fairlearn sees these rows with `sample_weight` instead of the raw rows: every metric used here is a function
    of the weighted counts alone, so the numbers are the same and the work no longer grows with the row count.
    """

    group: npt.NDArray[np.object_]
    y_true: npt.NDArray[np.intp]
    y_pred: npt.NDArray[np.intp]
    weight: npt.NDArray[np.float64]
    positives: dict[str, int]  # per present group: rows whose truth is the positive class
    negatives: dict[str, int]

    @classmethod
    def tally(
        cls,
        codes: npt.NDArray[np.intp],
        labels: list[str],
        is_true: npt.NDArray[np.bool_],
        is_predicted: npt.NDArray[np.bool_],
    ) -> _Cells:
        counts = np.bincount(
            codes * 4 + is_true.astype(np.intp) * 2 + is_predicted.astype(np.intp), minlength=4 * len(labels)
        )
        present = np.flatnonzero(counts)
        per_group = counts.reshape(len(labels), 4)  # columns: (t0 p0, t0 p1, t1 p0, t1 p1)
        groups_present = np.flatnonzero(per_group.sum(axis=1))
        return cls(
            group=np.asarray(labels, dtype=object)[present // 4],
            y_true=(present // 2) % 2,
            y_pred=present % 2,
            weight=counts[present].astype(np.float64),
            positives={labels[i]: int(per_group[i, 2] + per_group[i, 3]) for i in groups_present},
            negatives={labels[i]: int(per_group[i, 0] + per_group[i, 1]) for i in groups_present},
        )

    def size(self, group: str) -> int:
        return self.positives[group] + self.negatives[group]

    def only(self, groups: set[str]) -> _Cells:
        keep = np.isin(self.group, list(groups))
        return _Cells(
            group=self.group[keep],
            y_true=self.y_true[keep],
            y_pred=self.y_pred[keep],
            weight=self.weight[keep],
            positives={g: v for g, v in self.positives.items() if g in groups},
            negatives={g: v for g, v in self.negatives.items() if g in groups},
        )


def _attribute_fairness(
    attribute: str,
    codes: npt.NDArray[np.intp],
    labels: list[str],
    is_true: npt.NDArray[np.bool_],
    is_predicted: npt.NDArray[np.bool_],
    positive: str,
    bounds: FairnessBounds,
) -> AttributeFairness:
    # fairlearn imports pandas and scikit-learn: paid when a report is built, not when this module is imported.
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    cells = _Cells.tally(codes, labels, is_true, is_predicted)
    weights = {"sample_weight": cells.weight}
    by_group = MetricFrame(
        metrics={
            "selection_rate": partial(selection_rate, pos_label=1),
            "tpr": partial(true_positive_rate, pos_label=1),
            "fpr": partial(false_positive_rate, pos_label=1),
        },
        y_true=cells.y_true,
        y_pred=cells.y_pred,
        # A list, not the array: fairlearn squeezes an array, and one cell (every row alike) would become 0-d.
        sensitive_features=cells.group.tolist(),
        sample_params={"selection_rate": weights, "tpr": weights, "fpr": weights},
    ).by_group

    def selection(group: str) -> float:
        return float(by_group.loc[group, "selection_rate"])

    def rate(group: str, metric: str) -> float | None:
        # fairlearn reads 0/0 as 0.0; a rate with no denominator is undefined, so say None instead.
        denominator = cells.positives[group] if metric == "tpr" else cells.negatives[group]
        return float(by_group.loc[group, metric]) if denominator > 0 else None

    present = sorted(cells.positives)
    # The largest group is the reference; ties go to the first name so the choice does not depend on row order.
    reference = min(present, key=lambda g: (-cells.size(g), g))
    judged = {g for g in present if cells.size(g) >= bounds.min_group_size}
    ref_selection, ref_tpr = selection(reference), rate(reference, "tpr")
    groups = tuple(
        GroupMetrics(
            group=g,
            n=cells.size(g),
            selection_rate=selection(g),
            tpr=rate(g, "tpr"),
            fpr=rate(g, "fpr"),
            selection_ratio=_ratio(selection(g), ref_selection),
            tpr_ratio=_ratio(rate(g, "tpr"), ref_tpr),
            judged=g in judged,
        )
        for g in present
    )

    dpd, eod = _differences(cells.only(judged), by_group, bounds.min_rate_rows) if len(judged) >= 2 else (None, None)
    failures = _failures(attribute, positive, reference, groups, dpd, eod, bounds, cells.positives)
    return AttributeFairness(
        attribute=attribute,
        positive_class=positive,
        reference_group=reference,
        groups=groups,
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        passed=not failures,
        failures=failures,
        notes=_notes(positive, groups, cells, bounds),
    )


def _differences(judged: _Cells, by_group: Any, min_rate_rows: int) -> tuple[float, float]:
    """Demographic-parity and equalized-odds differences over the judged groups, by fairlearn's functions."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference  # heavy, as above

    args = (judged.y_true, judged.y_pred)
    kwargs = {"sensitive_features": judged.group.tolist(), "sample_weight": judged.weight}
    dpd = float(demographic_parity_difference(*args, **kwargs))
    with_tpr = [g for g, count in judged.positives.items() if count >= min_rate_rows]
    with_fpr = [g for g, count in judged.negatives.items() if count >= min_rate_rows]
    if set(with_tpr) == set(with_fpr) == set(judged.positives):  # every judged group has both rates
        return dpd, float(equalized_odds_difference(*args, **kwargs))
    # Some judged group lacks true positives or true negatives (fairlearn would read its missing rate as 0.0), or
    # has too few of them for its rate to be judged. Same definition (the worse of the TPR and FPR spreads), each
    # spread over the groups where that rate exists and rests on at least min_rate_rows rows.
    return dpd, max(_spread(by_group, "tpr", with_tpr), _spread(by_group, "fpr", with_fpr))


def _failures(
    attribute: str,
    positive: str,
    reference: str,
    groups: tuple[GroupMetrics, ...],
    dpd: float | None,
    eod: float | None,
    bounds: FairnessBounds,
    positives: dict[str, int],
) -> tuple[str, ...]:
    if dpd is None or eod is None:
        # Nothing to compare is not evidence of fairness; a gate must not pass on it.
        return (
            f"{attribute}: fewer than two groups with at least {bounds.min_group_size} rows; "
            f"disparity for {positive!r} cannot be judged",
        )
    failures: list[str] = []
    if eod > bounds.max_equalized_odds_difference + _BOUND_SLACK:
        failures.append(
            f"{attribute}: equalized-odds difference {eod:.3f} > {bounds.max_equalized_odds_difference:g} "
            f"for {positive!r}"
        )
    if bounds.parity_judged and dpd > bounds.max_demographic_parity_difference + _BOUND_SLACK:
        failures.append(
            f"{attribute}: demographic-parity difference {dpd:.3f} > {bounds.max_demographic_parity_difference:g} "
            f"for {positive!r}"
        )
    # The ratio bound is applied both ways. The reference is simply the largest group, and it may be the one
    # the model under-serves; then every other group's ratio is above 1, and a one-sided check would miss it.
    # A group at more than 1/min_group_ratio of the reference means the reference gets less than
    # min_group_ratio of that group's rate.
    ceiling = 1.0 / bounds.min_group_ratio if bounds.min_group_ratio > 0 else math.inf
    tpr_judged = positives[reference] >= bounds.min_rate_rows
    for g in groups:
        ratios = (
            ("selection-rate", g.selection_ratio if bounds.parity_judged else None),
            ("TPR", g.tpr_ratio if tpr_judged and positives[g.group] >= bounds.min_rate_rows else None),
        )
        for what, ratio in ratios:
            if not g.judged or ratio is None:
                continue
            if ratio < bounds.min_group_ratio - _BOUND_SLACK:
                failures.append(
                    f"{attribute}: group {g.group!r} {what} ratio {ratio:.3f} < {bounds.min_group_ratio:g} "
                    f"vs reference {reference!r} for {positive!r}"
                )
            elif ratio > ceiling + _BOUND_SLACK:
                failures.append(
                    f"{attribute}: group {g.group!r} {what} ratio {ratio:.3f} > {ceiling:.3g} vs reference "
                    f"{reference!r} for {positive!r} (the reference gets under {bounds.min_group_ratio:g} of it)"
                )
    return tuple(failures)


def _notes(positive: str, groups: tuple[GroupMetrics, ...], cells: _Cells, bounds: FairnessBounds) -> tuple[str, ...]:
    """Say what was reported but left out of the judgement, so a reader does not mistake silence for a pass."""
    notes: list[str] = []
    small = [g for g in groups if not g.judged]
    if small:
        listed = ", ".join(f"{g.group!r} (n={g.n})" for g in small)
        notes.append(f"reported but not judged, fewer than {bounds.min_group_size} rows: {listed}")
    for metric, kind, counts in (("TPR", "positives", cells.positives), ("FPR", "negatives", cells.negatives)):
        undefined = [g.group for g in groups if g.judged and counts[g.group] == 0]
        if undefined:
            listed = ", ".join(map(repr, undefined))
            notes.append(f"{metric} undefined (no true {kind} for {positive!r}), left out of the comparison: {listed}")
        thin = [g for g in groups if g.judged and 0 < counts[g.group] < bounds.min_rate_rows]
        if thin:
            listed = ", ".join(f"{g.group!r} ({counts[g.group]})" for g in thin)
            notes.append(
                f"{metric} reported but not judged, fewer than {bounds.min_rate_rows} true {kind} for {positive!r}: "
                f"{listed}"
            )
    if not bounds.parity_judged:
        notes.append(
            "demographic parity and selection-rate ratios reported, not judged: groups differ in clinical need"
        )
    return tuple(notes)


def _spread(by_group: Any, metric: str, groups: list[str]) -> float:
    """fairlearn's between-groups difference (max - min) of one metric over the given groups."""
    if len(groups) < 2:
        return 0.0
    values = by_group.loc[groups, metric].astype(float)
    return float(values.max() - values.min())


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0.0:
        return None
    return value / reference


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
