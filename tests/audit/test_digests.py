"""Digests of clinical values in audit payloads are keyed (HMAC-SHA256 with a key id), because a bare SHA-256 of
a reading is reversed by trying every plausible reading (issue 8: 50 of 50 in 4 s)."""

from __future__ import annotations

import hashlib
from typing import Any

from clinaiops.audit.digests import audit_digest, audit_digest_matches
from clinaiops.core.canonical import canonical_bytes

# Every plausible home reading: systolic, diastolic (mmHg) and heart rate (bpm).
SYSTOLIC, DIASTOLIC, HEART_RATE = range(70, 251), range(40, 151), range(30, 201)


def _enumerate(targets: dict[str, bytes]) -> dict[str, list[int]]:
    """What someone holding only the database does: hash every plausible [sbp, dbp, hr] and compare."""
    found: dict[str, list[int]] = {}
    wanted = {digest: name for name, digest in targets.items()}
    tails = [(hr, b"%d]" % hr) for hr in HEART_RATE]
    for sbp in SYSTOLIC:
        for dbp in DIASTOLIC:
            prefix = hashlib.sha256(b"[%d,%d," % (sbp, dbp))
            for hr, tail in tails:
                candidate = prefix.copy()
                candidate.update(tail)
                name = wanted.get(candidate.digest())
                if name is not None:
                    found[name] = [sbp, dbp, hr]
    return found


def test_a_keyed_reading_digest_cannot_be_reversed_by_enumeration_while_a_bare_sha256_is(settings: Any) -> None:
    reading = [163, 97, 88]
    assert canonical_bytes(reading) == b"[163,97,88]"  # what the enumeration builds is what both digests cover
    bare = hashlib.sha256(canonical_bytes(reading)).digest()
    keyed = audit_digest(reading)
    scheme, key_id, mac = keyed.split(":")
    assert (scheme, len(key_id), len(mac)) == ("hmac-sha256", 12, 64)

    found = _enumerate({"bare": bare, "keyed": bytes.fromhex(mac)})

    assert found == {"bare": reading}  # the bare hash gives the reading back; the keyed one gives nothing
    # Whoever holds the key can still check a value against the ledger; a different key cannot.
    assert audit_digest_matches(reading, keyed)
    assert not audit_digest_matches([163, 97, 89], keyed)
    settings.AUDIT_DIGEST_KEY = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # base64 of 32 bytes: another key
    assert not audit_digest_matches(reading, keyed)
