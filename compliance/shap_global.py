"""Global SHAP importance for the explainability report and the model card. Pure: numpy only, no Django.

The SHAP values themselves come from the serving runtime's explainer (inference.runtime: TreeExplainer for the
trees, LinearExplainer for the logistic model, both exact, in log-odds units of each class's raw score); this
module only summarises them: mean |SHAP| per feature and class, the overall mean over classes, and the mean signed
value, which says the usual direction of a feature's push.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    mean_abs: float  # mean over rows and classes of |SHAP|
    mean_abs_by_class: dict[str, float]
    mean_by_class: dict[str, float]  # signed: > 0 pushes toward the class on average


@dataclass(frozen=True)
class GlobalShap:
    rows: int
    classes: tuple[str, ...]
    features: tuple[FeatureImportance, ...]  # largest mean |SHAP| first; ties in feature order


def shap_values_3d(values: Any, n_rows: int, n_features: int, n_classes: int) -> npt.NDArray[np.float64]:
    """shap's values as (rows, features, classes), whichever layout the explainer returned."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape == (n_rows, n_features, n_classes):
        return array
    if array.shape == (n_classes, n_rows, n_features):  # older shap: one matrix per class
        return np.transpose(array, (1, 2, 0))
    raise ValueError(f"unexpected SHAP values shape {array.shape} for {n_rows}×{n_features}×{n_classes}")


def global_shap(values: npt.NDArray[np.float64], features: Sequence[str], classes: Sequence[str]) -> GlobalShap:
    """Summarise (rows, features, classes) SHAP values."""
    if values.ndim != 3 or values.shape[1:] != (len(features), len(classes)):
        raise ValueError(f"SHAP values must be rows × {len(features)} × {len(classes)}, got {values.shape}")
    if values.shape[0] == 0:
        raise ValueError("global SHAP needs at least one row")
    mean_abs = np.abs(values).mean(axis=0)  # (features, classes)
    mean = values.mean(axis=0)
    overall = mean_abs.mean(axis=1)
    order = sorted(range(len(features)), key=lambda i: (-overall[i], i))
    return GlobalShap(
        rows=int(values.shape[0]),
        classes=tuple(classes),
        features=tuple(
            FeatureImportance(
                feature=features[i],
                mean_abs=float(overall[i]),
                mean_abs_by_class={c: float(mean_abs[i, k]) for k, c in enumerate(classes)},
                mean_by_class={c: float(mean[i, k]) for k, c in enumerate(classes)},
            )
            for i in order
        ),
    )
