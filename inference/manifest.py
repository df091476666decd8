"""Signed model manifests (DESIGN §3: "content-addressed … with a signed manifest and full lineage").

A manifest is the canonical JSON (clinaiops.core.canonical) of a version's artifact hashes and lineage:
ONNX, sklearn and SHAP-background SHA-256; family, parameters, seed and split; the snapshot hash and
feature-set version; feature names and classes; code and library versions; metrics and gates. It is signed
with Ed25519 and stored as text beside the version, so `manifest_verify` can show that neither the row, the
manifest nor an artifact file changed since registration.

Keys are loaded by the one Ed25519 module (clinaiops.core.signing), with a key of their own: a model-signing key
compromise must not also forge audit checkpoints.
Production takes MODEL_SIGNING_KEY (base64 of a 32-byte seed) from the environment; the embedded default keeps
a generated development key in AUDIT_KEY_DIR/model-ed25519.seed. Keys retired by a rotation stay trusted for
verification through MODEL_TRUSTED_PUBLIC_KEYS ("key_id:base64,…").
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from clinaiops.core.canonical import canonical_bytes, sha256_hex
from clinaiops.core.signing import Ed25519Key, signing_key_load, trusted_public_keys
from inference.artifacts import ArtifactMissing, ArtifactTampered, artifact_get
from inference.models import ModelVersion, TrainingRun

MANIFEST_SCHEMA = "clinaiops.model-manifest/1"


def model_signing_key() -> Ed25519Key:
    return signing_key_load(
        configured=settings.MODEL_SIGNING_KEY,
        variable="MODEL_SIGNING_KEY",
        key_dir=Path(settings.AUDIT_KEY_DIR),
        dev_seed_name="model-ed25519.seed",
    )


def model_trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    return trusted_public_keys(
        current=model_signing_key(), configured=settings.MODEL_TRUSTED_PUBLIC_KEYS, variable="MODEL_TRUSTED_PUBLIC_KEYS"
    )


def manifest_content(
    *,
    run: TrainingRun,
    sha256: str,
    sklearn_sha256: str,
    background_sha256: str,
    feature_names: list[str],
    classes: list[str],
    metrics: dict[str, Any],
    gates: dict[str, Any],
) -> dict[str, Any]:
    """What a version's signature covers. Built from the same values that are stored on the row, so
    `manifest_verify` can rebuild it from the row and compare."""
    from inference.training import SPLIT_METHOD, TRAIN_FRACTION

    snapshot = run.snapshot
    return {
        "schema": MANIFEST_SCHEMA,
        "artifacts": {"onnx_sha256": sha256, "sklearn_sha256": sklearn_sha256, "background_sha256": background_sha256},
        "family": run.family,
        "params": run.params,
        "seed": run.seed,
        "split": {"method": SPLIT_METHOD, "train_fraction": TRAIN_FRACTION},
        "snapshot": {
            "sha256": snapshot.sha256,
            "rows": snapshot.row_count,
            "time_start": snapshot.time_start,
            "time_end": snapshot.time_end,
            "provenance_counts": snapshot.provenance_counts,
        },
        "feature_set_version": snapshot.feature_set_version,
        "feature_names": feature_names,
        "classes": classes,
        "code_version": run.code_version,
        "library_versions": run.library_versions,
        "metrics": metrics,
        "gates": gates,
    }


@dataclass(frozen=True)
class SignedManifest:
    text: str
    sha256: str
    signature: str
    key_id: str


def manifest_sign(content: dict[str, Any]) -> SignedManifest:
    data = canonical_bytes(content)
    key = model_signing_key()
    return SignedManifest(
        text=data.decode("utf-8"),
        sha256=sha256_hex(data),
        signature=key.sign(data),
        key_id=key.key_id,
    )


@dataclass(frozen=True)
class ManifestVerification:
    ok: bool
    problems: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return "verified" if self.ok else "FAILED: " + "; ".join(self.problems)


def manifest_verify(version: ModelVersion) -> ManifestVerification:
    """Check, in order: the signature over the stored manifest text; that the text still hashes to the stored
    manifest hash; that the manifest matches the row and its lineage as stored now; that every artifact file
    still hashes to its recorded name. Returns every problem found, not just the first."""
    problems: list[str] = []
    if not version.manifest_text:
        return ManifestVerification(False, ("this version has no manifest (registered before manifests existed)",))
    data = version.manifest_text.encode("utf-8")
    public = model_trusted_public_keys().get(version.manifest_key_id)
    if public is None:
        problems.append(f"manifest key {version.manifest_key_id or '(none)'} is not trusted")
    else:
        try:
            public.verify(base64.b64decode(version.manifest_signature), data)
        except (InvalidSignature, ValueError):
            problems.append("manifest signature does not verify")
    if sha256_hex(data) != version.manifest_sha256:
        problems.append("manifest text does not match its recorded hash")
    run = TrainingRun.objects.select_related("snapshot").get(pk=version.training_run_id)
    expected = manifest_content(
        run=run,
        sha256=version.sha256,
        sklearn_sha256=version.sklearn_sha256,
        background_sha256=version.background_sha256,
        feature_names=list(version.feature_names),
        classes=list(version.classes),
        metrics=version.metrics,
        gates=version.gates,
    )
    expected_bytes = canonical_bytes(expected)
    if expected_bytes != data:
        try:
            stored = json.loads(data)
        except ValueError:
            stored = None
        wanted = json.loads(expected_bytes)
        changed = sorted(key for key in wanted if not isinstance(stored, dict) or stored.get(key) != wanted[key]) or [
            "(encoding)"
        ]
        problems.append(f"the stored record differs from its signed manifest in: {', '.join(changed)}")
    if version.family != run.family or version.feature_set_version != run.snapshot.feature_set_version:
        problems.append("the version's family or feature set differs from its training run")
    for sha256, suffix in (
        (version.sha256, ".onnx"),
        (version.sklearn_sha256, ".joblib"),
        (version.background_sha256, ".npy"),
        (run.snapshot.sha256, ".json"),
    ):
        try:
            artifact_get(sha256, suffix=suffix)
        except (ArtifactTampered, ArtifactMissing) as exc:
            problems.append(str(exc))
    return ManifestVerification(not problems, tuple(problems))
