"""Serving: per-process onnxruntime sessions keyed by artifact hash, and SHAP on the matching sklearn model.

Every load re-reads the artifact and re-verifies its SHA-256 (artifacts.artifact_get), so a modified file is
refused instead of served. Scoring uses ONNX (≈10 µs a row); explanation uses the sklearn pipeline that the
ONNX was exported from, with an exact explainer for its family (DESIGN §10):

- logistic: shap's LinearExplainer over the standardised features (≈0.1–0.3 ms a row);
- gradient_boosting: shap's TreeExplainer, path-dependent (no background needed, exact for trees, ≈0.5–2 ms a
  row). It explains the raw per-class scores, so contributions are in log-odds units for both families.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.artifacts import artifact_get
from inference.features import FEATURE_LABELS
from inference.models import ModelVersion
from inference.training import TREE_FAMILIES

_lock = threading.Lock()
_sessions: dict[str, Any] = {}
_explainers: dict[str, tuple[Any, Any]] = {}


@dataclass(frozen=True)
class Factor:
    feature: str
    label: str
    value: float
    contribution: float  # toward the explained class, in log-odds


def _session(model_version: ModelVersion) -> Any:
    session = _sessions.get(model_version.sha256)
    if session is None:
        import onnxruntime as ort

        data = artifact_get(model_version.sha256, suffix=".onnx")
        options = ort.SessionOptions()
        # One thread per session: web workers are processes; intra-op threads only add contention on 2 cores.
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        with _lock:
            _sessions[model_version.sha256] = session
    return session


def runtime_cache_clear() -> None:
    with _lock:
        _sessions.clear()
        _explainers.clear()


def feature_row(model_version: ModelVersion, features: dict[str, float]) -> np.ndarray:
    return np.asarray([[features[name] for name in model_version.feature_names]], dtype=np.float32)


def model_score(model_version: ModelVersion, features: dict[str, float]) -> dict[str, float]:
    """Class probabilities from the ONNX model."""
    session = _session(model_version)
    proba = session.run(["probabilities"], {"X": feature_row(model_version, features)})[0][0]
    # tolist() converts all three at once; a float() per element costs more than the session call's margin.
    return dict(zip(model_version.classes, proba.tolist(), strict=True))


def _explainer(model_version: ModelVersion) -> tuple[Any, Any]:
    """(transform, explainer): `transform` maps a float64 feature row to what the explainer expects."""
    cached = _explainers.get(model_version.sha256)
    if cached is None:
        import joblib
        import shap

        pipeline = joblib.load(io.BytesIO(artifact_get(model_version.sklearn_sha256, suffix=".joblib")))
        classifier = pipeline[-1]
        if model_version.family in TREE_FAMILIES:
            # Path-dependent TreeSHAP is exact for the trees themselves; a background set would only slow it.
            cached = (_identity, shap.TreeExplainer(classifier))
        else:
            background = np.load(io.BytesIO(artifact_get(model_version.background_sha256, suffix=".npy")))
            scaler = pipeline[:-1]
            explainer = shap.LinearExplainer(classifier, shap.maskers.Independent(scaler.transform(background)))
            cached = (scaler.transform, explainer)
        with _lock:
            _explainers[model_version.sha256] = cached
    return cached


def _identity(row: np.ndarray) -> np.ndarray:
    return row


def model_explain(
    model_version: ModelVersion, features: dict[str, float], class_name: str, top: int = 5
) -> list[Factor]:
    """The features that pushed the model toward `class_name`, largest |contribution| first."""
    transform, explainer = _explainer(model_version)
    # The float32 row the ONNX model scores, widened: the same values sklearn and SHAP see.
    row = transform(feature_row(model_version, features).astype(np.float64))
    values = np.asarray(explainer(row).values)[0]  # (n_features, n_classes)
    column = values[:, model_version.classes.index(class_name)]
    order = np.argsort(-np.abs(column))[:top]
    return [
        Factor(
            feature=model_version.feature_names[i],
            label=FEATURE_LABELS.get(model_version.feature_names[i], model_version.feature_names[i]),
            value=float(features[model_version.feature_names[i]]),
            contribution=float(column[i]),
        )
        for i in order
    ]
