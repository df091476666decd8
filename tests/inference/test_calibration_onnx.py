"""Calibration inside the ONNX graph (issue 10): the temperature is fitted on held-out calibration rows, the served
probabilities are the calibrated ones, and the arg-max (the proposed action) does not move."""

from __future__ import annotations

import numpy as np

from inference.calibration import expected_calibration_error
from inference.training import (
    DEFAULT_PARAMS,
    GRADIENT_BOOSTING,
    model_export_onnx,
    model_fit,
    model_train,
    onnx_parity,
    onnx_probabilities,
    onnx_temperature,
    temperature_apply,
    temperature_fit,
    train_validation_split,
)


def _noisy_problem(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes from one score, 30 % of labels flipped at random: a model fitted to it is overconfident."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.digitize(X[:, 0], [-0.5, 0.5]).astype(np.int64)
    flip = rng.random(n) < 0.3
    y[flip] = rng.integers(0, 3, flip.sum())
    return X, y


def test_temperature_scaling_keeps_the_argmax_and_sums_to_one() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    for temperature in (0.5, 1.0, 3.0):
        scaled = temperature_apply(proba, temperature)
        assert np.allclose(scaled.sum(axis=1), 1.0)
        assert (scaled.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert np.allclose(temperature_apply(proba, 1.0), proba)
    assert temperature_apply(proba, 3.0)[0, 0] < 0.7  # a higher temperature softens


def test_the_fitted_temperature_lowers_the_calibration_error_of_an_overconfident_model() -> None:
    X, y = _noisy_problem()
    params = {**DEFAULT_PARAMS[GRADIENT_BOOSTING], "max_iter": 300, "min_samples_leaf": 5, "l2_regularization": 0.0}
    pipeline = model_fit(X[:2000], y[:2000], family=GRADIENT_BOOSTING, params=params, seed=0)
    temperature = temperature_fit(pipeline.predict_proba(X[2000:2500].astype(np.float64)), y[2000:2500])
    raw = pipeline.predict_proba(X[2500:].astype(np.float64))
    assert temperature > 1.0  # it was overconfident
    before = expected_calibration_error(raw, y[2500:]).ece
    after = expected_calibration_error(temperature_apply(raw, temperature), y[2500:]).ece
    assert after < before


def test_the_exported_graph_carries_the_temperature_and_matches_sklearn_within_1e_5() -> None:
    X, y = _noisy_problem(1500)
    fitted = model_train(X, y, family=GRADIENT_BOOSTING, params=DEFAULT_PARAMS[GRADIENT_BOOSTING], seed=3)
    temperature = fitted.metrics["temperature"]
    assert temperature != 1.0
    assert onnx_temperature(fitted.onnx_bytes) == np.float32(temperature)
    assert fitted.parity_max_abs_diff <= 1e-5
    served = onnx_probabilities(fitted.onnx_bytes, X)
    uncalibrated = fitted.pipeline.predict_proba(X.astype(np.float64))
    assert np.abs(served - temperature_apply(uncalibrated, temperature)).max() <= 1e-5
    assert (served.argmax(axis=1) == uncalibrated.argmax(axis=1)).all()
    # Parity is checked against the temperature, so a graph without the step would fail it.
    plain = model_export_onnx(fitted.pipeline, X.shape[1])
    assert onnx_temperature(plain) == 1.0
    assert onnx_parity(fitted.pipeline, plain, X, temperature=temperature) > 1e-3


def test_the_calibration_rows_are_training_rows_never_validation_rows() -> None:
    X, y = _noisy_problem(1000)
    fitted = model_train(X, y, family=GRADIENT_BOOSTING, params=DEFAULT_PARAMS[GRADIENT_BOOSTING], seed=5)
    _, validation = train_validation_split(len(y), 5)
    assert (np.sort(fitted.validation_index) == np.sort(validation)).all()
