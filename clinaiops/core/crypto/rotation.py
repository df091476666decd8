"""Moving every stored value onto the current keys, one batch at a time (the machinery of `rotate_keys`).

- Re-encryption: every non-empty envelope of every EncryptedTextField / EncryptedDateField in the schema whose key
  id is not the current one is decrypted (with the key its id names) and encrypted again under the current key.
- Index rebuild: every BlindIndexField value whose key id is not the current index key is recomputed from its
  decrypted sources.

Both are idempotent (a value already under the current key is never selected) and resumable (each batch commits
on its own; an interrupted run leaves a mix of old and new key ids, all readable, and the next run carries on).
A re-encryption writes with compare-and-swap on the old envelope, so a value a user changed meanwhile is kept.
The envelopes are read with plain SQL: through the ORM they would arrive decrypted, and the key id is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction

from clinaiops.core.crypto.envelope import VERSION, EncryptedValueUnreadable, value_decrypt, value_encrypt
from clinaiops.core.crypto.fields import ENCRYPTED_FIELD_TYPES, BlindIndexField
from clinaiops.core.crypto.keys import Keyring, field_keyring, index_keyring


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    field: models.Field[Any, Any]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def column(self) -> str:
        return str(self.field.column)

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class IndexedModel:
    model: type[models.Model]
    fields: tuple[BlindIndexField, ...]

    @property
    def label(self) -> str:
        return self.model._meta.db_table


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted column of every installed model, in a stable order."""
    found = [
        EncryptedColumn(model=model, field=field)
        for model in apps.get_models()
        if not model._meta.proxy and model._meta.managed
        for field in model._meta.concrete_fields
        if isinstance(field, ENCRYPTED_FIELD_TYPES)
    ]
    return sorted(found, key=lambda c: c.label)


def indexed_models() -> list[IndexedModel]:
    found = []
    for model in apps.get_models():
        fields = tuple(f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField))
        if fields and not model._meta.proxy:
            found.append(IndexedModel(model=model, fields=fields))
    return sorted(found, key=lambda m: m.label)


def _stale_condition(column: EncryptedColumn, ring: Keyring) -> tuple[str, list[int | str]]:
    quoted = connection.ops.quote_name(column.column)
    prefix = f"{VERSION}:{ring.current_id}:"
    # substr and <> compare bytes exactly on both PostgreSQL and SQLite (LIKE would not on SQLite).
    return f"{quoted} IS NOT NULL AND {quoted} <> '' AND substr({quoted}, 1, %s) <> %s", [len(prefix), prefix]


def column_stale_count(column: EncryptedColumn) -> int:
    """How many values of the column are not under the current key."""
    ring = field_keyring()
    condition, params = _stale_condition(column, ring)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(column.table)} WHERE {condition}", params)  # noqa: S608 - names are quoted identifiers from the model registry
        return int(cursor.fetchone()[0])


def column_reencrypt_batch(column: EncryptedColumn, *, batch_size: int) -> tuple[int, int]:
    """Re-encrypt up to `batch_size` stale values of the column under the current key, in one transaction. Returns
    (values selected, values rewritten); nothing selected means the column is done."""
    ring = field_keyring()
    table, pk = connection.ops.quote_name(column.table), connection.ops.quote_name(column.model._meta.pk.column)  # type: ignore[union-attr]
    quoted = connection.ops.quote_name(column.column)
    condition, params = _stale_condition(column, ring)
    rewritten = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk}, {quoted} FROM {table} WHERE {condition} ORDER BY {pk} LIMIT %s",  # noqa: S608
            [*params, batch_size],
        )
        rows = cursor.fetchall()
        for row_id, envelope in rows:
            plaintext = value_decrypt(envelope, table=column.table, column=column.column, keyring=ring)
            fresh = value_encrypt(plaintext, table=column.table, column=column.column, keyring=ring)
            cursor.execute(
                f"UPDATE {table} SET {quoted} = %s WHERE {pk} = %s AND {quoted} = %s",  # noqa: S608
                [fresh, row_id, envelope],
            )
            # 0 rows: a user changed the value since the SELECT, and it was written under the current key.
            rewritten += cursor.rowcount
    return len(rows), rewritten


def _index_stale_q(indexed: IndexedModel, ring: Keyring) -> models.Q:
    prefix = f"{ring.current_id}:"
    stale = models.Q()
    for field in indexed.fields:
        stale |= models.Q(**{f"{field.name}__isnull": False}) & ~models.Q(**{f"{field.name}__startswith": prefix})
    return stale


def index_stale_count(indexed: IndexedModel) -> int:
    return indexed.model._base_manager.filter(_index_stale_q(indexed, index_keyring())).count()


def index_rebuild_batch(indexed: IndexedModel, *, batch_size: int) -> int:
    """Recompute the blind index of up to `batch_size` rows not under the current index key, locking each row so
    that a concurrent change of its identifiers cannot be overwritten with an index of the old ones."""
    ring = index_keyring()
    manager = indexed.model._base_manager
    names = [field.name for field in indexed.fields]
    with transaction.atomic():
        pks = list(
            manager.filter(_index_stale_q(indexed, ring)).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        for row in manager.select_for_update().filter(pk__in=pks).order_by("pk"):
            row.save(update_fields=names)
    return len(pks)


def plaintext_column_encrypt(schema_editor: Any, *, table: str, column: str, pk: str = "id") -> None:
    """Data migration: encrypt the plain-text values a column held before it became encrypted. Values that already
    decrypt as envelopes of this column are left alone, so running it twice changes nothing."""
    _column_convert(schema_editor, table=table, column=column, pk=pk, encrypt=True)


def plaintext_column_decrypt(schema_editor: Any, *, table: str, column: str, pk: str = "id") -> None:
    """The reverse migration: the column goes back to plain text."""
    _column_convert(schema_editor, table=table, column=column, pk=pk, encrypt=False)


def _column_convert(schema_editor: Any, *, table: str, column: str, pk: str, encrypt: bool) -> None:
    quote = schema_editor.connection.ops.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(pk)}, {quote(column)} FROM {quote(table)} WHERE {quote(column)} <> ''")  # noqa: S608
        for row_id, stored in cursor.fetchall():
            if encrypt == _is_envelope_of(stored, table=table, column=column):
                continue
            converted = (
                value_encrypt(stored, table=table, column=column)
                if encrypt
                else value_decrypt(stored, table=table, column=column)
            )
            cursor.execute(
                f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(pk)} = %s",  # noqa: S608
                [converted, row_id],
            )


def _is_envelope_of(stored: str, *, table: str, column: str) -> bool:
    if not stored.startswith(f"{VERSION}:"):
        return False
    try:
        value_decrypt(stored, table=table, column=column)
    except EncryptedValueUnreadable:
        return False  # a reason that merely starts with "v1:" is still plain text
    return True
