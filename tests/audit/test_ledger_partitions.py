"""The ledger partitioned by month on PostgreSQL (issue 13, migration 0006): appends land in the month's partition
(or the DEFAULT one), the triggers hold on the parent and on every partition, the coming months are made ahead,
and after `ledger_archive` detached old months the verifier starts from the signed, witnessed checkpoint at the
last archived seq.

Events are made only by the real append, whose clock is the database's: to put a partition boundary between
events without faking a timestamp, a test splits the current month's partition at the database clock (the events
so far stay in the first part, later ones go to the second), which is what a month boundary looks like to the
append, the chain and the verifier.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.audit.partitions import (
    DEFAULT_PARTITION,
    LedgerArchiveRefused,
    ledger_archive,
    ledger_partitions,
    ledger_partitions_ensure,
)
from clinaiops.audit.services import audit_record
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.audit.verify import EDITED, TRUNCATED, ledger_verify
from clinaiops.audit.witness import witness_file_path
from tests.audit.test_roles import Installation, installation  # noqa: F401 - the installation fixture, reused

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")
REST = "audit_auditevent_p_rest"


def _sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return list(cursor.fetchall()) if cursor.description else []


def _events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="probe", object_id=i, system_reason="test")


def _partition_of(seq: int) -> str:
    return str(_sql("SELECT tableoid::regclass::text FROM audit_auditevent WHERE seq = %s", [seq])[0][0])


def _current_month() -> str:
    now = datetime.now(UTC)
    (partition,) = [p for p in ledger_partitions() if p.attached and p.lower and p.upper and p.lower <= now < p.upper]
    return partition.name


def _literal(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("'%Y-%m-%d %H:%M:%S.%f+00'")


def _split_current_month() -> datetime:
    """Split the current month's partition at the database clock: the events so far stay in the first part, the
    later ones go to REST. Returns the boundary."""
    name = _current_month()
    (part,) = [p for p in ledger_partitions() if p.name == name]
    assert part.lower is not None and part.upper is not None
    boundary: datetime = _sql("SELECT clock_timestamp()")[0][0]
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {name}")
    _sql(
        f"ALTER TABLE audit_auditevent ATTACH PARTITION {name} FOR VALUES FROM ({_literal(part.lower)}) "
        f"TO ({_literal(boundary)})"
    )
    _sql(
        f"CREATE TABLE {REST} PARTITION OF audit_auditevent FOR VALUES FROM ({_literal(boundary)}) "
        f"TO ({_literal(part.upper)})"
    )
    _sql(
        f"CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON {REST} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate()"
    )
    return boundary


@pytest.fixture
def ledger_across_two_partitions(db: None, django_capture_on_commit_callbacks: Any) -> tuple[str, int]:
    """Ten events in the current month's first part, a boundary, then ten more (and a checkpoint's event) after it,
    all through the real append; checkpoints are witnessed as they commit."""
    with django_capture_on_commit_callbacks(execute=True):
        _events(10)
        first = _current_month()
        _split_current_month()
        _events(10)
    return first, 10


# --- Appends, the chain and the triggers across partitions --------------------------------------------------


@postgres_only
def test_appends_cross_a_partition_boundary_and_the_chain_verifies_across_it(
    ledger_across_two_partitions: tuple[str, int],
) -> None:
    first, last_before = ledger_across_two_partitions
    assert (_partition_of(1), _partition_of(last_before), _partition_of(last_before + 1)) == (first, first, REST)
    result = ledger_verify()
    assert (result.ok, result.events_checked, result.archived_through) == (True, 20, 0)


@postgres_only
def test_the_migration_made_the_current_month_the_next_three_and_a_default(db: None) -> None:
    attached = [p for p in ledger_partitions() if p.attached]
    months = [p for p in attached if not p.default]
    assert [p.name for p in attached if p.default] == [DEFAULT_PARTITION]
    now = datetime.now(UTC)
    current = next(i for i, p in enumerate(months) if p.lower and p.upper and p.lower <= now < p.upper)
    assert len(months) - current >= 4  # the current month and the next three
    bounds = [(p.lower, p.upper) for p in months[current:]]
    assert all(upper == lower_next for (_l, upper), (lower_next, _u) in pairwise(bounds))
    assert all(p.lower and p.lower.day == 1 and p.lower.hour == 0 and p.lower.utcoffset() is not None for p in months)
    # The primary key and the unique seq now include the partition key; nothing else changed.
    constraints = dict(
        _sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'audit_auditevent'::regclass"
        )
    )
    assert constraints["audit_auditevent_pkey"] == "PRIMARY KEY (id, recorded_at)"
    assert constraints["audit_auditevent_seq_key"] == "UNIQUE (seq, recorded_at)"


@postgres_only
@pytest.mark.parametrize("statement", ["UPDATE {t} SET payload = '{{}}'", "DELETE FROM {t}", "TRUNCATE {t}"])
@pytest.mark.parametrize("target", ["parent", "partition"])
def test_the_triggers_refuse_changes_on_the_parent_and_on_a_partition_directly(
    ledger_across_two_partitions: tuple[str, int], statement: str, target: str
) -> None:
    # The suite connects as a superuser: the triggers refuse it too (only suspending them gets past, see
    # test_rogue_dba.py).
    table = "audit_auditevent" if target == "parent" else ledger_across_two_partitions[0]
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # else TRUNCATE stops at the events' deferred foreign-key checks first
    with pytest.raises(DatabaseError, match="audit ledger is append-only"), transaction.atomic():
        _sql(statement.format(t=table))
    assert _sql("SELECT count(*) FROM audit_auditevent")[0][0] == 20


@postgres_only
def test_every_partition_refuses_truncate_on_its_own(db: None) -> None:
    # TRUNCATE of a partition by name fires that partition's triggers alone, so each must carry one.
    partitions = {p.name for p in ledger_partitions() if p.attached}
    guarded = {
        row[0]
        for row in _sql(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'audit_auditevent_no_truncate' "
            "AND tgtype & 32 = 32"  # TRIGGER_TYPE_TRUNCATE
        )
    }
    assert partitions and partitions <= guarded


# --- Making the coming months -------------------------------------------------------------------------------


@postgres_only
def test_ensure_makes_the_missing_months_with_their_truncate_trigger_and_a_second_run_makes_none(db: None) -> None:
    furthest = [p for p in ledger_partitions() if p.attached and not p.default][-1]
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {furthest.name}")
    _sql(f"DROP TABLE {furthest.name}")
    assert ledger_partitions_ensure(3) == 1
    assert ledger_partitions_ensure(3) == 0
    remade = [p for p in ledger_partitions() if p.name == furthest.name]
    assert [(p.lower, p.upper, p.attached) for p in remade] == [(furthest.lower, furthest.upper, True)]
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
        _sql(f"TRUNCATE {furthest.name}")
    assert ledger_partitions_ensure(5) == 2  # current + 4 and current + 5


@postgres_only
def test_an_append_without_its_month_lands_in_default_and_ensure_then_refuses_that_month(db: None) -> None:
    current = _current_month()
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {current}")
    _sql(f"DROP TABLE {current}")
    _events(3)  # nothing is lost: the DEFAULT partition takes them
    assert {_partition_of(seq) for seq in (1, 2, 3)} == {DEFAULT_PARTITION}
    refused = r"month \d{4}-\d{2} refused, 3 of its events sit in the DEFAULT"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        ledger_partitions_ensure(3)
    assert current not in {p.name for p in ledger_partitions()}
    assert ledger_verify().ok


@postgres_only
def test_ensure_refuses_to_make_more_than_two_years_at_once(db: None) -> None:
    with pytest.raises(DatabaseError, match=r"months ahead must be 0\.\.24"), transaction.atomic():
        ledger_partitions_ensure(25)


# --- Archiving and verifying through the archive ------------------------------------------------------------


def _archive(ledger: tuple[str, int], django_capture_on_commit_callbacks: Any) -> Any:
    first, _count = ledger
    (part,) = [p for p in ledger_partitions() if p.name == first]
    assert part.upper is not None
    with django_capture_on_commit_callbacks(execute=True):
        return ledger_archive(before=part.upper)


@postgres_only
def test_verify_after_an_archive_starts_from_the_anchor_checkpoint_and_says_so(
    ledger_across_two_partitions: tuple[str, int], django_capture_on_commit_callbacks: Any
) -> None:
    archive = _archive(ledger_across_two_partitions, django_capture_on_commit_callbacks)
    first, count = ledger_across_two_partitions
    assert (archive.detached, archive.anchor_seq, archive.anchor_created) == ((first,), count, True)
    anchor = AuditCheckpoint.objects.get(seq=count)
    assert (
        anchor.reason == "archive_anchor"
        and anchor.head_hash == _sql(f"SELECT hash FROM {first} WHERE seq = %s", [count])[0][0]  # noqa: S608
    )
    # The detached month stays in the database, still append-only, and out of the ledger.
    assert _sql(f"SELECT count(*) FROM {first}")[0][0] == count  # noqa: S608
    assert first not in {p.name for p in ledger_partitions() if p.attached}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql(f"DELETE FROM {first}")  # noqa: S608

    # The archive is in the chain itself, in the transaction that detached the month.
    (recorded,) = AuditEvent.objects.filter(action=AuditAction.LEDGER_ARCHIVED)
    assert (recorded.object_type, recorded.object_id) == ("audit_ledger", str(count))
    assert recorded.payload_data["through_seq"] == count and recorded.payload_data["months"] == [first]

    result = ledger_verify()
    assert result.ok, result.problem
    assert result.archived_through == count
    # seq 11–22: ten events, the anchor checkpoint's own event and the archive's
    assert result.events_checked == 12
    assert f"verified from the signed checkpoint at seq {count}: events 1–{count} are archived" in " ".join(
        result.notes
    )
    assert result.witness_entries >= 1 and count in {e.seq for e in _witness()}


def _witness() -> list[Any]:
    from clinaiops.audit.witness import witness_read

    read = witness_read()
    assert read is not None
    return list(read.entries)


@postgres_only
def test_an_edit_in_a_remaining_partition_is_still_caught_after_an_archive(
    ledger_across_two_partitions: tuple[str, int], django_capture_on_commit_callbacks: Any
) -> None:
    _archive(ledger_across_two_partitions, django_capture_on_commit_callbacks)
    _sql("SET LOCAL session_replication_role = replica")  # a superuser suspends the triggers
    _sql(f"UPDATE {REST} SET payload = '{{\"forged\":true}}' WHERE seq = 15")  # noqa: S608
    _sql("SET LOCAL session_replication_role = origin")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, EDITED, 15)


@postgres_only
def test_months_detached_without_an_anchor_checkpoint_fail_verification_as_a_truncation(
    ledger_across_two_partitions: tuple[str, int],
) -> None:
    first, _count = ledger_across_two_partitions
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {first}")  # the owner, bypassing ledger_archive
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 1)
    assert "the ledger starts at seq 11: events 1–10 are missing and no archive of them is recorded" in result.problem


@postgres_only
def test_an_anchor_the_witness_lacks_fails_verification(
    ledger_across_two_partitions: tuple[str, int], django_capture_on_commit_callbacks: Any
) -> None:
    archive = _archive(ledger_across_two_partitions, django_capture_on_commit_callbacks)
    # Someone with the database and the signing key drops the oldest events and signs an anchor of their own: the
    # witness, published as every real checkpoint is made, does not hold it.
    path = witness_file_path()
    kept = [line for line in path.read_text().splitlines() if f'"seq":{archive.anchor_seq},' not in line]
    path.write_text("".join(f"{line}\n" for line in kept))
    result = ledger_verify()
    assert (result.ok, result.kind) == (False, TRUNCATED)
    assert f"the checkpoint at seq {archive.anchor_seq} that would anchor it is not in the witness" in result.problem


@postgres_only
def test_archive_never_detaches_the_current_month_and_refuses_a_default_holding_older_events(db: None) -> None:
    _events(2)
    assert ledger_archive(before=datetime.now(UTC)).detached == ()  # the current month has not ended
    with pytest.raises(LedgerArchiveRefused, match="only months that have ended"):
        ledger_archive(before=datetime(2999, 1, 1, tzinfo=UTC))
    with pytest.raises(CommandError, match=r"the current month .* is never archived"):
        call_command("ledger_archive", "--before", "2999-01")


def test_oldest_events_cut_down_to_a_witnessed_checkpoint_without_an_archive_record_are_a_truncation(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    """The owner's attack on the history: drop the oldest events down to one of the periodic checkpoints (signed and
    witnessed, one every AUDIT_CHECKPOINT_EVERY events). Without the ledger's own record of an archive it is a
    truncation; with it (what ledger_archive writes, here appended the same way) the ledger verifies from the
    checkpoint. The same on both databases."""
    synthetic_ledger_create(250, checkpoint_every=100, witness=True)
    if connection.vendor == "postgresql":
        _sql("SET LOCAL session_replication_role = replica")
    _sql("DELETE FROM audit_auditevent WHERE seq <= 100")
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 1)
    assert "no archive of them is recorded in the ledger" in result.problem
    with transaction.atomic():
        audit_record(action=AuditAction.LEDGER_ARCHIVED, object_type="audit_ledger", object_id=100,
                     system_reason="ledger_archive", payload={"through_seq": 100})  # fmt: skip
    result = ledger_verify()
    assert (result.ok, result.archived_through, result.events_checked) == (True, 100, 151)
    _sql("DELETE FROM audit_auditevent WHERE seq <= 150")  # no checkpoint and no archive at 150
    result = ledger_verify()
    assert (result.ok, result.kind, result.first_broken_seq) == (False, TRUNCATED, 1)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="what the embedded SQLite default does")
def test_on_sqlite_there_are_no_partitions_to_make_list_or_archive(db: None) -> None:
    assert (ledger_partitions_ensure(3), ledger_partitions()) == (0, [])
    with pytest.raises(LedgerArchiveRefused, match="PostgreSQL only"):
        ledger_archive(before=datetime(2026, 1, 1, tzinfo=UTC))


# --- Against the runtime role (the installation of test_roles.py) -------------------------------------------


RUNTIME_REFUSED = {
    "detach a month": "ALTER TABLE audit_auditevent DETACH PARTITION {partition}",
    "create a month of its own": (
        "CREATE TABLE audit_auditevent_p299901 PARTITION OF audit_auditevent "
        "FOR VALUES FROM ('2999-01-01 00:00:00+00') TO ('2999-02-01 00:00:00+00')"
    ),
    "create a table": "CREATE TABLE ledger_copy (id int)",
    "insert into a partition directly": (
        "INSERT INTO {partition} (seq, recorded_at, actor_role, action, object_type, object_id, outcome, request_id, "
        "payload, prev_hash, hash) SELECT 999, recorded_at, 'system', 'x', 'x', '', 'success', '', '{{}}', "
        "repeat('0', 64), repeat('0', 64) FROM {partition} LIMIT 1"
    ),
    "delete from a partition directly": "DELETE FROM {partition}",
    "truncate the default partition": f"TRUNCATE {DEFAULT_PARTITION}",
    "disable a partition's triggers": "ALTER TABLE {partition} DISABLE TRIGGER USER",
}


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("attack", sorted(RUNTIME_REFUSED))
def test_the_runtime_role_cannot_detach_create_or_write_partitions(installation: Installation, attack: str) -> None:  # noqa: F811
    import psycopg

    db_ = installation.db
    with db_.connect(db_.runtime) as runtime:
        (partition,) = runtime.execute(
            "SELECT tableoid::regclass::text FROM audit_auditevent ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        with pytest.raises(psycopg.Error) as refused, runtime.transaction():
            runtime.execute(RUNTIME_REFUSED[attack].format(partition=partition))
    assert refused.value.sqlstate == "42501", refused.value


@postgres_only
@pytest.mark.django_db
def test_the_runtime_role_makes_months_ahead_through_the_function_and_gets_only_select_on_them(
    installation: Installation,  # noqa: F811
) -> None:
    db_ = installation.db
    with db_.connect(db_.runtime) as runtime:
        created = runtime.execute("SELECT audit_auditevent_partitions_ensure(6)").fetchone()[0]
        newest = runtime.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_auditevent'::regclass AND c.relname <> %s ORDER BY c.relname DESC LIMIT 1",
            [DEFAULT_PARTITION],
        ).fetchone()
        held = [
            privilege
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
            if runtime.execute("SELECT has_table_privilege(%s, %s)", [newest[0], privilege]).fetchone()[0]
        ]
    assert created == 3 and newest[1] == db_.owner and held == ["SELECT"]
    # db_roles finds nothing to repair: the function locked the new months' privileges itself.
    again = db_.manage("db_roles", "--owner", db_.owner, "--runtime", db_.runtime, role=db_.superuser)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("0 changes."), again.stdout


@postgres_only
@pytest.mark.django_db
def test_ledger_archive_and_the_default_split_refuse_the_runtime_role_and_run_as_the_owner(
    installation: Installation,  # noqa: F811
    tmp_path: Path,
) -> None:
    db_ = installation.db
    month = datetime.now(UTC).strftime("%Y-%m")
    refused = db_.manage("ledger_archive", "--before", month, role=db_.runtime)
    assert refused.returncode == 1
    assert f"the database role {db_.runtime} does not own the ledger" in refused.stderr
    assert "Traceback" not in refused.stderr
    owner = db_.manage("ledger_archive", "--before", month, role=db_.runtime, MIGRATION_DATABASE_URL=db_.url(db_.owner))
    assert owner.returncode == 0, owner.stderr
    assert "nothing detached" in owner.stdout  # every event is from this month
    # The same for moving a DEFAULT partition's rows (`manage.py partitions`), in the same installation: the runtime
    # role may list and make the months ahead, not split.
    listed = db_.manage("partitions", "--ensure", role=db_.runtime)
    assert listed.returncode == 0 and "care_reading:" in listed.stdout and "audit_auditevent:" in listed.stdout
    split = db_.manage("partitions", "--split-default", "care_reading", role=db_.runtime)
    assert split.returncode == 1 and "only the owner of care_reading may split" in split.stderr
    assert "Traceback" not in split.stderr
    as_owner = db_.manage("partitions", "--split-default", "audit_auditevent", role=db_.runtime,
                          MIGRATION_DATABASE_URL=db_.url(db_.owner))  # fmt: skip
    assert as_owner.returncode == 0, as_owner.stderr
    assert "its DEFAULT partition was empty" in as_owner.stdout
    unknown = db_.manage("partitions", "--split-default", "core_user", role=db_.runtime)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
