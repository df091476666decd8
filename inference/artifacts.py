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
