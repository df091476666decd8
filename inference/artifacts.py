"""Content-addressed artifact store under ARTIFACT_ROOT: a file's name is the SHA-256 of its bytes, and every
read re-verifies that hash, so a modified artifact is refused rather than served."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


class ArtifactTampered(RuntimeError):
    """The bytes on disk no longer hash to the name they were stored under."""


class ArtifactMissing(RuntimeError):
    pass


class ModelUntrusted(ArtifactTampered):
    """What would be loaded is not what a trusted key signed: the manifest's signature fails or its key is not
    trusted (inference.manifest), the row disagrees with the signed manifest, or a dataset snapshot lacks a valid
    attestation. A kind of ArtifactTampered, so every caller that refuses a tampered file refuses this too."""


class ModelNotApproved(ModelUntrusted):
    """A version on an arm that reaches patients (production, canary) has no valid approval attestation: no
    trusted key signed that its two sign-offs approved this ONNX file and manifest (inference.manifest)."""


def artifact_fingerprint(sha256: str, *, suffix: str) -> tuple[int, int, int, int] | None:
    """(inode, size, mtime, ctime) of the stored file, None if it is missing. Any rewrite, rename over it or
    utime changes one of them (ctime cannot be set back without the system clock), so a changed fingerprint
    means "hash it again"; an unchanged one is what the scheduled full re-verification is for."""
    try:
        stat = os.stat(_path(sha256, suffix))
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def artifact_read_verified(sha256: str, *, suffix: str) -> tuple[bytes, tuple[int, int, int, int]]:
    """The bytes (hash re-verified, as artifact_get) and the fingerprint of the very file they were read from."""
    path = _path(sha256, suffix)
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError as exc:
        raise ArtifactMissing(f"artifact {sha256[:12]}{suffix} is missing from ARTIFACT_ROOT") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactTampered(f"artifact {sha256[:12]}{suffix} does not match its hash; refusing to load it")
    return data, (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def sidecar_put(sha256: str, *, suffix: str, data: bytes) -> None:
    """Write a small file stored beside an artifact (not content-addressed, e.g. a snapshot's signed
    attestation), atomically."""
    path = _path(sha256, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def sidecar_get(sha256: str, *, suffix: str) -> bytes | None:
    try:
        return _path(sha256, suffix).read_bytes()
    except FileNotFoundError:
        return None


def _path(sha256: str, suffix: str) -> Path:
    root = Path(settings.ARTIFACT_ROOT)
    return root / sha256[:2] / f"{sha256}{suffix}"


def artifact_put(data: bytes, *, suffix: str) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    path = _path(sha256, suffix)
    # An existing file is trusted only if it still hashes to its name; a damaged one is replaced by the bytes
    # we hold, which do hash to it (content addressing makes the rewrite safe).
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written file under a valid name.
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    return sha256


def artifact_get(sha256: str, *, suffix: str) -> bytes:
    path = _path(sha256, suffix)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactMissing(f"artifact {sha256[:12]}{suffix} is missing from ARTIFACT_ROOT") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactTampered(f"artifact {sha256[:12]}{suffix} does not match its hash; refusing to load it")
    return data


def artifact_path(sha256: str, *, suffix: str) -> Path:
    return _path(sha256, suffix)
