"""Ed25519 keys for signing audit checkpoints.

Production takes the key from the environment (AUDIT_SIGNING_KEY: base64 of the 32-byte seed; the
production settings refuse to start without it). The embedded default keeps a generated development key in
AUDIT_KEY_DIR, so the demo works with nothing configured. Older public keys stay trusted for verification
through AUDIT_TRUSTED_PUBLIC_KEYS ("key_id:base64,…") after a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def public_key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def public_key_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _development_seed() -> bytes:
    directory = Path(settings.AUDIT_KEY_DIR)
    path = directory / "audit-ed25519.seed"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    return path.read_bytes()


def audit_signing_key() -> SigningKey:
    configured = settings.AUDIT_SIGNING_KEY
    seed = base64.b64decode(configured) if configured else _development_seed()
    if len(seed) != 32:
        raise ValueError("AUDIT_SIGNING_KEY must be the base64 encoding of a 32-byte Ed25519 seed")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return SigningKey(key_id=settings.AUDIT_SIGNING_KEY_ID or public_key_id(private.public_key()), private=private)


def audit_trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    current = audit_signing_key()
    trusted = {current.key_id: current.public}
    for item in settings.AUDIT_TRUSTED_PUBLIC_KEYS:
        key_id, _, encoded = item.partition(":")
        trusted[key_id] = Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded))
    return trusted
