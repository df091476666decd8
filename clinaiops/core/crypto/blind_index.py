"""The keyed blind index: exact lookups on encrypted values without decrypting the table.

An index value is "<key id>:<hex>", the first 128 bits of HMAC-SHA256 under the blind-index key (BLIND_INDEX_KEYS)
of "<kind>\\x1f<normalised value>". The kind ("mrn", "full_name", "family_name") separates the domains, so equal
strings in two columns do not give equal index values. Without the key, the index says only which rows share a
value; with it, one can confirm a guess (which is why the key is not the encryption key).

Lookups compute the value under every listed key, so a search keeps working while `rotate_keys` rebuilds the index
under a new current key. Only exact matches after normalisation are possible: prefix or fuzzy search would need
n-gram indexes, which leak far more about the names.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence

from clinaiops.core.crypto.keys import Keyring, index_keyring

INDEX_HEX_CHARS = 32
INDEX_MAX_LENGTH = 64  # a 16-character key id, a colon and 32 hex digits fit
KIND_MRN = "mrn"
KIND_FULL_NAME = "full_name"
KIND_FAMILY_NAME = "family_name"
KINDS = (KIND_MRN, KIND_FULL_NAME, KIND_FAMILY_NAME)

# A hospital's MRN: 4-20 letters and digits once spaces and hyphens are dropped (formats vary between hospitals;
# the demo's is documented in docs/cohort.md).
_MRN = re.compile(r"^[A-Z0-9]{4,20}$")
_APOSTROPHES = re.compile(r"['’`ʼ]")
_NOT_WORD = re.compile(r"[\W_]+")


def mrn_normalise(value: str) -> str | None:
    """The MRN as the index sees it ("40 012-345" and "40012345" are one MRN), or None if it is not one."""
    text = re.sub(r"[\s-]+", "", value or "").upper()
    return text if _MRN.match(text) else None


def name_normalise(value: str) -> str:
    """A name as people type it: case, accents, apostrophes, hyphens and spacing do not matter, so "O’Brien-Smith",
    "obrien smith" and "O'BRIEN  SMITH" are one name. Empty if nothing is left."""
    text = unicodedata.normalize("NFKD", value or "")
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _APOSTROPHES.sub("", text.casefold())
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _normalised(kind: str, parts: Sequence[str]) -> str | None:
    if kind == KIND_MRN:
        return mrn_normalise(parts[0]) if parts else None
    if kind in (KIND_FULL_NAME, KIND_FAMILY_NAME):
        return name_normalise(" ".join(part for part in parts if part)) or None
    raise ValueError(f"unknown blind index kind {kind!r}")


def _mac(key: bytes, kind: str, normalised: str) -> str:
    message = f"{kind}\x1f{normalised}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:INDEX_HEX_CHARS]


def blind_index_value(kind: str, parts: Sequence[str], *, keyring: Keyring | None = None) -> str | None:
    """The index value to store for `parts` (the source fields, in order) under the current key; None if empty."""
    normalised = _normalised(kind, parts)
    if normalised is None:
        return None
    ring = keyring or index_keyring()
    return f"{ring.current_id}:{_mac(ring.current, kind, normalised)}"


def blind_index_candidates(kind: str, parts: Sequence[str], *, keyring: Keyring | None = None) -> list[str]:
    """Every value a row holding `parts` may carry: one per listed key, current first. Empty if nothing to find."""
    normalised = _normalised(kind, parts)
    if normalised is None:
        return []
    ring = keyring or index_keyring()
    return [f"{key_id}:{_mac(key, kind, normalised)}" for key_id, key in ring.keys]
