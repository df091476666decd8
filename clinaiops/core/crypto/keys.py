"""The two keyrings: field encryption (AES-256-GCM) and the blind index (HMAC-SHA256).

Each comes from one environment variable, a comma-separated list of "key_id:base64-of-32-bytes", the first key
current: new values are written under it, and every listed key stays readable (encryption) or searchable (blind
index) until `manage.py rotate_keys` has moved everything onto the current one. Key ids are labels, not secrets:
they are stored in every envelope and index value so that a reader knows which key to use.

The blind-index key is its own: whoever holds it can test guesses against the index (is "Smith" a patient here?),
so it must not be the encryption key, and production settings refuse the same bytes in both lists.

With no keys configured (the embedded default, the tests) each keyring is one development key generated once under
AUDIT_KEY_DIR, like the other development keys (clinaiops.core.signing). Production refuses to start without both
variables.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from clinaiops.core.signing import base64_decode_exact, development_seed
from clinaiops.env import ConfigurationError

KEY_BYTES = 32
FIELD_KEYS_VARIABLE = "FIELD_ENCRYPTION_KEYS"
INDEX_KEYS_VARIABLE = "BLIND_INDEX_KEYS"
# Letters, digits and "-": a key id sits between colons in an envelope and inside SQL prefix comparisons.
_KEY_ID = re.compile(r"^[A-Za-z0-9-]{1,16}$")


@dataclass(frozen=True)
class Keyring:
    """The keys of one purpose, by id; `current_id` names the one new values are written under."""

    variable: str
    current_id: str
    keys: tuple[tuple[str, bytes], ...]
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def key(self, key_id: str) -> bytes | None:
        for known, key in self.keys:
            if known == key_id:
                return key
        return None

    @property
    def current(self) -> bytes:
        key = self.key(self.current_id)
        assert key is not None
        return key

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(known for known, _ in self.keys)

    def cipher(self, key_id: str) -> AESGCM | None:
        """The AES-GCM cipher of `key_id`, built once per keyring (the key schedule is the costly part)."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            key = self.key(key_id)
            if key is None:
                return None
            cipher = self._ciphers.setdefault(key_id, AESGCM(key))
        return cipher

    def __repr__(self) -> str:  # never the key bytes, wherever a keyring ends up printed
        return f"Keyring({self.variable}, current={self.current_id}, ids={list(self.key_ids)})"


def keyring_parse(items: Sequence[str], *, variable: str) -> Keyring:
    """Parse "key_id:base64,…" (already split on commas); the first item is current. Fails loudly, naming the
    variable but never echoing a key."""
    if not items:
        raise ConfigurationError(f"{variable} must list at least one key as key_id:base64")
    keys: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for item in items:
        key_id, separator, encoded = item.strip().partition(":")
        if not separator or not _KEY_ID.match(key_id):
            raise ConfigurationError(
                f"{variable} items must look like key_id:base64, the id 1-16 letters, digits or '-'"
            )
        # SQLite compares prefixes case-insensitively (LIKE), so ids that differ only in case are one id.
        if key_id.lower() in seen:
            raise ConfigurationError(f"{variable} lists the key id {key_id} twice")
        seen.add(key_id.lower())
        keys.append((key_id, base64_decode_exact(encoded, variable, KEY_BYTES)))
    return Keyring(variable=variable, current_id=keys[0][0], keys=tuple(keys))


def keyrings_distinct_require(field_keys: Keyring, index_keys: Keyring) -> None:
    """The blind-index key must not be an encryption key: its holder can confirm guesses, nothing more."""
    if {key for _, key in field_keys.keys} & {key for _, key in index_keys.keys}:
        raise ConfigurationError(f"{FIELD_KEYS_VARIABLE} and {INDEX_KEYS_VARIABLE} must not share a key")


def production_keyrings_check(field_items: Sequence[str], index_items: Sequence[str]) -> None:
    """Production settings: both keyrings configured, well formed and distinct (no development keys)."""
    keyrings_distinct_require(
        keyring_parse(field_items, variable=FIELD_KEYS_VARIABLE),
        keyring_parse(index_items, variable=INDEX_KEYS_VARIABLE),
    )


def _development_keyring(key_dir: Path, file_name: str, variable: str) -> Keyring:
    key = development_seed(key_dir, file_name)
    # The id names the key without revealing it, and differs between installations' development keys.
    key_id = "dev-" + hashlib.sha256(b"clinaiops-key-id:" + file_name.encode() + b":" + key).hexdigest()[:8]
    return Keyring(variable=variable, current_id=key_id, keys=((key_id, key),))


@functools.lru_cache(maxsize=32)
def _keyring_cached(items: tuple[str, ...], variable: str, key_dir: str, dev_file: str) -> Keyring:
    if items:
        return keyring_parse(items, variable=variable)
    return _development_keyring(Path(key_dir), dev_file, variable)


def field_keyring() -> Keyring:
    """The field-encryption keyring in force (settings are read at call time, so tests can swap keys)."""
    return _keyring_cached(
        tuple(settings.FIELD_ENCRYPTION_KEYS), FIELD_KEYS_VARIABLE, str(settings.AUDIT_KEY_DIR), "field-encryption.key"
    )


def index_keyring() -> Keyring:
    """The blind-index keyring in force."""
    return _keyring_cached(
        tuple(settings.BLIND_INDEX_KEYS), INDEX_KEYS_VARIABLE, str(settings.AUDIT_KEY_DIR), "blind-index.key"
    )
