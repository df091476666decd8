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

Serving trusts the manifest, never the row: `manifest_trusted` checks the signature against those keys (never
a key named by the database alone) and returns the artifact hashes, feature names and classes as signed. The
runtime (inference.runtime) loads only bytes that hash to those values; a row whose hashes, features or
classes differ from its signed manifest is refused (docs/security.md, "The served model").

A manifest proves a version was registered, not that it was approved. When the second sign-off approves a
version, `approval_attest` signs, with the same key, that this ONNX hash and manifest were approved by those two
sign-offs, and stores it beside the ONNX file (`<sha256>.onnx.approval.sig` under ARTIFACT_ROOT). Arms that reach
patients (production, canary) serve only a version whose attestation `approval_trusted` accepts, so setting
`approval_state` and a serving pointer with SQL is not enough; the shadow arm needs none.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from clinaiops.core.canonical import canonical_bytes, sha256_hex
from clinaiops.core.signing import Ed25519Key, signing_key_load, trusted_public_keys
from inference.artifacts import (
    ArtifactMissing,
    ArtifactTampered,
    ModelNotApproved,
    ModelUntrusted,
    artifact_get,
    artifact_path,
    sidecar_get,
    sidecar_put,
)
from inference.models import ApprovalState, Arm, ModelVersion, ServingPointer, TrainingRun
from inference.training import SPLIT_METHOD, TRAIN_FRACTION

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


_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TrustedManifest:
    """What a trusted key signed for one version: the only source of the hashes the runtime loads."""

    key_id: str
    signature: str
    onnx_sha256: str
    sklearn_sha256: str
    background_sha256: str
    snapshot_sha256: str
    family: str
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]

    def artifacts(self) -> tuple[tuple[str, str], ...]:
        """(hash, suffix) of every file serving reads: the ONNX model and the SHAP explainer's two files."""
        return ((self.onnx_sha256, ".onnx"), (self.sklearn_sha256, ".joblib"), (self.background_sha256, ".npy"))

    def matches_row(self, version: ModelVersion) -> bool:
        """The row still says what was signed (cheap enough for every scoring call)."""
        return (
            version.manifest_signature == self.signature
            and version.sha256 == self.onnx_sha256
            and version.sklearn_sha256 == self.sklearn_sha256
            and version.background_sha256 == self.background_sha256
            and version.family == self.family
            and tuple(version.feature_names) == self.feature_names
            and tuple(version.classes) == self.classes
        )


def _sha256_field(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ModelUntrusted(f"the signed manifest has no valid {what}")
    return value


def manifest_trusted(version: ModelVersion) -> TrustedManifest:
    """The version's manifest, if a trusted key signed it and the row agrees with it; else ModelUntrusted.

    Trusted keys are the current MODEL_SIGNING_KEY's and MODEL_TRUSTED_PUBLIC_KEYS: the row's key id only picks
    one of them. Reads no other row and no file: the caller hashes the files against the returned values."""
    if not version.manifest_text:
        raise ModelUntrusted(f"model {version.short_hash} has no signed manifest; it cannot serve")
    data = version.manifest_text.encode("utf-8")
    public = model_trusted_public_keys().get(version.manifest_key_id)
    if public is None:
        raise ModelUntrusted(f"model {version.short_hash}: manifest key {version.manifest_key_id!r} is not trusted")
    try:
        public.verify(base64.b64decode(version.manifest_signature, validate=True), data)
    except (InvalidSignature, ValueError) as exc:
        raise ModelUntrusted(f"model {version.short_hash}: the manifest signature does not verify") from exc
    try:
        content = json.loads(data)
    except ValueError as exc:  # signed but not JSON: never produced by manifest_sign
        raise ModelUntrusted(f"model {version.short_hash}: the signed manifest is not JSON") from exc
    if not isinstance(content, dict) or content.get("schema") != MANIFEST_SCHEMA:
        raise ModelUntrusted(f"model {version.short_hash}: the signed manifest has an unknown schema")
    artifacts, snapshot = content.get("artifacts"), content.get("snapshot")
    artifacts = artifacts if isinstance(artifacts, dict) else {}
    snapshot = snapshot if isinstance(snapshot, dict) else {}
    names, classes = content.get("feature_names"), content.get("classes")
    if not isinstance(names, list) or not isinstance(classes, list):
        raise ModelUntrusted(f"model {version.short_hash}: the signed manifest names no features or classes")
    trusted = TrustedManifest(
        key_id=version.manifest_key_id,
        signature=version.manifest_signature,
        onnx_sha256=_sha256_field(artifacts.get("onnx_sha256"), "ONNX hash"),
        sklearn_sha256=_sha256_field(artifacts.get("sklearn_sha256"), "explainer model hash"),
        background_sha256=_sha256_field(artifacts.get("background_sha256"), "explainer background hash"),
        snapshot_sha256=_sha256_field(snapshot.get("sha256"), "snapshot hash"),
        family=str(content.get("family", "")),
        feature_names=tuple(str(name) for name in names),
        classes=tuple(str(name) for name in classes),
    )
    if not trusted.matches_row(version):
        raise ModelUntrusted(
            f"model {version.short_hash}: the database row differs from its signed manifest (hashes, family, "
            "features or classes); refusing it"
        )
    return trusted


APPROVAL_SCHEMA = "clinaiops.model-approval/1"
# The arms whose output reaches a patient; the shadow's is only logged, so a validated shadow needs no approval.
PATIENT_ARMS = (Arm.PRODUCTION, Arm.CANARY)
APPROVAL_SUFFIX = ".onnx.approval.sig"


@dataclass(frozen=True)
class ApprovalSignoff:
    """One of the two sign-offs an approval attestation names (governance.signoffs passes them in)."""

    signoff_id: int
    signature_id: int
    role: str
    signed_at: str  # ISO 8601, UTC


def approval_content(*, version: ModelVersion, signoffs: list[ApprovalSignoff]) -> dict[str, Any]:
    """What an approval attestation signs: this version's ONNX file and manifest were approved by these two
    sign-offs."""
    return {
        "schema": APPROVAL_SCHEMA,
        "model_version_id": version.pk,
        "onnx_sha256": version.sha256,
        "manifest_sha256": version.manifest_sha256,
        "state": ApprovalState.APPROVED.value,
        "signoffs": [
            {"signoff_id": s.signoff_id, "signature_id": s.signature_id, "role": s.role, "signed_at": s.signed_at}
            for s in sorted(signoffs, key=lambda s: s.signoff_id)
        ],
    }


def approval_attest(*, version: ModelVersion, signoffs: list[ApprovalSignoff]) -> None:
    """Sign and store the approval of `version` (called in the transaction of the second sign-off)."""
    if len(signoffs) != 2 or len({s.role for s in signoffs}) != 2:
        raise ValueError("an approval attestation names exactly two sign-offs of different roles")
    key = model_signing_key()
    content = approval_content(version=version, signoffs=signoffs)
    sidecar_put(
        version.sha256,
        suffix=APPROVAL_SUFFIX,
        data=canonical_bytes(
            {"content": content, "key_id": key.key_id, "signature": key.sign(canonical_bytes(content))}
        ),
    )


def approval_revoke(version: ModelVersion) -> None:
    """Remove the attestation when an approved version leaves that state (retired): it never serves again."""
    artifact_path(version.sha256, suffix=APPROVAL_SUFFIX).unlink(missing_ok=True)


def approval_trusted(version: ModelVersion) -> dict[str, Any]:
    """The version's approval attestation, if a trusted key signed it for this row's ONNX hash, manifest and id
    and the row is approved; else ModelNotApproved. Trusted keys as for the manifest (never one the file or the
    database names alone)."""
    what = f"model {version.short_hash}"
    if version.approval_state != ApprovalState.APPROVED:
        raise ModelNotApproved(f"{what} is {version.approval_state}, not approved; it cannot serve patients")
    raw = sidecar_get(version.sha256, suffix=APPROVAL_SUFFIX)
    if raw is None:
        raise ModelNotApproved(f"{what} has no signed approval attestation; it cannot serve patients")
    try:
        stored = json.loads(raw)
        content, key_id, signature = stored["content"], stored["key_id"], stored["signature"]
        public = model_trusted_public_keys().get(key_id)
        if public is None:
            raise ModelNotApproved(f"{what}: its approval attestation key {key_id!r} is not trusted")
        public.verify(base64.b64decode(signature, validate=True), canonical_bytes(content))
    except ModelNotApproved:
        raise
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise ModelNotApproved(f"{what}: its approval attestation does not verify") from exc
    signoffs = content.get("signoffs") if isinstance(content, dict) else None
    if (
        not isinstance(content, dict)
        or content.get("schema") != APPROVAL_SCHEMA
        or content.get("state") != ApprovalState.APPROVED
        or content.get("model_version_id") != version.pk
        or content.get("onnx_sha256") != version.sha256
        or content.get("manifest_sha256") != version.manifest_sha256
        or content.get("manifest_sha256") != sha256_hex(version.manifest_text.encode("utf-8"))
        or not isinstance(signoffs, list)
        or len(signoffs) != 2
    ):
        raise ModelNotApproved(f"{what}: its approval attestation names another version, manifest or state")
    return content


def model_trust_problems(version: ModelVersion) -> list[str]:
    """Why serving would refuse `version` now: its manifest (manifest_trusted), then each file it would read
    hashed against the signed value, then, if it is on an arm that reaches patients, its approval attestation
    (approval_trusted). Empty when it may serve."""
    try:
        trusted = manifest_trusted(version)
    except ModelUntrusted as exc:
        return [str(exc)]
    problems = []
    for sha256, suffix in trusted.artifacts():
        try:
            artifact_get(sha256, suffix=suffix)
        except (ArtifactTampered, ArtifactMissing) as exc:
            problems.append(str(exc))
    if ServingPointer.objects.filter(model_version=version, arm__in=PATIENT_ARMS).exists():
        try:
            approval_trusted(version)
        except ModelNotApproved as exc:
            problems.append(str(exc))
    return problems
