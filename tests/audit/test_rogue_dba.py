"""A superuser (a rogue DBA) switches the triggers off and rewrites the ledger, checkpoints included. It is outside
what the database can refuse; the chain, the signed checkpoints and the witness outside the database must catch
it and name the event it touched. (What the runtime role cannot do at all is in test_roles.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from clinaiops.audit.chain import TIMESTAMP_FORMAT, event_hash
from clinaiops.audit.models import AuditCheckpoint, AuditEvent
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.audit.verify import (
    DELETED_CHECKPOINT,
    EDITED,
    FORGED_WITNESS,
    TRUNCATED,
    ledger_verify,
)
from clinaiops.audit.witness import witness_file_path


def _sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def _triggers_off() -> None:
    if connection.vendor == "postgresql":
        _sql("SET CONSTRAINTS ALL IMMEDIATE")
        _sql("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        _sql("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")


def _witnessed_ledger(n: int = 350) -> None:
    """n events, a checkpoint every 100 (in the database and in the witness file)."""
    synthetic_ledger_create(n, checkpoint_every=100, witness=True)
    assert ledger_verify().ok


def _rehash_from(seq: int) -> None:
    """What a DBA who can compute SHA-256 does after an edit: recompute every link and hash from `seq` on."""
    rows = list(
        AuditEvent.objects.filter(seq__gte=seq - 1)
        .order_by("seq")
        .values_list(
            "seq", "recorded_at", "actor_id", "actor_role", "action", "object_type", "object_id", "outcome",
            "request_id", "ip", "payload", "hash",
        )
    )  # fmt: skip
    prev = rows[0][-1]
    for row in rows[1:]:
        number, recorded_at, *middle, _old = row
        digest = event_hash(number, recorded_at.strftime(TIMESTAMP_FORMAT), *middle, prev)
        _sql("UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s", [prev, digest, number])
        prev = digest


def test_tail_deleted_with_its_checkpoints_is_caught_by_the_witness(db: None) -> None:
    _witnessed_ledger()
    _triggers_off()
    _sql("DELETE FROM audit_auditevent WHERE seq > 150")
    _sql("DELETE FROM audit_auditcheckpoint WHERE seq > 150")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 151)
    assert "the witness holds a signed checkpoint over 300 events" in result.problem
    assert "lacks the witnessed checkpoints at seq 200, 300" in result.problem


def test_the_whole_ledger_truncated_with_its_checkpoints_is_caught_by_the_witness(db: None) -> None:
    # The attack of issue 8 (there with the app's own credentials; see test_roles.py for why those now fail):
    # afterwards `audit_verify` printed "OK: 0 events".
    _witnessed_ledger()
    _triggers_off()
    _sql("DELETE FROM audit_auditcheckpoint")
    _sql("DELETE FROM audit_auditevent")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 1)
    with pytest.raises(CommandError, match="BROKEN at seq 1: truncation: the ledger ends at seq 0"):
        call_command("audit_verify")


def test_a_deleted_checkpoint_row_is_named_even_with_its_events_intact(db: None) -> None:
    _witnessed_ledger()
    _triggers_off()
    _sql("DELETE FROM audit_auditcheckpoint WHERE seq = 300")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, DELETED_CHECKPOINT, 300)


@pytest.mark.parametrize("seq", [250, 340])
def test_an_edited_event_whose_hash_alone_was_recomputed_is_named(db: None, seq: int) -> None:
    # Before: reported at seq + 1 as an "inserted event".
    _witnessed_ledger()
    _triggers_off()
    event = AuditEvent.objects.get(seq=seq)
    payload = '{"patient_id":1,"forged":true}'
    digest = event_hash(
        seq, event.recorded_at.strftime(TIMESTAMP_FORMAT), event.actor_id, event.actor_role, event.action,
        event.object_type, event.object_id, event.outcome, event.request_id, event.ip, payload, event.prev_hash,
    )  # fmt: skip
    _sql("UPDATE audit_auditevent SET payload = %s, hash = %s WHERE seq = %s", [payload, digest, seq])
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, EDITED, seq), result
    assert f"seq {seq} was changed and its hash recomputed" in result.problem


@pytest.mark.parametrize("checkpoints_too", [False, True], ids=["checkpoints-kept", "checkpoints-deleted"])
def test_an_edit_with_every_later_hash_recomputed_is_named_at_the_edited_event(db: None, checkpoints_too: bool) -> None:
    # The chain is consistent again; the signed checkpoint over seq 200 (in the database, or only in the witness
    # once the DBA deleted the database's copies) says which event changed. Before: "seq 200 does not match".
    _witnessed_ledger()
    _triggers_off()
    _sql("UPDATE audit_auditevent SET payload = %s WHERE seq = 150", ['{"patient_id":1,"forged":true}'])
    _rehash_from(150)
    if checkpoints_too:
        _sql("DELETE FROM audit_auditcheckpoint WHERE seq >= 150")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, EDITED, 150), result
    assert "every hash after it was recomputed" in result.problem


def test_a_forged_witness_entry_is_named(db: None) -> None:
    _witnessed_ledger()
    path = witness_file_path()
    lines = path.read_text().splitlines(keepends=True)
    forged = lines[1].replace('"event_count":200', '"event_count":199')
    path.write_text("".join([lines[0], forged, *lines[2:]]))
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, FORGED_WITNESS, 200)


def test_a_garbled_witness_line_is_refused_and_a_line_torn_by_a_crash_is_not(db: None) -> None:
    from clinaiops.audit.services import audit_witness_catch_up

    _witnessed_ledger()
    path = witness_file_path()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:40])  # the write of seq 300 was cut short by a crash
    result = ledger_verify()
    assert result.ok and result.unwitnessed_checkpoints == (300,)
    assert any("line 3" in note and "incomplete" in note for note in result.notes)
    assert audit_witness_catch_up() == [300]  # the next run publishes it again, on a line of its own
    assert ledger_verify().unwitnessed_checkpoints == ()
    with path.open("a") as witness:
        witness.write("not a checkpoint\n")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, FORGED_WITNESS, None)
    assert "line 5" in result.problem and "is not a checkpoint entry" in result.problem


def test_a_checkpoint_the_witness_lacks_is_reported_and_published_by_the_next_run(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from clinaiops.audit.services import audit_witness_catch_up

    _witnessed_ledger()
    path = witness_file_path()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]))  # as if publishing seq 300 had failed
    result = ledger_verify()
    assert result.ok and result.unwitnessed_checkpoints == (300,)
    call_command("audit_verify")
    assert "signed checkpoints not in the witness yet: seq 300" in capsys.readouterr().err
    assert audit_witness_catch_up() == [300]
    assert ledger_verify().unwitnessed_checkpoints == ()


def test_verify_against_a_copy_of_the_witness(db: None, tmp_path: Path) -> None:
    # A deployment that ships the witness to a syslog host verifies against a copy of those lines.
    _witnessed_ledger()
    copy = tmp_path / "from-syslog.log"
    copy.write_text(
        "".join(f"Dec  1 10:00:00 host clinaiops-audit-witness: {line}" for line in witness_file_path().open())
    )
    witness_file_path().unlink()
    _triggers_off()
    _sql("DELETE FROM audit_auditevent WHERE seq > 250")
    _sql("DELETE FROM audit_auditcheckpoint WHERE seq > 250")
    assert ledger_verify().ok  # the configured file is gone: nothing to compare with
    result = ledger_verify(witness_path=copy)
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 251)
    assert AuditCheckpoint.objects.count() == 2
