"""Key rotation for encryption at rest, audited (issue 8 §3; the machinery is clinaiops.core.crypto.rotation).

It lives here, not in the kernel, because it writes ledger events and the kernel may not import the ledger. It
works on every encrypted column and blind index of the schema through the app registry, whichever app owns them.

Rotating the field-encryption key:
  1. put the new key first in FIELD_ENCRYPTION_KEYS, keeping the old one after it, and restart every process
     (web, workers, beat), so that nothing writes under the old key any more;
  2. run `manage.py rotate_keys`; it re-encrypts every value still under another key, batch by batch;
  3. `manage.py rotate_keys --check` exits 0 once nothing is left under an old key; only then drop the old key.
Rotating the blind-index key is the same with BLIND_INDEX_KEYS: lookups try every listed key meanwhile, and the run
recomputes each index value from the decrypted identifiers under the new key. Both kinds run in one command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.core.crypto.keys import field_keyring, index_keyring
from clinaiops.core.crypto.rotation import (
    EncryptedColumn,
    IndexedModel,
    column_reencrypt_batch,
    column_stale_count,
    encrypted_columns,
    index_rebuild_batch,
    index_stale_count,
    indexed_models,
)

Progress = Callable[[str], None]
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class KeyRotationStatus:
    """How many stored values are not yet under the current keys, per encrypted column and per indexed table."""

    field_key_id: str
    index_key_id: str
    stale_values: tuple[tuple[str, int], ...]
    stale_index_rows: tuple[tuple[str, int], ...]

    @property
    def pending(self) -> int:
        return sum(n for _, n in self.stale_values) + sum(n for _, n in self.stale_index_rows)


@dataclass(frozen=True)
class KeyRotationReport:
    field_key_id: str
    index_key_id: str
    reencrypted: tuple[tuple[str, int], ...]
    reindexed: tuple[tuple[str, int], ...]
    remaining: int

    @property
    def changed(self) -> int:
        return sum(n for _, n in self.reencrypted) + sum(n for _, n in self.reindexed)


def key_rotation_status() -> KeyRotationStatus:
    return KeyRotationStatus(
        field_key_id=field_keyring().current_id,
        index_key_id=index_keyring().current_id,
        stale_values=tuple((c.label, column_stale_count(c)) for c in encrypted_columns()),
        stale_index_rows=tuple((m.label, index_stale_count(m)) for m in indexed_models()),
    )


def _column_rotate(column: EncryptedColumn, total: int, batch_size: int, progress: Progress) -> int:
    done = rewritten = 0
    while True:
        selected, changed = column_reencrypt_batch(column, batch_size=batch_size)
        if not selected:
            return rewritten
        done, rewritten = done + selected, rewritten + changed
        progress(f"{column.label}: {min(done, total):,}/{total:,} re-encrypted")


def _index_rebuild(indexed: IndexedModel, total: int, batch_size: int, progress: Progress) -> int:
    done = 0
    while True:
        rebuilt = index_rebuild_batch(indexed, batch_size=batch_size)
        if not rebuilt:
            return done
        done += rebuilt
        progress(f"{indexed.label}: {min(done, total):,}/{total:,} index rows rebuilt")


def keys_rotate(*, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None) -> KeyRotationReport:
    """Re-encrypt every value not under the current field key and rebuild every blind-index value not under the
    current index key. Idempotent and resumable: each batch commits on its own, and a value already current is
    never touched, so a second run after an interruption carries on and a run with nothing to do writes nothing.
    The ledger gets a start and an end event with key ids and counts only."""
    say = progress or (lambda _message: None)
    status = key_rotation_status()
    if status.pending == 0:
        return KeyRotationReport(status.field_key_id, status.index_key_id, (), (), remaining=0)
    with transaction.atomic():
        audit_record(
            action=AuditAction.KEYS_ROTATION_STARTED, object_type="encryption_keys", object_id=status.field_key_id,
            system_reason="key_rotation",
            payload={
                "field_key_id": status.field_key_id, "index_key_id": status.index_key_id,
                "stale_values": dict(status.stale_values), "stale_index_rows": dict(status.stale_index_rows),
            },
        )  # fmt: skip
    stale_values, stale_rows = dict(status.stale_values), dict(status.stale_index_rows)
    reencrypted = tuple(
        (c.label, _column_rotate(c, stale_values[c.label], batch_size, say))
        for c in encrypted_columns()
        if stale_values.get(c.label)
    )
    reindexed = tuple(
        (m.label, _index_rebuild(m, stale_rows[m.label], batch_size, say))
        for m in indexed_models()
        if stale_rows.get(m.label)
    )
    # Anything still stale was written under an old key during the run: a process not yet restarted with the new
    # list. The report says so, and the next run picks it up.
    remaining = key_rotation_status().pending
    report = KeyRotationReport(status.field_key_id, status.index_key_id, reencrypted, reindexed, remaining)
    with transaction.atomic():
        audit_record(
            action=AuditAction.KEYS_ROTATED, object_type="encryption_keys", object_id=status.field_key_id,
            system_reason="key_rotation",
            payload={
                "field_key_id": status.field_key_id, "index_key_id": status.index_key_id,
                "reencrypted": dict(reencrypted), "reindexed": dict(reindexed), "remaining": remaining,
            },
        )  # fmt: skip
    return report
