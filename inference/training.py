"""Fitting, ONNX export and parity. Pure: numpy/sklearn/skl2onnx/onnxruntime, no Django.

Two families (issue 4: one linear, one tree-based):

- ``logistic``: standardised multinomial logistic regression, explained with shap's exact LinearExplainer.
- ``gradient_boosting``: scikit-learn's HistGradientBoostingClassifier, explained with shap's exact
  TreeExplainer. shap 0.51 supports the multiclass HGB model with ``model_output="raw"`` (the per-class raw
  scores before the softmax, i.e. log-odds units, like the linear explanation); it refuses probability output
  for multiclass HGB (shap issue #1028). Measured here: SHAP values plus the expected value reproduce
  ``decision_function`` to 4e-15. DESIGN §10 measured its ONNX scoring on this machine (≈ 8 µs a row),
  and on the demo cohort it reached a balanced accuracy of 0.69–0.81 against 0.54–0.60 for the logistic model
  (validation splits of three seeds), so no second tree family (random forest, extra trees) was needed.

Calibration (issue 10). The approval policy lets a confident proposal reach the patient unreviewed, so confidence
must mean what it says. After fitting, one temperature T is fitted on held-out calibration rows (the last
CALIBRATION_FRACTION of the training rows, never the validation rows) by minimising the log loss of
softmax(log p / T), and the same step is appended to the ONNX graph (Clip → Log → Div T → Softmax), so the served
probabilities are the calibrated ones and no second artifact exists to be swapped. Temperature scaling keeps the
arg-max, so the proposed action and the SHAP explanation (of the fitted model's raw scores) are unchanged; only
the confidence moves. T is recorded in the metrics, which the manifest signs.

Heavy libraries are imported inside the functions (STYLE.md): the web process should not pay for them
until it scores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

LOGISTIC = "logistic"
GRADIENT_BOOSTING = "gradient_boosting"

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    LOGISTIC: {"C": 1.0, "max_iter": 1000},
    GRADIENT_BOOSTING: {
        "max_iter": 200,
        "learning_rate": 0.1,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
        # Early stopping would carve its own random validation split out of the training rows; the split is
        # ours to choose and record (TRAIN_FRACTION, seed), so it stays off.
        "early_stopping": False,
    },
}
TREE_FAMILIES = frozenset({GRADIENT_BOOSTING})
# DESIGN §3: max |p_sklearn − p_onnx| ≤ 1e-5.
PARITY_TOLERANCE = 1e-5
TRAIN_FRACTION = 0.8
# Of the training rows, the last 15 % (in the seeded order) fit the temperature instead of the model.
CALIBRATION_FRACTION = 0.15
TEMPERATURE_RANGE = (0.05, 20.0)
# Probabilities are clipped here before the logarithm, in numpy and in the ONNX graph alike.
PROBABILITY_FLOOR = 1e-12
BACKGROUND_ROWS = 200
# Recorded in the manifest so a later gate can recompute exactly which rows a model was validated on.
SPLIT_METHOD = "numpy.default_rng(seed).permutation; first 80% train, rest validation"


@dataclass(frozen=True)
class FittedModel:
    pipeline: Any
    onnx_bytes: bytes
    sklearn_bytes: bytes
    background: npt.NDArray[np.float32]
    parity_max_abs_diff: float
    metrics: dict[str, float]
    validation_index: npt.NDArray[np.intp]


def train_validation_split(n: int, seed: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The seeded split every run uses. Gates recompute it to find a model's validation rows (and the rows an
    incumbent was trained on), so it must stay a function of (n, seed) alone."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * TRAIN_FRACTION)
    return order[:cut], order[cut:]


def model_fit(
    X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, family: str, params: dict[str, Any], seed: int
) -> Any:
    from sklearn.pipeline import Pipeline

    if family == LOGISTIC:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=seed, **params))])
        pipeline.fit(X.astype(np.float64), y)
        return pipeline
    if family == GRADIENT_BOOSTING:
        from sklearn.ensemble import HistGradientBoostingClassifier

        pipeline = Pipeline([("clf", HistGradientBoostingClassifier(random_state=seed, **params))])
        pipeline.fit(X.astype(np.float64), y)
        _snap_thresholds_to_float32(pipeline[-1])
        return pipeline
    raise ValueError(f"unknown model family {family!r}")


def _snap_thresholds_to_float32(model: Any) -> None:
    """Make every split threshold a float32 value without changing any decision on float32 inputs.

    scikit-learn compares the input, as float64, with a float64 threshold (a midpoint between two observed
    values); the ONNX TreeEnsemble compares float32 with the threshold rounded to float32. When the rounding
    goes up past an observed value x, the two disagree at exactly x. Measured: two adjacent float32 values
    straddling a split gave max |p_sklearn − p_onnx| = 0.99996. Replacing each threshold t by the largest
    float32 ≤ t keeps `x <= t` unchanged for every float32 x (nothing representable lies in between), and the
    runtime only ever feeds float32 rows, so sklearn, SHAP and ONNX then take the same branch everywhere.
    skl2onnx applies the same rule to RandomForest but not to HistGradientBoosting (1.20)."""
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            threshold = nodes["num_threshold"]
            rounded = threshold.astype(np.float32)
            down = np.where(rounded.astype(np.float64) > threshold, np.nextafter(rounded, np.float32(-np.inf)), rounded)
            nodes["num_threshold"] = np.where(nodes["is_leaf"] == 1, threshold, down.astype(np.float64))


def temperature_apply(proba: npt.NDArray[np.floating[Any]], temperature: float) -> npt.NDArray[np.float64]:
    """softmax(log p / T): the calibration step, as the ONNX graph computes it."""
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), PROBABILITY_FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return np.asarray(scaled / scaled.sum(axis=1, keepdims=True), dtype=np.float64)


def temperature_fit(proba: npt.NDArray[np.floating[Any]], y: npt.NDArray[np.int64]) -> float:
    """The T in TEMPERATURE_RANGE that minimises the log loss of the scaled probabilities on (proba, y)."""
    from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]  # scipy ships no stubs here

    def loss(temperature: float) -> float:
        scaled = temperature_apply(proba, temperature)
        return float(-np.log(np.clip(scaled[np.arange(len(y)), y], PROBABILITY_FLOOR, 1.0)).mean())

    result = minimize_scalar(loss, bounds=TEMPERATURE_RANGE, method="bounded", options={"xatol": 1e-4})
    return round(float(result.x), 4)


def model_export_onnx(pipeline: Any, n_features: int, *, temperature: float = 1.0) -> bytes:
    """The pipeline as ONNX with its output `probabilities` calibrated by `temperature` in the same graph."""
    from onnx import TensorProto, helper
    from skl2onnx import to_onnx

    sample = np.zeros((1, n_features), dtype=np.float32)
    onx = to_onnx(
        pipeline,
        sample,
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    graph = onx.graph
    (output,) = [o for o in graph.output if o.name == "probabilities"]
    for node in graph.node:  # the fitted model's probabilities become an inner value
        node.output[:] = ["probabilities_uncalibrated" if name == "probabilities" else name for name in node.output]
    graph.initializer.extend(
        [
            helper.make_tensor("calibration_floor", TensorProto.FLOAT, [], [PROBABILITY_FLOOR]),
            helper.make_tensor("calibration_ceiling", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("calibration_temperature", TensorProto.FLOAT, [], [temperature]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "Clip",
                ["probabilities_uncalibrated", "calibration_floor", "calibration_ceiling"],
                ["calibration_clipped"],
            ),
            helper.make_node("Log", ["calibration_clipped"], ["calibration_log"]),
            helper.make_node("Div", ["calibration_log", "calibration_temperature"], ["calibration_logits"]),
            helper.make_node("Softmax", ["calibration_logits"], [output.name], axis=-1),
        ]
    )
    return bytes(onx.SerializeToString())


def onnx_temperature(onnx_bytes: bytes) -> float:
    """The calibration temperature inside an exported graph (1.0 for a graph exported before issue 10)."""
    import onnx
    from onnx import numpy_helper

    for tensor in onnx.load_from_string(onnx_bytes).graph.initializer:
        if tensor.name == "calibration_temperature":
            return float(numpy_helper.to_array(tensor))
    return 1.0


def onnx_probabilities(onnx_bytes: bytes, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import onnxruntime as ort  # heavy: loaded by the first batch scoring only

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # batch scoring in gates and reports; spinning threads cost more than they give
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], {"X": X.astype(np.float32)})[0])


def onnx_parity(pipeline: Any, onnx_bytes: bytes, X: npt.NDArray[np.float32], *, temperature: float) -> float:
    """max |p_sklearn − p_onnx|, where the sklearn side applies the recorded temperature in float64 itself: the
    check covers the exported calibration step too, not only the trees."""
    # sklearn sees the float32 values the runtime feeds, widened to float64.
    sk = temperature_apply(pipeline.predict_proba(X.astype(np.float32).astype(np.float64)), temperature)
    ox = onnx_probabilities(onnx_bytes, X)
    return float(np.abs(sk - ox).max())


def classification_metrics(
    pipeline: Any, X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, temperature: float
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    proba = temperature_apply(pipeline.predict_proba(X.astype(np.float64)), temperature)
    predicted = proba.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "n_validation": float(len(y)),
        "temperature": temperature,
    }
    if len(np.unique(y)) == proba.shape[1]:
        metrics["macro_auroc"] = float(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    return metrics


def model_train(
    X: npt.NDArray[np.float32], y: npt.NDArray[np.int64], *, family: str, params: dict[str, Any], seed: int
) -> FittedModel:
    """Deterministic for the same data, params and seed: the split, the solver and the trees are seeded."""
    import joblib

    train_idx, val_idx = train_validation_split(len(y), seed)
    cut = int(len(train_idx) * (1 - CALIBRATION_FRACTION))
    fit_idx, calibration_idx = train_idx[:cut], train_idx[cut:]
    pipeline = model_fit(X[fit_idx], y[fit_idx], family=family, params=params, seed=seed)
    temperature = temperature_fit(pipeline.predict_proba(X[calibration_idx].astype(np.float64)), y[calibration_idx])
    metrics = classification_metrics(pipeline, X[val_idx], y[val_idx], temperature=temperature)
    onnx_bytes = model_export_onnx(pipeline, X.shape[1], temperature=temperature)
    parity = onnx_parity(pipeline, onnx_bytes, X, temperature=temperature)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    pick = np.random.default_rng(seed).permutation(len(fit_idx))[:BACKGROUND_ROWS]
    background = X[fit_idx][pick].astype(np.float32)
    return FittedModel(pipeline, onnx_bytes, buffer.getvalue(), background, parity, metrics, val_idx)
