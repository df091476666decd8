"""The readings' and the ledger's month partitions as the on-call engineer meets them (issue 13): the daily task that
makes the coming months, the summary that /metrics and `manage.py partitions` show, and the owner's remedy when
rows sit in a DEFAULT partition, which must keep every row, its id and (for the ledger) the chain verifiable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_record
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Patient, Reading
from clinaiops.care.services import ReadingInput
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.ops.partitions import SplitRefused, default_partition_split, partitions_summary
from clinaiops.ops.tasks import partitions_ensure

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")


def _sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return list(cursor.fetchall()) if cursor.description else []


def _partition_of(table: str, where: str, value: object) -> str:
    return str(_sql(f"SELECT tableoid::regclass::text FROM {table} WHERE {where} = %s", [value])[0][0])  # noqa: S608


def _summary(table: str) -> Any:
    (summary,) = [s for s in partitions_summary() if s.table == table]
    return summary


def _month(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m}"


def _events(n: int) -> list[int]:
    seqs = []
    for i in range(n):
        with transaction.atomic():
            seqs.append(
                audit_record(
                    action=AuditAction.EXPORT_CREATED, object_type="probe", object_id=i, system_reason="test"
                ).seq
            )
    return seqs


@postgres_only
def test_after_migrate_both_tables_have_months_ahead_and_an_empty_default(db: None) -> None:
    for table in ("care_reading", "audit_auditevent"):
        summary = _summary(table)
        assert summary.months_ahead >= 3 and not summary.default_has_rows, summary


@postgres_only
def test_a_back_dated_reading_in_default_is_moved_into_its_month_with_its_id(patient: Patient) -> None:
    long_ago = timezone.now() - timedelta(days=200)  # before every month the migration made
    result = reading_ingest(
        actor=patient.user, patient=patient, data=ReadingInput(long_ago, 138, 86, 70, "cuff"),
        now=long_ago + timedelta(minutes=1),
    )  # fmt: skip
    assert _partition_of("care_reading", "id", result.reading.pk) == "care_reading_default"
    assert _summary("care_reading").default_has_rows

    created = default_partition_split("care_reading")

    assert created == [f"care_reading_p{_month(long_ago)}"]
    assert _partition_of("care_reading", "id", result.reading.pk) == created[0]
    moved = Reading.objects.get(pk=result.reading.pk)
    assert (moved.systolic, moved.diastolic, moved.taken_at) == (138, 86, result.reading.taken_at)
    assert not _summary("care_reading").default_has_rows
    assert default_partition_split("care_reading") == []  # a second run finds nothing to move


@postgres_only
def test_ledger_events_in_default_move_into_their_month_and_the_chain_still_verifies(db: None) -> None:
    current = f"audit_auditevent_p{_month(timezone.now())}"
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {current}")  # the beat task did not run in time
    _sql(f"DROP TABLE {current}")
    seqs = _events(3)
    assert {_partition_of("audit_auditevent", "seq", s) for s in seqs} == {"audit_auditevent_default"}
    hashes = _sql("SELECT seq, hash FROM audit_auditevent ORDER BY seq")

    assert default_partition_split("audit_auditevent") == [current]

    assert {_partition_of("audit_auditevent", "seq", s) for s in seqs} == {current}
    after = _sql("SELECT seq, hash FROM audit_auditevent ORDER BY seq")
    assert after[: len(hashes)] == hashes  # every event kept, with its seq and hash
    (split,) = AuditEvent.objects.filter(seq__gt=seqs[-1])  # and the split itself on record, in the chain
    assert (split.action, split.object_id) == ("partitions.default_split", "audit_auditevent")
    assert split.payload_data["months"] == [current]
    assert ledger_verify().ok
    # The month made by the split is a ledger table like the others: it refuses TRUNCATE on its own.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql(f"TRUNCATE {current}")
    assert _events(1)[0] == seqs[-1] + 2  # the chain goes on in the new month
    assert _partition_of("audit_auditevent", "seq", seqs[-1] + 2) == current


@postgres_only
def test_the_daily_task_makes_the_readings_months_even_when_the_ledger_refuses_one(db: None) -> None:
    current = f"audit_auditevent_p{_month(timezone.now())}"
    _sql(f"ALTER TABLE audit_auditevent DETACH PARTITION {current}")
    _sql(f"DROP TABLE {current}")
    _events(1)  # in DEFAULT: the ledger's ensure now refuses this month
    far = _sql("SELECT relname FROM pg_class WHERE relname ~ '^care_reading_p[0-9]{6}$' ORDER BY relname DESC")[0][0]
    _sql(f"ALTER TABLE care_reading DETACH PARTITION {far}")
    _sql(f"DROP TABLE {far}")

    made = partitions_ensure()

    assert made == {"care_reading": 1, "audit_auditevent": -1}
    assert _sql("SELECT to_regclass(%s) IS NOT NULL", [far])[0][0]


@postgres_only
def test_the_command_lists_both_tables_and_says_when_a_default_holds_rows(patient: Patient) -> None:
    long_ago = timezone.now() - timedelta(days=200)
    reading_ingest(actor=patient.user, patient=patient, data=ReadingInput(long_ago, 138, 86, 70, "cuff"),
                   now=long_ago + timedelta(minutes=1))  # fmt: skip
    out = StringIO()
    call_command("partitions", stdout=out)
    text = out.getvalue()
    assert "care_reading:" in text and "audit_auditevent:" in text
    assert "DEFAULT holds rows: run --split-default" in text
    out = StringIO()
    call_command("partitions", "--split-default", "care_reading", stdout=out)
    assert f"care_reading_p{_month(long_ago)}" in out.getvalue()
    assert "DEFAULT holds rows" not in out.getvalue()


@postgres_only
def test_the_metrics_show_the_months_ahead_and_a_default_with_rows(db: None) -> None:
    from clinaiops.ops.collectors import ClinicalStateCollector

    families = {f.name: f for f in ClinicalStateCollector().state(timezone.now())}
    ahead = {s.labels["table"]: s.value for s in families["clinaiops_partition_months_ahead"].samples}
    assert ahead["care_reading"] >= 3 and ahead["audit_auditevent"] >= 3
    default = {s.labels["table"]: s.value for s in families["clinaiops_partition_default_has_rows"].samples}
    assert default == {"care_reading": 0.0, "audit_auditevent": 0.0}


def test_on_sqlite_there_is_nothing_to_split_and_the_summary_is_empty(db: None) -> None:
    if connection.vendor == "postgresql":
        with pytest.raises(SplitRefused, match="not one of the partitioned tables"):
            default_partition_split("core_user")
        return
    assert partitions_summary() == []
    with pytest.raises(SplitRefused, match="PostgreSQL only"):
        default_partition_split("care_reading")
    assert partitions_ensure() == {"care_reading": 0, "audit_auditevent": 0}
