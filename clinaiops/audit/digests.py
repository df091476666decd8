"""Keyed digests of clinical values and free text for audit payloads (DESIGN §4).

A bare SHA-256 of a few numbers is reversible: a reading's [sbp, dbp, hr] has about 10^7 plausible values, so
an unsalted hash of it was brute-forced back to the exact reading in seconds. The ledger therefore never holds
a bare hash of a clinical value or a short text. It holds an HMAC-SHA256 under a key that lives only in the
environment (AUDIT_DIGEST_KEY), tagged with the key's id, as "hmac-sha256:<key id>:<hex>". Whoever holds the key
can still check that a record matches its event (a compliance officer re-computing it); someone with only the
database cannot invert it.

The digest covers the canonical JSON of the value (clinaiops.core.canonical). Events written before this
change carry `values_sha256` / `reason_sha256` fields; they keep verifying, because the chain hashes the
payload text as stored, whatever is in it.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from django.conf import settings

from clinaiops.core.canonical import canonical_bytes
from clinaiops.core.signing import base64_decode_exact, development_seed

DIGEST_SCHEME = "hmac-sha256"
_KEY_BYTES = 32


def _digest_key() -> tuple[str, bytes]:
    configured = settings.AUDIT_DIGEST_KEY
    if configured:
        key = base64_decode_exact(configured, "AUDIT_DIGEST_KEY", _KEY_BYTES)
    else:
        key = development_seed(Path(settings.AUDIT_KEY_DIR), "audit-digest.key")
    # The id names the key without revealing it: a hash of a hash of 32 random bytes.
    key_id = settings.AUDIT_DIGEST_KEY_ID or hashlib.sha256(b"clinaiops-digest-key-id:" + key).hexdigest()[:12]
    return key_id, key


def audit_digest(value: Any) -> str:
    """ "hmac-sha256:<key id>:<hex>" over the canonical JSON of `value`."""
    key_id, key = _digest_key()
    mac = hmac.new(key, canonical_bytes(value), hashlib.sha256).hexdigest()
    return f"{DIGEST_SCHEME}:{key_id}:{mac}"


def audit_digest_matches(value: Any, digest: str) -> bool:
    """Whether `digest` was made from `value` with the current key (constant-time comparison)."""
    return hmac.compare_digest(audit_digest(value), digest)
