"""Held-out metrics of a three-class model with seeded bootstrap intervals, for the model card. Pure: numpy only.

The point estimates are inference.calibration.multiclass_metrics (scikit-learn), as the gates compute them. The
intervals come from `weighted_metrics`, the same four metrics written with row weights, so a bootstrap replicate is
a row of multinomial counts and every replicate is computed at once: 300 replicates take milliseconds, where a loop
over scikit-learn took seconds on this machine. With every weight 1 they are scikit-learn's numbers (a test pins
it): accuracy, balanced accuracy (mean recall over the classes present), log loss (probabilities clipped to
[eps, 1 − eps]) and macro one-vs-rest AUROC (ties count one half), undefined (NaN) when a class is absent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def weighted_metrics(
    proba: npt.NDArray[np.float64], y: npt.NDArray[np.int64], weights: npt.NDArray[np.float64]
) -> dict[str, npt.NDArray[np.float64]]:
    """proba (rows × classes), y (rows), weights (replicates × rows) → metric name → one value per replicate."""
    n_classes = proba.shape[1]
    total = weights.sum(axis=1)
    predicted = proba.argmax(axis=1)
    correct = (predicted == y).astype(np.float64)
    truth = np.stack([(y == c).astype(np.float64) for c in range(n_classes)], axis=1)  # rows × classes
    per_class_n = weights @ truth  # replicates × classes
    per_class_right = weights @ (truth * correct[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(per_class_n > 0, per_class_right / per_class_n, np.nan)
        present = np.isfinite(recall)
        balanced = np.where(present.any(axis=1), np.nansum(recall, axis=1) / present.sum(axis=1), np.nan)
        eps = np.finfo(np.float64).eps
        own = np.clip(proba[np.arange(len(y)), y], eps, 1 - eps)
        log_loss = -(weights @ np.log(own)) / total
        aurocs = np.stack([_weighted_auc(proba[:, c], y == c, weights) for c in range(n_classes)], axis=1)
        macro = np.where((per_class_n > 0).all(axis=1), aurocs.mean(axis=1), np.nan)
        return {
            "accuracy": (weights @ correct) / total,
            "balanced_accuracy": balanced,
            "log_loss": log_loss,
            "macro_auroc": macro,
        }


def _weighted_auc(
    score: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """One-vs-rest AUROC per replicate: the weighted share of (positive, negative) pairs ranked right, ties ½."""
    levels, level_of_row = np.unique(score, return_inverse=True)
    onehot = np.zeros((len(score), len(levels)))
    onehot[np.arange(len(score)), level_of_row.reshape(-1)] = 1.0
    pos = weights @ (onehot * positive[:, None])  # replicates × score levels
    neg = weights @ (onehot * ~positive[:, None])
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    right = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(pairs > 0, right / pairs, np.nan), dtype=np.float64)


def bootstrap_intervals(
    proba: npt.NDArray[np.float64], y: npt.NDArray[np.int64], *, resamples: int, seed: int, confidence: float = 0.95
) -> dict[str, tuple[float | None, float | None, int]]:
    """metric → (low, high, replicates where it was defined), percentile bootstrap over rows."""
    rng = np.random.default_rng(seed)
    n = len(y)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    tail = 100 * (1 - confidence) / 2
    out: dict[str, tuple[float | None, float | None, int]] = {}
    for name, values in weighted_metrics(proba, y, weights).items():
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            out[name] = (None, None, 0)
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        out[name] = (float(low), float(high), int(finite.size))
    return out
