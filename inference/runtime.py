"""Serving: per-process onnxruntime sessions for signed models only, and SHAP on the matching sklearn model.

A session is created only for bytes a trusted key signed (docs/security.md, "The served model"): the version's
manifest signature is checked against MODEL_SIGNING_KEY's public key and MODEL_TRUSTED_PUBLIC_KEYS, never a key
from the database, and every file serving reads (the ONNX model, the explainer's sklearn pipeline and SHAP
background) must hash to the value inside that signed manifest, not to the row's columns. Anything else raises
ModelUntrusted or ArtifactTampered (ModelUntrusted is one), which the evaluation turns into rules only and a
model_integrity alert.

A verified version stays trusted in this process until the first of: its row no longer matches the signed
manifest (checked on every call); a file's (inode, size, mtime, ctime) changes (stat'ed at most every
MODEL_RESTAT_SECONDS, default 1); or MODEL_REVERIFY_SECONDS pass since the last full verification (then every
file is hashed again at the next call). The
beat task inference.tasks.model_reverify re-verifies the serving versions on disk and opens the alert, which
holds the version in every process; each worker does the same when it starts (inference.tasks).

Scoring uses ONNX (≈10 µs a row); explanation uses the sklearn pipeline that the ONNX was exported from, with an
exact explainer for its family (DESIGN §10):

- logistic: shap's LinearExplainer over the standardised features (≈0.1–0.3 ms a row);
- gradient_boosting: shap's TreeExplainer, path-dependent (no background needed, exact for trees, ≈0.5–2 ms a
  row). It explains the raw per-class scores, so contributions are in log-odds units for both families.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from inference.artifacts import ArtifactMissing, ArtifactTampered, artifact_path, artifact_read_verified
from inference.features import FEATURE_LABELS
from inference.manifest import TrustedManifest, manifest_trusted
from inference.models import ModelVersion
from inference.training import TREE_FAMILIES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Verification:
    """One full verification of a version in this process: what was signed, and the files as they were."""

    manifest: TrustedManifest
    paths: tuple[str, ...]  # one per manifest.artifacts(), same order; str, as pathlib costs µs per call
    fingerprints: tuple[tuple[int, int, int, int], ...]
    at: float  # time.monotonic()

    def files_unchanged(self) -> bool:
        return tuple(_fingerprint(path) for path in self.paths) == self.fingerprints


def _fingerprint(path: str) -> tuple[int, int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


_lock = threading.Lock()
_sessions: dict[str, Any] = {}
_explainers: dict[str, tuple[Any, Any]] = {}
_verified: dict[str, _Verification] = {}
_restatted: dict[str, float] = {}  # when each verified version's files were last stat'ed (time.monotonic())


def _forget(sha256: str) -> None:
    with _lock:
        _verified.pop(sha256, None)
        _restatted.pop(sha256, None)
        _sessions.pop(sha256, None)
        _explainers.pop(sha256, None)


def _verify(model_version: ModelVersion) -> tuple[TrustedManifest, bytes]:
    try:
        manifest = manifest_trusted(model_version)
        reads = [artifact_read_verified(sha256, suffix=suffix) for sha256, suffix in manifest.artifacts()]
    except (ArtifactTampered, ArtifactMissing) as exc:
        _forget(model_version.sha256)
        logger.error("model %s refused: %s", model_version.short_hash, exc)
        raise
    now = time.monotonic()
    with _lock:
        previous = _verified.get(model_version.sha256)
        if previous is not None and previous.manifest != manifest:
            # Same ONNX hash, another signed manifest: whatever was built from the old one goes.
            _sessions.pop(model_version.sha256, None)
            _explainers.pop(model_version.sha256, None)
        _verified[model_version.sha256] = _Verification(
            manifest,
            tuple(str(artifact_path(sha256, suffix=suffix)) for sha256, suffix in manifest.artifacts()),
            tuple(fingerprint for _, fingerprint in reads),
            now,
        )
        _restatted[model_version.sha256] = now
    return manifest, reads[0][0]


def model_verify(model_version: ModelVersion) -> TrustedManifest:
    """Verify the version in full now: the manifest signature with trusted keys, the row against it, and every
    file serving reads hashed against the signed values. On success this process trusts it for up to
    MODEL_REVERIFY_SECONDS; on failure its cached session and explainer are dropped and the error is raised
    (ModelUntrusted, ArtifactTampered or ArtifactMissing)."""
    return _verify(model_version)[0]


def _trusted(model_version: ModelVersion) -> TrustedManifest:
    """The verified manifest, cheaply while nothing changed; else a full verification (model_verify)."""
    now = time.monotonic()
    verification = _verified.get(model_version.sha256)
    if (
        verification is not None
        and now - verification.at < settings.MODEL_REVERIFY_SECONDS
        and verification.manifest.matches_row(model_version)
    ):
        # A stat per file costs about as much as the ONNX call itself, so files are re-stat'ed at most every
        # MODEL_RESTAT_SECONDS; the row check above runs on every call.
        if now - _restatted.get(model_version.sha256, 0.0) < settings.MODEL_RESTAT_SECONDS:
            return verification.manifest
        if verification.files_unchanged():
            _restatted[model_version.sha256] = now
            return verification.manifest
    return model_verify(model_version)


def runtime_cached_versions() -> list[str]:
    """The ONNX hashes this process has verified (and may hold sessions for)."""
    with _lock:
        return list(_verified)


def runtime_cache_clear() -> None:
    with _lock:
        _sessions.clear()
        _explainers.clear()
        _verified.clear()
        _restatted.clear()


@dataclass(frozen=True)
class Factor:
    feature: str
    label: str
    value: float
    contribution: float  # toward the explained class, in log-odds


def _session(model_version: ModelVersion) -> tuple[Any, TrustedManifest]:
    session = _sessions.get(model_version.sha256)
    if session is not None:
        return session, _trusted(model_version)
    import onnxruntime as ort  # heavy: loaded by the first process that scores, not by every web process

    # A new session is built from the very bytes a full verification just hashed against the signed manifest.
    manifest, data = _verify(model_version)
    options = ort.SessionOptions()
    # One thread per session: web workers are processes; intra-op threads only add contention on 2 cores.
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    with _lock:
        _sessions[manifest.onnx_sha256] = session
    return session, manifest


def _row(manifest: TrustedManifest, features: dict[str, float]) -> np.ndarray:
    return np.asarray([[features[name] for name in manifest.feature_names]], dtype=np.float32)


def model_score(model_version: ModelVersion, features: dict[str, float]) -> dict[str, float]:
    """Class probabilities from the ONNX model, in the feature order and class names the manifest signed.
    Raises ModelUntrusted / ArtifactTampered / ArtifactMissing for a model that must not serve."""
    session, manifest = _session(model_version)
    proba = session.run(["probabilities"], {"X": _row(manifest, features)})[0][0]
    # tolist() converts all three at once; a float() per element costs more than the session call's margin.
    return dict(zip(manifest.classes, proba.tolist(), strict=True))


def _explainer(model_version: ModelVersion) -> tuple[tuple[Any, Any], TrustedManifest]:
    """(transform, explainer): `transform` maps a float64 feature row to what the explainer expects. Built only
    from files that hash to the signed manifest's values."""
    manifest = _trusted(model_version)
    cached = _explainers.get(manifest.onnx_sha256)
    if cached is None:
        # Heavy (shap takes seconds, joblib unpickles scikit-learn): loaded by the first explanation only.
        import joblib
        import shap

        # Verified before unpickling: joblib runs code from the file, so an unsigned pipeline is never loaded.
        sklearn_bytes, _ = artifact_read_verified(manifest.sklearn_sha256, suffix=".joblib")
        pipeline = joblib.load(io.BytesIO(sklearn_bytes))
        classifier = pipeline[-1]
        if manifest.family in TREE_FAMILIES:
            # Path-dependent TreeSHAP is exact for the trees themselves; a background set would only slow it.
            cached = (_identity, shap.TreeExplainer(classifier))
        else:
            background_bytes, _ = artifact_read_verified(manifest.background_sha256, suffix=".npy")
            background = np.load(io.BytesIO(background_bytes))
            scaler = pipeline[:-1]
            explainer = shap.LinearExplainer(classifier, shap.maskers.Independent(scaler.transform(background)))
            cached = (scaler.transform, explainer)
        with _lock:
            _explainers[manifest.onnx_sha256] = cached
    return cached, manifest


def _identity(row: np.ndarray) -> np.ndarray:
    return row


def model_explain(
    model_version: ModelVersion, features: dict[str, float], class_name: str, top: int = 5
) -> list[Factor]:
    """The features that pushed the model toward `class_name`, largest |contribution| first."""
    (transform, explainer), manifest = _explainer(model_version)
    names = manifest.feature_names
    # The float32 row the ONNX model scores, widened: the same values sklearn and SHAP see.
    row = transform(_row(manifest, features).astype(np.float64))
    values = np.asarray(explainer(row).values)[0]  # (n_features, n_classes)
    column = values[:, manifest.classes.index(class_name)]
    order = np.argsort(-np.abs(column))[:top]
    return [
        Factor(
            feature=names[i],
            label=FEATURE_LABELS.get(names[i], names[i]),
            value=float(features[names[i]]),
            contribution=float(column[i]),
        )
        for i in order
    ]
