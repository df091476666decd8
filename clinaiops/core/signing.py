"""Ed25519 signing keys, one implementation for every signer: audit checkpoints (clinaiops.audit), model
manifests (inference.manifest) and evidence bundles (compliance).

Each signer has its own key, so a compromise of one cannot forge another's signatures. A key comes from the
environment as the base64 of a 32-byte seed; production settings refuse to start without it. The embedded
default (the demo, tests) generates a development seed once in a key directory. Public keys retired by a
rotation stay trusted for verification through a "key_id:base64,…" list.

Trust never comes from the database: a verifier trusts the current key and the configured list, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clinaiops.env import ConfigurationError

SEED_BYTES = 32


@dataclass(frozen=True)
class Ed25519Key:
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> str:
        """The base64 signature over `message`."""
        return base64.b64encode(self.private.sign(message)).decode()


def public_key_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(public_key_raw(public)).hexdigest()[:16]


def public_key_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public_key_raw(public)).decode()


def development_seed(directory: Path, name: str) -> bytes:
    """A seed generated once and kept (mode 0600) in `directory`. Two processes starting at once both read the
    one that won the O_EXCL create, so they never sign with different keys."""
    path = directory / name
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(SEED_BYTES))
    seed = path.read_bytes()
    if len(seed) != SEED_BYTES:
        # A reader that raced a writer between create and write sees a short file; the writer finishes at once.
        seed = path.read_bytes()
    return seed


def base64_decode_exact(value: str, variable: str, expected: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{variable} is not valid base64") from exc
    if len(raw) != expected:
        raise ConfigurationError(f"{variable} must be the base64 of {expected} bytes")
    return raw


def signing_key_load(
    *, configured: str, variable: str, key_dir: Path, dev_seed_name: str, key_id: str = ""
) -> Ed25519Key:
    """The signer's key: from `configured` (the environment variable `variable`) or the development seed."""
    seed = (
        base64_decode_exact(configured, variable, SEED_BYTES)
        if configured
        else development_seed(key_dir, dev_seed_name)
    )
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return Ed25519Key(key_id=key_id or public_key_id(private.public_key()), private=private)


def trusted_public_keys(*, current: Ed25519Key, configured: list[str], variable: str) -> dict[str, Ed25519PublicKey]:
    """The current public key and the retired ones listed as "key_id:base64" items of `variable`."""
    trusted = {current.key_id: current.public}
    for item in configured:
        key_id, separator, encoded = item.partition(":")
        if not separator or not key_id:
            raise ConfigurationError(f"{variable} items must look like key_id:base64")
        trusted[key_id] = Ed25519PublicKey.from_public_bytes(base64_decode_exact(encoded, variable, SEED_BYTES))
    return trusted
