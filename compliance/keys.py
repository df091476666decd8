"""The evidence-bundle signing key (EVIDENCE_SIGNING_KEY, EVIDENCE_SIGNING_KEY_ID), a key of its own, loaded through
the one Ed25519 module (clinaiops.core.signing)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from clinaiops.core.signing import Ed25519Key, signing_key_load


def evidence_signing_key() -> Ed25519Key:
    return signing_key_load(
        configured=settings.EVIDENCE_SIGNING_KEY,
        variable="EVIDENCE_SIGNING_KEY",
        key_dir=Path(settings.AUDIT_KEY_DIR),
        dev_seed_name="evidence-ed25519.seed",
        key_id=settings.EVIDENCE_SIGNING_KEY_ID,
    )
