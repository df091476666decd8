"""The two model families: ONNX parity, SHAP explanations and determinism (issue 4 "Training and lineage")."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest

from clinaiops.core.models import User
from inference.artifacts import artifact_get
from inference.features import FEATURE_LABELS, FEATURE_NAMES
from inference.models import ModelVersion
from inference.runtime import model_explain, model_score, runtime_cache_clear
from inference.selectors import snapshot_load
from inference.services.training import training_run_create, training_run_execute
from inference.training import (
    GRADIENT_BOOSTING,
    LOGISTIC,
    model_export_onnx,
    model_fit,
    model_train,
    onnx_parity,
    onnx_temperature,
)
from tests.inference.lifecycle_helpers import cohort_labels, cohort_patients, train


@pytest.fixture
def tree_model(trained_model: ModelVersion, ml_engineer: User) -> ModelVersion:
    """A gradient-boosted version trained on the same labels as the logistic fixture."""
    run_snapshot = trained_model.training_run.snapshot
    run = training_run_execute(
        run_id=training_run_create(actor=ml_engineer, snapshot=run_snapshot, family=GRADIENT_BOOSTING, seed=11).pk
    )
    return ModelVersion.objects.get(sha256=run.model_sha256)


def _matrix(version: ModelVersion) -> np.ndarray:
    rows = snapshot_load(version.training_run.snapshot)
    return np.asarray([[row["features"][n] for n in FEATURE_NAMES] for row in rows], dtype=np.float32)


def test_tree_family_onnx_matches_sklearn_within_1e_5_on_every_row(tree_model: ModelVersion) -> None:
    pipeline = joblib.load(io.BytesIO(artifact_get(tree_model.sklearn_sha256, suffix=".joblib")))
    onnx_bytes = artifact_get(tree_model.sha256, suffix=".onnx")
    parity = onnx_parity(pipeline, onnx_bytes, _matrix(tree_model), temperature=onnx_temperature(onnx_bytes))

    assert parity <= 1e-5
    assert tree_model.family == GRADIENT_BOOSTING
    assert tree_model.gates["onnx_parity"]["passed"]
    assert tree_model.gates["onnx_parity"]["max_abs_diff"] == pytest.approx(parity, abs=1e-9)


def test_tree_thresholds_are_snapped_so_adjacent_float32_values_keep_parity() -> None:
    # Two adjacent float32 values split the classes: a float64 midpoint threshold rounded up to float32 sends the
    # upper value down the wrong branch in ONNX (measured 0.99996 before the snapping).
    rng = np.random.default_rng(0)
    low = np.nextafter(np.float32(1.0), np.float32(2.0))
    high = np.nextafter(low, np.float32(2.0))
    X = rng.normal(size=(900, 3)).astype(np.float32)
    X[:, 0] = np.where(rng.random(900) < 0.5, low, high)
    y = np.where(X[:, 0] == low, 0, np.where(X[:, 1] > 0, 1, 2)).astype(np.int64)

    pipeline = model_fit(X, y, family=GRADIENT_BOOSTING, params={"max_iter": 50, "early_stopping": False}, seed=0)

    assert onnx_parity(pipeline, model_export_onnx(pipeline, 3), X, temperature=1.0) <= 1e-5
    assert (pipeline.predict(X.astype(np.float64)) == y).mean() > 0.95  # the snapping kept the split


def test_tree_family_explanations_are_exact_shap_factors(tree_model: ModelVersion) -> None:
    row = snapshot_load(tree_model.training_run.snapshot)[0]["features"]
    proba = model_score(tree_model, row)
    top_class = max(proba, key=lambda name: proba[name])

    factors = model_explain(tree_model, row, top_class, top=len(FEATURE_NAMES))

    assert len(factors) == len(FEATURE_NAMES)
    assert any(abs(f.contribution) > 0 for f in factors)
    # SBP drives the labels, so an SBP-derived feature leads the explanation.
    assert factors[0].feature in {
        "sbp_mean_7d",
        "sbp_excess_7d",
        "dbp_mean_7d",
        "dbp_excess_7d",
        "frac_above_target_14d",
    }
    # TreeSHAP is exact: contributions plus the expected value give the model's raw score for the class.
    pipeline = joblib.load(io.BytesIO(artifact_get(tree_model.sklearn_sha256, suffix=".joblib")))
    x = np.asarray([[row[n] for n in FEATURE_NAMES]], dtype=np.float32).astype(np.float64)
    import shap  # seconds to import, and only this test calls it directly

    explainer = shap.TreeExplainer(pipeline[-1])
    k = tree_model.classes.index(top_class)
    raw = pipeline[-1].decision_function(x)[0][k]
    total = sum(f.contribution for f in factors) + np.asarray(explainer.expected_value)[k]
    assert total == pytest.approx(raw, abs=1e-6)


def test_logistic_family_still_uses_exact_linear_explanations(trained_model: ModelVersion) -> None:
    rows = snapshot_load(trained_model.training_run.snapshot)
    first, second = rows[0]["features"], rows[1]["features"]
    k = trained_model.classes.index("increase")

    explained = [
        {f.feature: f for f in model_explain(trained_model, row, "increase", top=len(FEATURE_NAMES))}
        for row in (first, second)
    ]

    # Exact linear SHAP values are coef·(x − background mean) in the standardised space, so between two rows each
    # feature's contribution moves by exactly coef·Δx, whatever the background. A sampling explainer, the wrong
    # class column or unscaled inputs would not match to 1e-9.
    pipeline = joblib.load(io.BytesIO(artifact_get(trained_model.sklearn_sha256, suffix=".joblib")))
    scaler, classifier = pipeline[:-1], pipeline[-1]

    def scaled(row: dict[str, float]) -> np.ndarray:
        return scaler.transform(np.asarray([[row[n] for n in FEATURE_NAMES]], dtype=np.float32).astype(np.float64))[0]

    expected = classifier.coef_[k] * (scaled(first) - scaled(second))
    moved = [explained[0][name].contribution - explained[1][name].contribution for name in FEATURE_NAMES]
    assert moved == pytest.approx(list(expected), abs=1e-9)
    assert all(f.label == FEATURE_LABELS[f.feature] for f in explained[0].values())


@pytest.mark.parametrize("family", [LOGISTIC, GRADIENT_BOOSTING])
def test_same_snapshot_params_and_seed_give_identical_predictions_for_each_family(
    family: str, ml_engineer: User
) -> None:
    cohort_labels(cohort_patients(), n=800)
    first = train(ml_engineer, family=family, seed=3)
    rows = snapshot_load(first.training_run.snapshot)
    before = [model_score(first, row["features"]) for row in rows[:100]]

    again = training_run_execute(
        run_id=training_run_create(actor=ml_engineer, snapshot=first.training_run.snapshot, family=family, seed=3).pk
    )
    runtime_cache_clear()

    # Identical ONNX bytes, so the same content address: the registry holds one version, and it scores the same.
    assert again.status == "succeeded" and again.model_sha256 == first.sha256
    assert ModelVersion.objects.filter(family=family).count() == 1
    assert [model_score(first, row["features"]) for row in rows[:100]] == before
    # And refitting in memory reproduces the stored sklearn model's probabilities bit for bit.
    X = _matrix(first)
    y = np.asarray([first.classes.index(row["label"]) for row in rows])
    refit = model_train(X, y, family=family, params=first.training_run.params, seed=3)
    stored = joblib.load(io.BytesIO(artifact_get(first.sklearn_sha256, suffix=".joblib")))
    assert np.array_equal(
        refit.pipeline.predict_proba(X.astype(np.float64)), stored.predict_proba(X.astype(np.float64))
    )


def test_a_different_seed_gives_a_different_version(ml_engineer: User) -> None:
    cohort_labels(cohort_patients(), n=800)
    one = train(ml_engineer, family=GRADIENT_BOOSTING, seed=1)
    two = train(ml_engineer, family=GRADIENT_BOOSTING, seed=2)
    assert one.sha256 != two.sha256
    assert one.training_run.snapshot == two.training_run.snapshot
