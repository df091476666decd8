"""One encrypted value: "v1:<key id>:<base64 nonce>:<base64 ciphertext>" (AES-256-GCM, 96-bit random nonce).

The associated data is "clinaiops:v1:<key id>:<table>.<column>": the tag authenticates the envelope's key id and
the column it belongs to, so a ciphertext copied into another column (or table) fails to decrypt instead of
showing one patient's text in another field. It does not name the row: a value is encrypted before its row has an
id, so someone who can write the database could swap two rows' values of the same column. That is out of scope
here (whoever can write the tables can write anything); the ledger's digests catch it for reasons that are signed.

The plaintext is padded to a multiple of 16 bytes (ISO/IEC 7816-4: 0x80 then zeros) before encryption, so the
stored length tells a reader the length of a name or a note only to the nearest 16 bytes.

Errors never carry the value, the envelope or a key: only the column and what went wrong.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag

from clinaiops.core.crypto.keys import Keyring, field_keyring
from clinaiops.core.errors import ApplicationError

VERSION = "v1"
NONCE_BYTES = 12
_PAD_BLOCK = 16


class EncryptedValueUnreadable(ApplicationError):
    """A stored envelope that cannot be decrypted: an unknown key id (a key removed too early), a value moved from
    another column, or a value altered in the database. Never shown to users; it is an operator's problem."""

    code = "encrypted_value_unreadable"
    status = 500


def _aad(key_id: str, table: str, column: str) -> bytes:
    return f"clinaiops:{VERSION}:{key_id}:{table}.{column}".encode()


def _pad(data: bytes) -> bytes:
    return data + b"\x80" + b"\x00" * ((-len(data) - 1) % _PAD_BLOCK)


def _unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise ValueError("bad padding")
    return stripped[:-1]


def value_encrypt(plaintext: str, *, table: str, column: str, keyring: Keyring | None = None) -> str:
    """The envelope of `plaintext` under the current key, bound to `table`.`column`."""
    ring = keyring or field_keyring()
    cipher = ring.cipher(ring.current_id)
    assert cipher is not None
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, _pad(plaintext.encode("utf-8")), _aad(ring.current_id, table, column))
    return f"{VERSION}:{ring.current_id}:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def envelope_key_id(envelope: str) -> str | None:
    """The key id an envelope names, or None if it is not an envelope of a known version."""
    version, _, rest = envelope.partition(":")
    key_id, separator, _ = rest.partition(":")
    return key_id if version == VERSION and separator else None


def value_decrypt(envelope: str, *, table: str, column: str, keyring: Keyring | None = None) -> str:
    """The plaintext of an envelope stored in `table`.`column`, with the key its id names."""
    where = f"{table}.{column}"
    parts = envelope.split(":")
    if len(parts) != 4 or parts[0] != VERSION:
        raise EncryptedValueUnreadable(f"A value in {where} is not an encrypted envelope.")
    _, key_id, nonce_b64, sealed_b64 = parts
    ring = keyring or field_keyring()
    cipher = ring.cipher(key_id)
    if cipher is None:
        raise EncryptedValueUnreadable(
            f"A value in {where} is encrypted under key {key_id}, which {ring.variable} does not list."
        )
    try:
        nonce = base64.b64decode(nonce_b64, validate=True)
        sealed = base64.b64decode(sealed_b64, validate=True)
        padded = cipher.decrypt(nonce, sealed, _aad(key_id, table, column))
    except InvalidTag:
        raise EncryptedValueUnreadable(
            f"A value in {where} failed authentication: it was altered, moved from another column, or the key "
            f"listed as {key_id} is not the one it was written with."
        ) from None
    except (binascii.Error, ValueError):
        raise EncryptedValueUnreadable(f"A value in {where} is malformed.") from None
    try:
        return _unpad(padded).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        # Authenticated but not ours: written by something other than value_encrypt under a shared key.
        raise EncryptedValueUnreadable(f"A value in {where} is malformed.") from None
