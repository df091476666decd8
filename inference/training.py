"""Fitting, ONNX export and parity. Pure: numpy/sklearn/skl2onnx/onnxruntime, no Django.

Heavy libraries are imported inside the functions (STYLE.md): the web process should not pay for them
until it scores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"logistic": {"C": 1.0, "max_iter": 1000}}
# DESIGN §3: max |p_sklearn − p_onnx| ≤ 1e-5.
PARITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class FittedModel:
    pipeline: Any
    onnx_bytes: bytes
    sklearn_bytes: bytes
    background: npt.NDArray[np.float32]
    parity_max_abs_diff: float
    metrics: dict[str, float]


def model_fit(
    X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, family: str, params: dict[str, Any], seed: int
) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if family != "logistic":
        raise ValueError(f"unknown model family {family!r}")
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=seed, **params))])
    pipeline.fit(X.astype(np.float64), y)
    return pipeline


def model_export_onnx(pipeline: Any, n_features: int) -> bytes:
    from skl2onnx import to_onnx

    sample = np.zeros((1, n_features), dtype=np.float32)
    onx = to_onnx(
        pipeline,
        sample,
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return bytes(onx.SerializeToString())


def onnx_probabilities(onnx_bytes: bytes, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"X": X.astype(np.float32)})[0])


def onnx_parity(pipeline: Any, onnx_bytes: bytes, X: npt.NDArray[np.float32]) -> float:
    sk = pipeline.predict_proba(X.astype(np.float64))
    ox = onnx_probabilities(onnx_bytes, X)
    return float(np.abs(sk - ox).max())


def classification_metrics(pipeline: Any, X: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    proba = pipeline.predict_proba(X.astype(np.float64))
    predicted = proba.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "n_validation": float(len(y)),
    }
    if len(np.unique(y)) == proba.shape[1]:
        metrics["macro_auroc"] = float(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    return metrics


def model_train(
    X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, family: str, params: dict[str, Any], seed: int
) -> FittedModel:
    """Deterministic for the same data, params and seed: the split and the solver are seeded."""
    import joblib

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = int(len(y) * 0.8)
    train_idx, val_idx = order[:cut], order[cut:]
    pipeline = model_fit(X[train_idx], y[train_idx], family=family, params=params, seed=seed)
    metrics = classification_metrics(pipeline, X[val_idx], y[val_idx])
    onnx_bytes = model_export_onnx(pipeline, X.shape[1])
    parity = onnx_parity(pipeline, onnx_bytes, X)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    background = X[train_idx][rng.permutation(len(train_idx))[:200]].astype(np.float32)
    return FittedModel(pipeline, onnx_bytes, buffer.getvalue(), background, parity, metrics)
