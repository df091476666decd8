"""An edit in SQL to any column of an event or a checkpoint is named by seq and kind, by the verifier and by
`audit_verify`, and never surfaces as a traceback (issue 7, defect 12: an edited timestamp crashed it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from clinaiops.audit.models import AuditCheckpoint, AuditEvent
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.audit.verify import EDITED, FORGED_CHECKPOINT, ledger_verify
from tests.factories import UserFactory

EDITED_SEQ = 15
POSTGRES = connection.vendor == "postgresql"


def _sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def _triggers_off() -> None:
    if POSTGRES:
        _sql("SET CONSTRAINTS ALL IMMEDIATE")
        _sql("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        _sql("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")


def _edit_event(column: str, seq: int) -> None:
    event = AuditEvent.objects.get(seq=seq)
    if column == "recorded_at":
        value: object = event.recorded_at + timedelta(microseconds=1)
    elif column == "recorded_at_unreadable":
        # A value no datetime can hold: 'infinity' on PostgreSQL, text in SQLite's dynamically typed column.
        column, value = "recorded_at", "infinity" if POSTGRES else "not a time"
    elif column == "actor_id":
        value = UserFactory().pk  # the foreign key holds: a real user, who did not do this
    elif column == "ip":
        value = "10.9.8.7"
    elif column == "seq":
        value = seq + 1_000_000  # moved out of its place
    elif column in {"prev_hash", "hash"}:
        original = str(getattr(event, column))
        value = ("0" if original[0] != "0" else "1") + original[1:]
    else:
        value = str(getattr(event, column)) + "x"
    _sql(f"UPDATE audit_auditevent SET {column} = %s WHERE seq = %s", [value, seq])  # noqa: S608


EVENT_COLUMNS = [
    "seq", "recorded_at", "recorded_at_unreadable", "actor_id", "actor_role", "action", "object_type", "object_id",
    "outcome", "request_id", "ip", "payload", "prev_hash", "hash",
]  # fmt: skip


def test_every_chained_column_of_an_event_is_covered() -> None:
    # `id` is the row's storage key: not part of the record, not hashed, and nothing refers to it.
    chained = {f.column for f in AuditEvent._meta.concrete_fields} - {"id"}
    assert chained == set(EVENT_COLUMNS) - {"recorded_at_unreadable"}


@pytest.mark.parametrize("column", EVENT_COLUMNS)
def test_an_edit_to_any_event_column_is_named_by_seq_and_kind(db: None, column: str) -> None:
    synthetic_ledger_create(30, checkpoint_every=10)
    _triggers_off()
    _edit_event(column, EDITED_SEQ)
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, EDITED, EDITED_SEQ), result
    assert f"seq {EDITED_SEQ}" in result.problem
    with pytest.raises(CommandError, match=rf"BROKEN at seq {EDITED_SEQ}: edited event: "):
        call_command("audit_verify")


CHECKPOINT_EDITS = {
    "seq": 15,
    "head_hash": "0" * 64,
    "event_count": 19,
    "created_at": "2026-06-01 00:00:01+00",
    "key_id": "another-key",
    "signature": "AAAA",
    "segment_start": 12,
    "segment_hashes": "00000000",
}


def test_every_signed_column_of_a_checkpoint_is_covered() -> None:
    signed = {f.column for f in AuditCheckpoint._meta.concrete_fields} - {"id", "reason"}
    assert signed == set(CHECKPOINT_EDITS)


@pytest.mark.parametrize("column", sorted(CHECKPOINT_EDITS))
def test_an_edit_to_any_signed_checkpoint_column_is_named(db: None, column: str) -> None:
    synthetic_ledger_create(30, checkpoint_every=10)
    _triggers_off()
    _sql(f"UPDATE audit_auditcheckpoint SET {column} = %s WHERE seq = 20", [CHECKPOINT_EDITS[column]])  # noqa: S608
    result = ledger_verify()
    seq = CHECKPOINT_EDITS["seq"] if column == "seq" else 20
    assert (result.ok, result.kind, result.first_broken_seq) == (False, FORGED_CHECKPOINT, seq), result
    with pytest.raises(CommandError, match=rf"BROKEN at seq {seq}: forged checkpoint: "):
        call_command("audit_verify")


def test_an_unreadable_checkpoint_timestamp_is_named_not_a_traceback(db: None) -> None:
    synthetic_ledger_create(30, checkpoint_every=10)
    _triggers_off()
    _sql("UPDATE audit_auditcheckpoint SET created_at = %s WHERE seq = 10", ["infinity" if POSTGRES else "garbage"])
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, FORGED_CHECKPOINT, 10)
