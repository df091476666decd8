"""The tamper-evident ledger: canonical form, signed checkpoints, rogue-DBA mutations, concurrency."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from clinaiops.audit.chain import TIMESTAMP_FORMAT, event_canonical
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.audit.verify import (
    DELETED,
    EDITED,
    EMPTY,
    FORGED_CHECKPOINT,
    INSERTED,
    REORDERED,
    TRUNCATED,
    ledger_verify,
)
from clinaiops.core.canonical import canonical_bytes
from tests.conftest import audit_actions

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(1, 10**12),
    actor_id=st.none() | st.integers(1, 10**9),
    strings=st.lists(text, min_size=7, max_size=7),
    ip=st.none() | st.sampled_from(["127.0.0.1", "::1", "10.0.0.7"]),
    payload=st.dictionaries(text, st.integers() | text | st.none() | st.booleans(), max_size=4),
    micro=st.integers(0, 999_999),
)
def test_fast_canonical_form_equals_the_documented_canonical_json(
    seq: int, actor_id: int | None, strings: list[str], ip: str | None, payload: dict[str, object], micro: int
) -> None:
    role, action, otype, oid, outcome, rid, prev = strings
    recorded = datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=UTC)
    payload_text = canonical_bytes(payload).decode()
    expected = canonical_bytes(
        {
            "seq": seq,
            "recorded_at": recorded,
            "actor_id": actor_id,
            "actor_role": role,
            "action": action,
            "object_type": otype,
            "object_id": oid,
            "outcome": outcome,
            "request_id": rid,
            "ip": ip,
            "payload": payload,
            "prev_hash": prev,
        }
    )
    fast = event_canonical(
        seq,
        recorded.strftime(TIMESTAMP_FORMAT),
        actor_id,
        role,
        action,
        otype,
        oid,
        outcome,
        rid,
        ip,
        payload_text,
        prev,
    )
    assert fast == expected


def _append(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="test", object_id=i, system_reason="test")


def test_periodic_and_on_demand_checkpoints_are_signed_witnessed_and_verified(
    transactional_db: None, settings: object
) -> None:
    settings.AUDIT_CHECKPOINT_EVERY = 10  # type: ignore[attr-defined]
    _append(25)
    # Made after the commit of seq 10 and seq 20; each wrote its own event (11 and 21).
    assert list(AuditCheckpoint.objects.values_list("seq", flat=True)) == [10, 20]
    assert audit_actions(action=AuditAction.CHECKPOINT_CREATED) == [AuditAction.CHECKPOINT_CREATED] * 2
    assert AuditEvent.objects.filter(seq__in=[11, 21], action=AuditAction.CHECKPOINT_CREATED).count() == 2
    on_demand = audit_checkpoint_create()
    assert on_demand is not None and on_demand.seq == 27
    result = ledger_verify()
    assert (result.ok, result.events_checked, result.checkpoints_checked) == (True, 28, 3)
    assert (result.witness_entries, result.witness_head_seq, result.unwitnessed_checkpoints) == (3, 27, ())


def _rogue_dba() -> None:
    """A DBA can switch the append-only triggers off; the chain must still catch what they do next."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER USER")


def _sql(statement: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def test_a_forged_checkpoint_signature_is_detected(db: None) -> None:
    synthetic_ledger_create(300, checkpoint_every=100)
    _rogue_dba()
    signature = AuditCheckpoint.objects.get(seq=200).signature
    forged = ("A" if signature[0] != "A" else "B") + signature[1:]
    _sql("UPDATE audit_auditcheckpoint SET signature = %s WHERE seq = 200", [forged])
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, FORGED_CHECKPOINT, 200)


def test_truncation_of_checkpointed_events_is_detected(db: None) -> None:
    synthetic_ledger_create(300, checkpoint_every=100)
    _rogue_dba()
    _sql("DELETE FROM audit_auditevent WHERE seq > 150")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 151)


# --- The mutation test: random rogue-DBA edits straight in SQL; every one must be caught ---------------

LEDGER_SIZE = 2000
EDITABLE = ("actor_role", "action", "object_type", "object_id", "outcome", "request_id", "payload", "prev_hash", "hash")


def _flip_char(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    replacement = rng.choice([c for c in '0123456789abcdefXYZ{}":,' if c != value[i]])
    return value[:i] + replacement + value[i + 1 :]


def _mutate(kind: str, rng: random.Random) -> tuple[str, int]:
    """Apply one mutation; return the expected kind and the first seq a verifier must flag."""
    k = rng.randrange(2, LEDGER_SIZE)
    if kind == "edit":
        column = rng.choice((*EDITABLE, "recorded_at"))
        if column == "recorded_at":
            shifted = AuditEvent.objects.get(seq=k).recorded_at + timedelta(microseconds=rng.randrange(1, 10**6))
            _sql("UPDATE audit_auditevent SET recorded_at = %s WHERE seq = %s", [shifted, k])
        else:
            value = AuditEvent.objects.filter(seq=k).values_list(column, flat=True).get()
            _sql(f"UPDATE audit_auditevent SET {column} = %s WHERE seq = %s", [_flip_char(value, rng), k])  # noqa: S608
        return EDITED, k
    if kind == "delete":
        _sql("DELETE FROM audit_auditevent WHERE seq = %s", [k])
        return DELETED, k
    if kind == "delete_renumbered":
        _sql("DELETE FROM audit_auditevent WHERE seq = %s", [k])
        _sql("UPDATE audit_auditevent SET seq = -(seq - 1) WHERE seq > %s", [k])
        _sql("UPDATE audit_auditevent SET seq = -seq WHERE seq < 0")
        return DELETED, k
    if kind == "insert":
        # Make room at k, then insert a forged event whose hash the DBA computed correctly.
        from clinaiops.audit.chain import event_hash

        _sql("UPDATE audit_auditevent SET seq = -(seq + 1) WHERE seq >= %s", [k])
        _sql("UPDATE audit_auditevent SET seq = -seq WHERE seq < 0")
        prev = AuditEvent.objects.get(seq=k - 1).hash
        when = datetime(2026, 1, 1, tzinfo=UTC)
        payload = '{"forged":true}'
        digest = event_hash(k, when.strftime(TIMESTAMP_FORMAT), None, "system", "review.decided", "x", "1",
                            "success", "", None, payload, prev)  # fmt: skip
        AuditEvent.objects.create(
            seq=k, recorded_at=when, actor=None, actor_role="system", action="review.decided", object_type="x",
            object_id="1", outcome="success", request_id="", ip=None, payload=payload, prev_hash=prev, hash=digest,
        )  # fmt: skip
        return INSERTED, k + 1
    if kind == "swap":
        j = rng.randrange(k + 1, LEDGER_SIZE + 1) if k < LEDGER_SIZE else k - 1
        low = min(j, k)
        _sql("UPDATE audit_auditevent SET seq = -1 WHERE seq = %s", [k])
        _sql("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [k, j])
        _sql("UPDATE audit_auditevent SET seq = %s WHERE seq = -1", [j])
        return REORDERED, low
    if kind == "truncate":
        _sql("DELETE FROM audit_auditevent WHERE seq > %s", [min(k, 1800)])
        return TRUNCATED, min(k, 1800) + 1
    raise AssertionError(kind)


def test_every_random_rogue_dba_mutation_is_detected_and_named(db: None) -> None:
    synthetic_ledger_create(LEDGER_SIZE, checkpoint_every=200)
    assert ledger_verify().ok
    _rogue_dba()
    rng = random.Random(20261121)
    kinds = ["edit"] * 60 + ["delete", "delete_renumbered", "insert", "swap", "truncate"] * 8
    for trial, kind in enumerate(kinds):
        sid = transaction.savepoint()
        expected_kind, expected_seq = _mutate(kind, rng)
        result = ledger_verify()
        transaction.savepoint_rollback(sid)
        assert not result.ok, f"trial {trial}: {kind} at {expected_seq} went undetected"
        if kind == "swap":
            assert result.kind in {REORDERED, EDITED}, (trial, result)
            assert result.first_broken_seq == expected_seq, (trial, result)
        else:
            assert (result.kind, result.first_broken_seq) == (expected_kind, expected_seq), (trial, kind, result)
    assert ledger_verify().ok  # every mutation was rolled back


@pytest.mark.slow
def test_no_false_alarm_on_a_clean_ledger_of_100000_events(db: None) -> None:
    synthetic_ledger_create(100_000, checkpoint_every=1000)
    result = ledger_verify()
    assert (result.ok, result.events_checked, result.checkpoints_checked) == (True, 100_000, 100)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need a server database")
def test_concurrent_writers_never_fork_the_chain(transactional_db: None) -> None:
    threads_n, per_thread = 8, 40
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def writer(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_record(
                        action=AuditAction.EXPORT_CREATED, object_type="w", object_id=f"{worker}:{i}", system_reason="t"
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Every 100th event, a checkpoint is made after its commit, racing the writers; it writes an event of its own.
    written = threads_n * per_thread
    checkpoints = AuditCheckpoint.objects.count()
    assert checkpoints >= written // 100
    assert AuditEvent.objects.exclude(action=AuditAction.CHECKPOINT_CREATED).count() == written
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, written + checkpoints + 1))
    result = ledger_verify()
    assert (result.ok, result.events_checked, result.witness_entries) == (True, written + checkpoints, checkpoints)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL")
def test_no_session_setting_lets_truncate_or_delete_through(db: None) -> None:
    _append(2)
    audit_checkpoint_create()
    # The setting that used to open the TRUNCATE trigger for any session (issue 8) opens nothing now.
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
        _sql("SET CONSTRAINTS ALL IMMEDIATE")
        _sql("SET LOCAL clinaiops.allow_ledger_truncate = 'on'")
        _sql("TRUNCATE audit_auditevent, audit_auditcheckpoint")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql("DELETE FROM audit_auditcheckpoint")
    assert AuditEvent.objects.count() == 3  # two events and the checkpoint's own event
    assert AuditCheckpoint.objects.count() == 1


def test_an_empty_ledger_is_refused_not_verified(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    result = ledger_verify()
    assert (result.ok, result.kind, result.events_checked) == (False, EMPTY, 0)
    with pytest.raises(CommandError, match="REFUSED: the ledger is empty"):
        call_command("audit_verify")


HOSTILE = [
    'quote " and \\ backslash',
    "tab\there\nnewline\r\x01soh\x1f\x7f",
    "ünïcødé ✓ 😀 \u2028 \u2029",
    "</script>",
    "",
]


def test_hostile_strings_in_every_field_verify(db: None) -> None:
    for i, value in enumerate(HOSTILE):
        with transaction.atomic():
            audit_record(
                action=AuditAction.EXPORT_CREATED,
                object_type=value or "x",
                object_id=value,
                system_reason=value or "r",
                payload={"note_code": value, "n": i},
            )
    result = ledger_verify()
    assert result.ok and result.events_checked == len(HOSTILE)
