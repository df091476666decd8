"""Scoring inside the recommendation path (issue 4): `inference.runtime.model_score` — the call the loops make,
features already computed — against a bare onnxruntime `InferenceSession.run` and sklearn `predict_proba` on
the same model and the same row, all in this run."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import django_setup

REPEATS = 20_000


def best_per_call(fn: object, repeats: int = REPEATS, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - started) / repeats)
    return best


def main() -> None:
    django_setup(fresh=False)
    # Imported once Django is configured: the model modules need settings and an app registry.
    import onnxruntime as ort
    from django.utils import timezone

    from inference.artifacts import artifact_put
    from inference.features import FEATURE_NAMES
    from inference.manifest import MANIFEST_SCHEMA, manifest_sign
    from inference.models import CLASS_ORDER, ModelVersion
    from inference.runtime import model_score, runtime_cache_clear
    from inference.training import model_train

    rng = np.random.default_rng(5)
    X = rng.normal(size=(4000, len(FEATURE_NAMES))).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 2] + rng.normal(scale=0.5, size=len(X)), [-0.7, 0.7]).astype(np.int64)
    fitted = model_train(X, y, family="logistic", params={"C": 1.0, "max_iter": 1000}, seed=0)
    buffer = io.BytesIO()
    np.save(buffer, fitted.background)
    hashes = {
        "onnx_sha256": artifact_put(fitted.onnx_bytes, suffix=".onnx"),
        "sklearn_sha256": artifact_put(fitted.sklearn_bytes, suffix=".joblib"),
        "background_sha256": artifact_put(buffer.getvalue(), suffix=".npy"),
    }
    # The runtime serves only a signed manifest (issue 8 §2): sign one for this unsaved version.
    signed = manifest_sign({
        "schema": MANIFEST_SCHEMA, "artifacts": hashes, "family": "logistic", "snapshot": {"sha256": "0" * 64},
        "feature_names": list(FEATURE_NAMES), "classes": list(CLASS_ORDER),
    })  # fmt: skip
    version = ModelVersion(
        sha256=hashes["onnx_sha256"], sklearn_sha256=hashes["sklearn_sha256"],
        background_sha256=hashes["background_sha256"],
        family="logistic", feature_set_version="bench", feature_names=list(FEATURE_NAMES), classes=list(CLASS_ORDER),
        metrics={}, parity_max_abs_diff=fitted.parity_max_abs_diff, created_at=timezone.now(),
        manifest_text=signed.text, manifest_sha256=signed.sha256, manifest_signature=signed.signature,
        manifest_key_id=signed.key_id,
    )  # fmt: skip
    features = {name: float(X[0, i]) for i, name in enumerate(FEATURE_NAMES)}
    row = X[:1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    bare = ort.InferenceSession(fitted.onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    runtime_cache_clear()
    model_score(version, features)  # load once (hash re-verified), as a worker does on its first request

    # Interleave the rounds, so a slower stretch of the machine hits both sides rather than one.
    t_bare = t_ours = float("inf")
    for _ in range(9):
        t_bare = min(t_bare, best_per_call(lambda: bare.run(["probabilities"], {"X": row}), rounds=1))
        t_ours = min(t_ours, best_per_call(lambda: model_score(version, features), rounds=1))
    t_sklearn = best_per_call(lambda: fitted.pipeline.predict_proba(row.astype(np.float64)), repeats=2000)
    print("scoring benchmark (one row, multinomial logistic, 17 features)")
    print(f"  bare InferenceSession.run:      {t_bare * 1e6:8.1f} µs")
    print(f"  runtime model_score (our call): {t_ours * 1e6:8.1f} µs = {t_ours / t_bare:.2f}× bare "
          f"(target ≤ 2×: {'PASS' if t_ours <= 2 * t_bare else 'FAIL'})")  # fmt: skip
    print(f"  sklearn predict_proba:          {t_sklearn * 1e6:8.1f} µs; our call is {t_sklearn / t_ours:.0f}× faster "
          f"(target ≥ 10×: {'PASS' if t_sklearn >= 10 * t_ours else 'FAIL'})")  # fmt: skip


if __name__ == "__main__":
    main()
