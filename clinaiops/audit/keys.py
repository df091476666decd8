"""The audit checkpoint signing key (AUDIT_SIGNING_KEY, with AUDIT_SIGNING_KEY_ID and AUDIT_TRUSTED_PUBLIC_KEYS
for rotation), loaded through the one Ed25519 key module, clinaiops.core.signing."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from clinaiops.core.signing import Ed25519Key, signing_key_load, trusted_public_keys


def audit_signing_key() -> Ed25519Key:
    return signing_key_load(
        configured=settings.AUDIT_SIGNING_KEY,
        variable="AUDIT_SIGNING_KEY",
        key_dir=Path(settings.AUDIT_KEY_DIR),
        dev_seed_name="audit-ed25519.seed",
        key_id=settings.AUDIT_SIGNING_KEY_ID,
    )


def audit_trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    return trusted_public_keys(
        current=audit_signing_key(), configured=settings.AUDIT_TRUSTED_PUBLIC_KEYS, variable="AUDIT_TRUSTED_PUBLIC_KEYS"
    )
