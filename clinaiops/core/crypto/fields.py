"""Model fields that store encrypted envelopes and blind-index values.

EncryptedTextField and EncryptedDateField encrypt on the way to the database and decrypt on the way back, so the
application (services, templates, the canonical content a signature is bound to) works with plain values and the
tables, their dumps and backups hold only envelopes. Use them for every direct identifier and every piece of free
text a clinician or a patient types: the column stays `text`, whatever the Python type.

What they cannot do is be queried: an envelope is randomised, so `filter(reason="…")` could never match. They
refuse every lookup except `isnull`, loudly, instead of returning nothing. (Ordering by one orders by ciphertext,
which means nothing: order by the patient code.) Exact lookups go through a BlindIndexField, which is derived from
its source fields whenever the row is saved (like `auto_now`), so it cannot drift from them; a queryset `update()`
of a source field would bypass it, so identifiers change through `save()`.

The empty string is stored as the empty string: it carries no more than an envelope's length would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Lookup, Transform

from clinaiops.core.crypto.blind_index import INDEX_MAX_LENGTH, KINDS, blind_index_value
from clinaiops.core.crypto.envelope import value_decrypt, value_encrypt

_ALLOWED_LOOKUPS = frozenset({"isnull"})

if TYPE_CHECKING:  # Django's field classes are generic only in django-stubs
    _TextBase = models.TextField[str | None, str]
    _DateBase = models.DateField[date | str | None, date | None]
    _CharBase = models.CharField[str | None, str | None]
else:
    _TextBase, _DateBase, _CharBase = models.TextField, models.DateField, models.CharField


def _refuse_query(field: models.Field[Any, Any], lookup_name: str) -> None:
    if lookup_name not in _ALLOWED_LOOKUPS:
        raise FieldError(
            f"{field.model.__name__}.{field.name} is encrypted and cannot be filtered with '{lookup_name}'; "
            "look it up through its blind index"
        )


class EncryptedTextField(_TextBase):
    description = "Text stored as an AES-GCM envelope"

    def get_internal_type(self) -> str:
        return "TextField"

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        if value is None:
            return None
        text = str(value)
        if text == "":
            return ""
        return value_encrypt(text, table=self.model._meta.db_table, column=self.column)

    def from_db_value(self, value: str | None, expression: Any, connection: BaseDatabaseWrapper) -> str | None:
        if value is None or value == "":
            return value
        return value_decrypt(value, table=self.model._meta.db_table, column=self.column)

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        _refuse_query(self, lookup_name)
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> type[Transform] | None:
        _refuse_query(self, lookup_name)
        return super().get_transform(lookup_name)


class EncryptedDateField(_DateBase):
    """A date (of birth) kept as the envelope of its ISO form; the column is text, not date."""

    description = "Date stored as an AES-GCM envelope"

    def get_internal_type(self) -> str:
        return "TextField"

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        day = self.to_python(value)
        if day is None:
            return None
        return value_encrypt(day.isoformat(), table=self.model._meta.db_table, column=self.column)

    def from_db_value(self, value: str | None, expression: Any, connection: BaseDatabaseWrapper) -> date | None:
        if value is None or value == "":
            return None
        return date.fromisoformat(value_decrypt(value, table=self.model._meta.db_table, column=self.column))

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        _refuse_query(self, lookup_name)
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> type[Transform] | None:
        _refuse_query(self, lookup_name)
        return super().get_transform(lookup_name)


ENCRYPTED_FIELD_TYPES: tuple[type[models.Field[Any, Any]], ...] = (EncryptedTextField, EncryptedDateField)


class BlindIndexField(_CharBase):
    """The keyed blind index of `sources` (field names, in order) for lookups of `kind` (see blind_index). Not
    editable: it is recomputed from the sources under the current index key whenever the row is saved."""

    description = "Keyed blind index of encrypted fields"
    _DEFAULTS: dict[str, Any] = {"max_length": INDEX_MAX_LENGTH, "null": True, "blank": True, "editable": False}

    def __init__(self, *args: Any, kind: str, sources: Sequence[str], **kwargs: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown blind index kind {kind!r}")
        self.kind = kind
        self.sources = tuple(sources)
        for name, default in self._DEFAULTS.items():
            kwargs.setdefault(name, default)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        for option, default in self._DEFAULTS.items():
            if kwargs.get(option, default) == default:
                kwargs.pop(option, None)
        kwargs.update(kind=self.kind, sources=list(self.sources))
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        parts = [str(getattr(model_instance, source) or "") for source in self.sources]
        value = blind_index_value(self.kind, parts)
        setattr(model_instance, self.attname, value)
        return value


def update_fields_with_blind_indexes(model: type[models.Model], update_fields: Iterable[str]) -> list[str]:
    """`update_fields` plus every blind index whose sources it names: a `save(update_fields=["family_name"])` must
    not leave the family-name index describing the old name (a field's pre_save runs only for the saved fields)."""
    names = list(update_fields)
    for field in model._meta.concrete_fields:
        if isinstance(field, BlindIndexField) and field.name not in names and set(field.sources) & set(names):
            names.append(field.name)
    return names
