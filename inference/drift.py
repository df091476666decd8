"""Feature and prediction drift against the training snapshot (DESIGN §3 "Drift"). Pure: numpy and scipy only.

A scheduled job compares the rows the deployed model is scoring now (``current``) with the rows it was trained
on (``reference``) and asks, per feature, two questions:

* **How much did the distribution move?** The Population Stability Index (PSI) over bins cut at the
  reference's quantiles. PSI is an effect size: it does not grow with the sample size, though small samples
  bias it upwards by about (bins − 1)·(1/n + 1/m) (0.004 at 5,000 rows a side, 0.09 at 200), so a window of
  a few hundred rows can read "watch" on noise alone.
* **Could the move be noise?** A two-sample Kolmogorov–Smirnov test for numeric features, a chi-square test
  on the contingency table for categorical ones. The p-values of every test in one report are adjusted
  together with Benjamini–Hochberg.

Severity per feature (DESIGN §3, with one deliberate deviation):

* ``severe`` if PSI > 0.25, or if the adjusted p-value is < 0.05 **and** the move is large enough to matter
  (PSI ≥ 0.1, or an effect size ≥ 0.1: the KS statistic D for numeric features, the total variation distance
  for categorical ones; or, for numeric features, a normed Wasserstein distance ≥ 0.1);
* ``watch`` if 0.1 ≤ PSI ≤ 0.25;
* ``stable`` otherwise.

Why the effect floor, which DESIGN.md's rule ("a test with p < 0.05 after correction") does not have: a
hypothesis test's power grows with n. At 50,000 rows a side the KS test calls a shift of a few hundredths of a
standard deviation "significant", and real clinical data is never exactly stationary (seasonal BP, new cuffs,
a different mix of clinics), so without a floor nearly every feature would be "severe" on drift that no model
notices, and each severe report starts a retraining run and pages a human. The floor keeps the test's job,
ruling out noise at small n, without letting it raise alarms on its own at large n. 0.1 is PSI's "watch"
threshold; for D it means the two CDFs disagree by 10 percentage points somewhere.

The floor's blind spot was a change of spread alone: KS D is weak against it and decile PSI grows slowly, so
a ×1.3 scale change (PSI ≈ 0.086, D ≈ 0.066 at 50k rows) read "stable" although its p-value is ≈ 1e-90. So a
third effect size sits beside them: the **normed Wasserstein distance**, W₁(reference, current) divided by the
reference's standard deviation, Evidently's default for numeric columns at this size, with its threshold of
0.1. W₁ is the area between the two CDFs, so it sees a change of spread as readily as one of location: for a
normal feature W₁/σ is |Δμ|/σ for a pure shift and ≈ 0.8·|k − 1| for a scale change by k (≈ 0.24 at ×1.3),
while unshifted samples read ≈ 0.03–0.07 at 3,000 rows a side and ≈ 0.01 at 50,000 (more below a few hundred
rows, where the test keeps noise out). It enters only through the test rule, beside PSI and D: significant
**and** any one of them at or over its floor. A 0.05 SD shift at 50k rows (W₁/σ ≈ 0.05) therefore stays
stable. bench/drift_bench.py shows the ×1.3 case, now flagged as Evidently flags it.

Severe drift raises an alert and starts a candidate retraining run elsewhere (``inference.services``);
this module only computes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

STABLE, WATCH, SEVERE = "stable", "watch", "severe"
_SEVERITY_RANK = {STABLE: 0, WATCH: 1, SEVERE: 2}

PSI_WATCH = 0.1
PSI_SEVERE = 0.25
ALPHA = 0.05
# Minimal effect (KS D, or total variation distance for categories) before a significant test may call a
# feature severe on its own. See the module docstring for why DESIGN §3's rule needed it.
EFFECT_FLOOR = 0.1
# Added to every bin proportion before PSI. 1e-4 is one row in 10,000: small enough not to dilute real
# differences in deciles (each ≈ 0.1), large enough that an empty bin adds a bounded term
# (≈ p·ln(p/1e-4) ≤ 0.1·6.9 for a decile) instead of infinity.
PSI_EPSILON = 1e-4
# Normed Wasserstein distance (W₁ / reference std) at or above which a significant numeric feature is severe:
# Evidently's threshold for its default numeric test at this size. It catches changes of spread (docstring).
WASSERSTEIN_FLOOR = 0.1
# Evidently's floor on the norm, so a constant reference column does not divide by zero.
_WASSERSTEIN_MIN_NORM = 0.001

NUMERIC, CATEGORICAL = "numeric", "categorical"
KS, CHI2 = "ks", "chi2"
# scipy's own limit for the exact two-sample KS distribution; above it we use the asymptotic one (_ks_two_sample).
_KS_EXACT_MAX = 10_000
# Name under which prediction drift appears in `DriftReport.drifted()`.
PREDICTION_NAME = "prediction"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature (or of the predicted class), with what a chart needs to show it.

    The histograms are raw (unsmoothed) proportions over non-missing values. For numeric features
    ``bin_edges`` has ``len(reference_hist) + 1`` entries; the outer bins are open-ended in the computation,
    and their reported outer edges are the smallest and largest value seen on either side, so the edges stay
    finite (JSON and PostgreSQL ``jsonb`` reject infinities). For a discrete feature an outer edge may equal
    its neighbour: that bin then holds exactly that value.
    """

    name: str
    kind: str  # NUMERIC | CATEGORICAL
    psi: float
    test: str  # KS | CHI2
    statistic: float  # KS D, or the chi-square statistic
    p_value: float
    p_adjusted: float  # Benjamini–Hochberg over every test in the report
    severity: str  # STABLE | WATCH | SEVERE
    reference_hist: tuple[float, ...]
    current_hist: tuple[float, ...]
    bin_edges: tuple[float, ...]  # numeric only; () for categorical
    categories: tuple[str, ...]  # categorical only; () for numeric
    # KS D for numeric, total variation distance for categorical: both in [0, 1], both "the largest difference
    # in probability the two samples give to any event", so one floor serves both.
    effect_size: float = 0.0
    # W₁(reference, current) / std(reference), numeric only (0.0 for categorical): sees changes of spread.
    wasserstein_normed: float = 0.0
    n_missing_reference: int = 0
    n_missing_current: int = 0


@dataclass(frozen=True)
class DriftReport:
    """Every feature's drift, the prediction's drift if given, and the worst severity over all of them."""

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    severity: str
    n_reference: int
    n_current: int

    def drifted(self) -> list[str]:
        """Names of the severe entries, features in input order and then ``PREDICTION_NAME`` if it is severe.

        Non-empty exactly when ``severity`` is severe, so a caller can use either.
        """
        entries = self.features if self.prediction is None else (*self.features, self.prediction)
        return [entry.name for entry in entries if entry.severity == SEVERE]


def psi(reference_props: npt.ArrayLike, current_props: npt.ArrayLike, eps: float = PSI_EPSILON) -> float:
    """Smoothed Population Stability Index: Σ (c − r) · ln(c / r) over bins.

    Smoothing: ``eps`` is added to every proportion and each side is renormalised to sum to 1. Without it a
    bin that is empty on one side makes PSI infinite, and quantile bins make that common in the tails (a
    current value beyond the reference range lands in an outer bin the reference barely fills). Every term
    is ≥ 0, so PSI ≥ 0, and PSI is 0 exactly when both sides are equal.
    """
    ref = np.asarray(reference_props, dtype=np.float64)
    cur = np.asarray(current_props, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"PSI needs two 1-D proportion vectors of equal length, got {ref.shape} and {cur.shape}")
    if np.any(ref < 0) or np.any(cur < 0) or not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cur))):
        raise ValueError("PSI proportions must be finite and non-negative")
    if eps <= 0:
        raise ValueError("PSI smoothing epsilon must be positive")
    ref = (ref + eps) / (ref + eps).sum()
    cur = (cur + eps) / (cur + eps).sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini–Hochberg adjusted p-values (step-up), in the input order: scipy's `false_discovery_control`.

    Why BH and not Bonferroni: a report tests ~20 features, and they are strongly correlated (7-day and
    14-day SBP means, SBP excess, share above target all move together). Bonferroni controls the chance of
    *any* false alarm and pays for it with power that shrinks as features are added; BH controls the
    expected share of false alarms among the flagged features (FDR), which is the cost we care about, and
    stays valid under the positive dependence such features have (Benjamini & Yekutieli 2001, PRDS).
    """
    from scipy import stats  # type: ignore[import-untyped]  # here, not at import: ~60 MB in a web worker

    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    adjusted: FloatArray = np.asarray(stats.false_discovery_control(p, method="bh"), dtype=np.float64)
    return adjusted


def numeric_drift(name: str, reference: npt.ArrayLike, current: npt.ArrayLike, bins: int = 10) -> FeatureDrift:
    """PSI over reference-quantile bins and a two-sample Kolmogorov–Smirnov test for one numeric feature.

    ``p_adjusted`` is the raw p-value and ``severity`` is computed from it alone; `drift_report` replaces
    both once it has every test's p-value.

    Bins: the reference's ``bins``-quantiles (deciles by default) are the cut points. Repeated cut points,
    which a discrete feature such as ``current_step`` (integers 0..6) produces, are collapsed, so there are
    never zero-width bins. The outer bins are open-ended, so current values outside the reference range are
    counted, in the first or last bin, rather than dropped. Bins are right-closed, (e₁, e₂], so each integer
    of a discrete feature gets a bin of its own. NaNs are dropped on each side and counted.
    """
    if bins < 2:
        raise ValueError("numeric drift needs at least 2 bins")
    ref, n_missing_ref = _finite(name, "reference", reference)
    cur, n_missing_cur = _finite(name, "current", current)
    # One in-place sort per side (of _finite's copies, never the caller's array) serves the quantiles, the bin
    # counts and the KS statistic.
    ref.sort()
    cur.sort()

    cuts = np.unique(_sorted_quantiles(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_props = _bin_proportions(ref, cuts)
    cur_props = _bin_proportions(cur, cuts)
    edges = (min(ref[0], cur[0]), *(float(c) for c in cuts), max(ref[-1], cur[-1]))

    merge = _merge(ref, cur)
    statistic, p_value = _ks_two_sample(ref, cur, merge)
    value = psi(ref_props, cur_props)
    wasserstein = _wasserstein_normed_sorted(ref, cur, merge)
    return FeatureDrift(
        name=name,
        kind=NUMERIC,
        psi=value,
        test=KS,
        statistic=statistic,
        p_value=p_value,
        p_adjusted=p_value,
        severity=feature_severity(value, p_value, statistic, wasserstein=wasserstein),
        reference_hist=_tuple(ref_props),
        current_hist=_tuple(cur_props),
        bin_edges=tuple(float(e) for e in edges),
        categories=(),
        effect_size=statistic,
        wasserstein_normed=wasserstein,
        n_missing_reference=n_missing_ref,
        n_missing_current=n_missing_cur,
    )


def categorical_drift(name: str, reference: npt.ArrayLike, current: npt.ArrayLike) -> FeatureDrift:
    """PSI over categories and a chi-square test on the 2 × K table of counts for one categorical feature.

    Categories are the union of both sides, so a category seen on only one side (a new clinic code, a class
    the old model never predicted) is a column with a zero count on the other side: it counts towards the
    test, and PSI's smoothing keeps its term finite. A single category on both sides cannot drift: p = 1.
    Labels may be numbers (codes in the float feature matrix; NaN is missing) or strings (None is missing).
    ``p_adjusted`` and ``severity`` are provisional, as in `numeric_drift`.
    """
    ref, n_missing_ref = _labels(name, "reference", reference)
    cur, n_missing_cur = _labels(name, "current", current)
    if ref.dtype.kind != cur.dtype.kind and not (ref.dtype.kind in "biuf" and cur.dtype.kind in "biuf"):
        # Mixed number/string labels would compare unpredictably; compare them as text.
        ref, cur = ref.astype(str), cur.astype(str)

    values = np.unique(np.concatenate([ref, cur]))
    ref_counts = np.bincount(np.searchsorted(values, ref), minlength=values.size)
    cur_counts = np.bincount(np.searchsorted(values, cur), minlength=values.size)
    ref_props = ref_counts / ref_counts.sum()
    cur_props = cur_counts / cur_counts.sum()

    if values.size < 2:
        statistic, p_value = 0.0, 1.0
    else:
        # Yates' continuity correction applies only to a 2 × 2 table (scipy's default); it is negligible at
        # the sample sizes drift runs on.
        from scipy import stats  # type: ignore[import-untyped]  # here, not at import: ~60 MB in a web worker

        chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    total_variation = float(0.5 * np.abs(ref_props - cur_props).sum())
    value = psi(ref_props, cur_props)
    return FeatureDrift(
        name=name,
        kind=CATEGORICAL,
        psi=value,
        test=CHI2,
        statistic=statistic,
        p_value=p_value,
        p_adjusted=p_value,
        severity=feature_severity(value, p_value, total_variation),
        reference_hist=_tuple(ref_props),
        current_hist=_tuple(cur_props),
        bin_edges=(),
        categories=tuple(_label_text(v) for v in values.tolist()),
        effect_size=total_variation,
        n_missing_reference=n_missing_ref,
        n_missing_current=n_missing_cur,
    )


def feature_severity(psi_value: float, p_adjusted: float, effect_size: float, *, wasserstein: float = 0.0) -> str:
    """DESIGN §3's severity table, with the effect floors on the test rule (module docstring says why).

    ``wasserstein`` is the normed Wasserstein distance (numeric features; 0 for categorical ones).
    """
    large_enough = psi_value >= PSI_WATCH or effect_size >= EFFECT_FLOOR or wasserstein >= WASSERSTEIN_FLOOR
    significant = p_adjusted < ALPHA and large_enough
    if psi_value > PSI_SEVERE or significant:
        return SEVERE
    if psi_value >= PSI_WATCH:
        return WATCH
    return STABLE


def drift_report(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    names: Sequence[str],
    *,
    categorical: Collection[str] = (),
    reference_pred: npt.ArrayLike | None = None,
    current_pred: npt.ArrayLike | None = None,
    bins: int = 10,
) -> DriftReport:
    """Drift of every column of ``current`` (m × k) against ``reference`` (n × k), plus prediction drift.

    Columns named in ``categorical`` hold category codes and get the chi-square test; the rest are numeric.
    ``reference_pred`` and ``current_pred`` are the predicted classes on each side (the model's output on the
    training snapshot, and what it served); give both or neither. Their drift is tested as a categorical
    feature and counts towards the overall severity: a model can drift in what it recommends while no
    single input crosses a threshold. All p-values, features and prediction, are adjusted together.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference and current must be 2-D with the same columns, got {ref.shape} and {cur.shape}")
    if len(names) != ref.shape[1]:
        raise ValueError(f"{len(names)} names for {ref.shape[1]} columns")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    unknown = set(categorical) - set(names)
    if unknown:
        # A typo here would silently test a categorical code as if it were a measurement.
        raise ValueError(f"categorical names not among the features: {sorted(unknown)}")
    if (reference_pred is None) != (current_pred is None):
        raise ValueError("give both reference_pred and current_pred, or neither")

    entries = [
        categorical_drift(name, ref[:, j], cur[:, j])
        if name in categorical
        else numeric_drift(name, ref[:, j], cur[:, j], bins=bins)
        for j, name in enumerate(names)
    ]
    if reference_pred is not None and current_pred is not None:
        entries.append(categorical_drift(PREDICTION_NAME, reference_pred, current_pred))

    adjusted = benjamini_hochberg([entry.p_value for entry in entries])
    entries = [
        replace(
            entry,
            p_adjusted=float(p),
            severity=feature_severity(entry.psi, float(p), entry.effect_size, wasserstein=entry.wasserstein_normed),
        )
        for entry, p in zip(entries, adjusted, strict=True)
    ]
    prediction = entries.pop() if reference_pred is not None else None
    everything = entries if prediction is None else [*entries, prediction]
    worst = max((entry.severity for entry in everything), key=_SEVERITY_RANK.__getitem__, default=STABLE)
    return DriftReport(
        features=tuple(entries),
        prediction=prediction,
        severity=worst,
        n_reference=int(ref.shape[0]),
        n_current=int(cur.shape[0]),
    )


def wasserstein_normed(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """W₁(reference, current) / max(std(reference), 0.001): Evidently's "Wasserstein distance (normed)".

    W₁ is ``scipy.stats.wasserstein_distance`` on the two samples, the area between their empirical CDFs. It is
    computed here from the sorted samples with one linear merge (the same as scipy's to rounding; a test pins
    it), because scipy sorts both sides again, which at 50k rows × 20 features would double a report's time.
    The inputs must be finite; they need not be sorted.
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64).ravel())
    cur = np.sort(np.asarray(current, dtype=np.float64).ravel())
    return _wasserstein_normed_sorted(ref, cur, _merge(ref, cur))


def _merge(ref: FloatArray, cur: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """The pooled values in order, and how many reference values are at or before each position.

    From two sorted samples: a stable sort of two sorted runs is a linear merge (timsort). Shared by the KS
    statistic at large n and the Wasserstein distance, so a feature pays for one merge.
    """
    pooled = np.concatenate([ref, cur])
    order = np.argsort(pooled, kind="stable")
    return pooled[order], np.cumsum(order < ref.size)


def _wasserstein_normed_sorted(
    ref: FloatArray, cur: FloatArray, merge: tuple[FloatArray, npt.NDArray[np.intp]]
) -> float:
    merged, ref_at_or_below = merge
    n_ref, n_cur = ref.size, cur.size
    cur_at_or_below = np.arange(1, merged.size + 1) - ref_at_or_below
    # Between merged[i] and merged[i + 1] both CDFs are constant; on ties the width is 0, so the count at any
    # occurrence of a tied value is as good as at its last.
    gaps = np.abs(ref_at_or_below[:-1] / n_ref - cur_at_or_below[:-1] / n_cur)
    distance = float(np.dot(gaps, np.diff(merged)))
    return distance / max(float(np.std(ref)), _WASSERSTEIN_MIN_NORM)


def _finite(name: str, side: str, values: npt.ArrayLike) -> tuple[FloatArray, int]:
    """Non-missing values as float64, and how many were missing (NaN; ±inf is treated as missing too)."""
    array = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(array)
    kept = array[keep]
    if kept.size == 0:
        # Drift of an all-missing column is a data-quality failure, which the quality gate reports; a number
        # here would hide it.
        raise ValueError(f"feature {name!r} has no non-missing {side} values")
    return kept, int(array.size - kept.size)


def _labels(name: str, side: str, values: npt.ArrayLike) -> tuple[npt.NDArray[np.generic], int]:
    """Non-missing category labels, and how many were missing (NaN for numbers, None or NaN for objects)."""
    array = np.asarray(values).ravel()
    if array.dtype.kind == "f":
        missing = np.isnan(array)
    elif array.dtype.kind == "O":
        # `x != x` is True only for NaN; both comparisons are elementwise on object arrays.
        missing = np.equal(array, np.array(None, dtype=object)) | (array != array)
    else:
        missing = np.zeros(array.shape, dtype=bool)
    kept = array[~missing]
    if kept.dtype.kind == "O":
        kept = kept.astype(str)
    if kept.size == 0:
        raise ValueError(f"feature {name!r} has no non-missing {side} values")
    return kept, int(missing.sum())


def _sorted_quantiles(ordered: FloatArray, q: FloatArray) -> FloatArray:
    """np.quantile's default (linear interpolation) on an already sorted array, without re-partitioning it."""
    position = q * (ordered.size - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, ordered.size - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _bin_proportions(ordered: FloatArray, cuts: FloatArray) -> FloatArray:
    """Share of the sorted values in each bin (-inf, c₁], (c₁, c₂], …, (c_last, +inf).

    Searching the k cuts in the sorted values costs O(k log n) rather than binning all n values.
    """
    at_or_below = np.searchsorted(ordered, cuts, side="right")
    counts = np.diff(np.concatenate(([0], at_or_below, [ordered.size])))
    return counts / ordered.size


def _ks_two_sample(
    ref: FloatArray, cur: FloatArray, merge: tuple[FloatArray, npt.NDArray[np.intp]] | None = None
) -> tuple[float, float]:
    """Two-sample KS statistic D and two-sided p-value, from two sorted samples.

    Up to `_KS_EXACT_MAX` rows a side this is scipy's ``ks_2samp`` (which uses the exact distribution there).
    Above it ``ks_2samp`` switches to its asymptotic method anyway, and its finite-n ``kstwo.sf`` then takes
    15–30 ms per *drifted* feature at 50k rows, most of a report's budget. So there we compute the same D
    (the largest gap between the two empirical CDFs over the pooled values, ties included) and take the
    p-value from the limiting Kolmogorov distribution, which at n·m/(n+m) ≥ 5,000 differs from ``kstwo`` by
    about 1 % relative: nothing a 0.05 threshold can see.
    """
    from scipy import stats  # type: ignore[import-untyped]  # here, not at import: ~60 MB in a web worker

    n_ref, n_cur = ref.size, cur.size
    if max(n_ref, n_cur) <= _KS_EXACT_MAX:
        result = stats.ks_2samp(ref, cur)
        return float(result.statistic), float(result.pvalue)
    merged, ref_at_or_below = _merge(ref, cur) if merge is None else merge
    cur_at_or_below = np.arange(1, merged.size + 1) - ref_at_or_below
    # With ties the empirical CDFs step once per distinct value: compare them after its last occurrence.
    last_of_value = np.append(merged[1:] != merged[:-1], True)
    gaps = ref_at_or_below[last_of_value] / n_ref - cur_at_or_below[last_of_value] / n_cur
    statistic = float(np.max(np.abs(gaps)))
    effective_n = n_ref * n_cur / (n_ref + n_cur)
    p_value = float(stats.kstwobign.sf(np.sqrt(effective_n) * statistic))
    return statistic, min(max(p_value, 0.0), 1.0)


def _label_text(value: object) -> str:
    # Category codes arrive as floats in the feature matrix; "2" reads better than "2.0" on a chart.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _tuple(values: FloatArray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
