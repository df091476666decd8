"""care_reading partitioned by month of taken_at on PostgreSQL (issue 13, migrations care 0008 and 0009).

What must not change for the clinic: a resend stores nothing twice, under its natural key or under the sender's
identifier, whatever month it names, and also when two arrive at once; an alert's reading is always there. What
the partitioning buys: a query bounded in taken_at reads only the months in range. The PostgreSQL-only tests skip
on SQLite, which has no partitions; the others run on both.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models.deletion import ProtectedError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind, Patient, Reading, ReadingIdentifier, ReadingSource
from clinaiops.care.partitions import reading_partitions, reading_partitions_ensure
from clinaiops.care.selectors import reading_list_for_patient, readings_between
from clinaiops.care.services import ReadingInput
from clinaiops.core.errors import Conflict
from clinaiops.loops.services.ingest import IngestResult, reading_ingest
from tests.concurrency import in_thread, waiting_for_a_lock

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="declarative partitioning is PostgreSQL's; SQLite has none"
)


def _month_start(moment: datetime, months: int = 0) -> datetime:
    """The first instant (UTC) of the month `months` after `moment`'s."""
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _partition_name(moment: datetime) -> str:
    return f"care_reading_p{moment:%Y%m}"


def _partition_of(reading: Reading) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM care_reading WHERE id = %s", [reading.pk])
        return str(cursor.fetchone()[0])


def _ingest(
    patient: Patient,
    taken_at: datetime,
    *,
    identifier: str = "",
    systolic: int = 134,
    diastolic: int = 86,
    source: str = ReadingSource.CUFF,
) -> IngestResult:
    """A reading through the one ingest service, on a clock just after it was taken (months may be in the future)."""
    return reading_ingest(
        actor=patient.user,
        patient=patient,
        data=ReadingInput(
            taken_at=taken_at, systolic=systolic, diastolic=diastolic, heart_rate=70, source=source,
            identifier=identifier,
        ),
        now=taken_at + timedelta(minutes=1),
    )  # fmt: skip


@pytest.fixture
def months() -> tuple[datetime, datetime]:
    """(this month's start, next month's start), both with their partitions made."""
    reading_partitions_ensure(3)
    now = timezone.now()
    return _month_start(now), _month_start(now, 1)


# --- Where rows land --------------------------------------------------------------------------------------


@postgresql_only
def test_a_reading_lands_in_its_month_and_one_outside_the_made_months_in_default(
    patient: Patient, months: tuple[datetime, datetime]
) -> None:
    this_month, next_month = months
    last_second = _ingest(patient, next_month - timedelta(seconds=1)).reading
    at_the_boundary = _ingest(patient, next_month).reading
    long_ago = _ingest(patient, _month_start(this_month, -30) + timedelta(days=3)).reading
    assert _partition_of(last_second) == _partition_name(this_month)
    assert _partition_of(at_the_boundary) == _partition_name(next_month)  # the upper bound is exclusive
    assert _partition_of(long_ago) == "care_reading_default"
    # The model's view is unchanged: the readings are found by id, with their values.
    assert Reading.objects.get(pk=long_ago.pk).taken_at == long_ago.taken_at


@postgresql_only
def test_the_migration_made_the_current_and_next_three_months_and_a_default(patient: Patient) -> None:
    partitions = reading_partitions()
    assert partitions[-1].default and partitions[-1].name == "care_reading_default"
    names = {p.name for p in partitions}
    with connection.cursor() as cursor:  # the months are counted from when the test database was migrated
        cursor.execute("SELECT applied FROM django_migrations WHERE app = 'care' AND name LIKE '0009_%%'")
        migrated = cursor.fetchone()[0]
    assert {_partition_name(_month_start(migrated, k)) for k in range(4)} <= names
    month = next(p for p in partitions if p.name == _partition_name(migrated))
    assert (month.lower, month.upper) == (_month_start(migrated), _month_start(migrated, 1))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'care_reading'::regclass "
            "AND contype = 'p'"
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, taken_at)"


@postgresql_only
def test_ensure_makes_the_missing_months_and_moves_their_readings_out_of_default(
    patient: Patient, months: tuple[datetime, datetime]
) -> None:
    this_month, _ = months
    later = _month_start(this_month, 3)
    # A month missing (as if the beat task had not run) while readings of it arrive: they go to DEFAULT.
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {_partition_name(later)}")
    stranded = _ingest(patient, later + timedelta(days=2), identifier="gw|late-1").reading
    other = _ingest(patient, later + timedelta(days=9)).reading
    long_ago = _ingest(patient, _month_start(this_month, -30)).reading
    assert _partition_of(stranded) == "care_reading_default"

    assert reading_partitions_ensure(3) == 1
    assert _partition_of(stranded) == _partition_of(other) == _partition_name(later)
    assert _partition_of(long_ago) == "care_reading_default"  # outside the months made: it stays
    assert Reading.objects.filter(patient=patient).count() == 3  # moved, not copied or lost
    moved = Reading.objects.get(pk=stranded.pk)
    assert (moved.taken_at, moved.identifier, moved.systolic) == (stranded.taken_at, "gw|late-1", 134)
    # Its identifier still finds it, and the natural key still refuses it twice in its new partition.
    assert _ingest(patient, later + timedelta(days=20), identifier="gw|late-1").reading.pk == stranded.pk
    assert not _ingest(patient, stranded.taken_at).created
    assert Reading.objects.filter(patient=patient).count() == 3
    assert reading_partitions_ensure(3) == 0  # nothing left to make


@postgresql_only
def test_ensure_refuses_an_implausible_horizon(db: None) -> None:
    with pytest.raises(DataError, match="months ahead must be between 0 and 24"):
        reading_partitions_ensure(-1)
    with pytest.raises(DataError):
        reading_partitions_ensure(25)


def test_ensure_and_the_listing_are_no_ops_on_sqlite(db: None) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite behaviour")
    assert reading_partitions_ensure(3) == 0
    assert reading_partitions() == []


# --- Exactly once ------------------------------------------------------------------------------------------


def test_a_resend_with_the_same_identifier_in_another_month_stores_nothing(patient: Patient) -> None:
    first_month = _month_start(timezone.now()) + timedelta(days=2)
    original = _ingest(patient, first_month, identifier="urn:gw|m-1")
    assert original.created
    # The gateway resends it with its effective time moved into the next month (a clock fix, a timezone bug).
    resend = _ingest(patient, _month_start(first_month, 1) + timedelta(days=1), identifier="urn:gw|m-1")
    assert not resend.created
    assert resend.reading.pk == original.reading.pk
    # Other values under the same identifier are a conflict, not a second reading.
    with pytest.raises(Conflict):
        _ingest(patient, _month_start(first_month, -5), identifier="urn:gw|m-1", systolic=150)
    assert Reading.objects.filter(patient=patient).count() == 1
    claim = ReadingIdentifier.objects.get(patient=patient)
    assert (claim.identifier, claim.reading_id) == ("urn:gw|m-1", original.reading.pk)


def test_the_same_identifier_is_free_for_another_patient(patient: Patient, other_patient: Patient) -> None:
    when = timezone.now() - timedelta(hours=1)
    assert _ingest(patient, when, identifier="urn:gw|shared").created
    assert _ingest(other_patient, when, identifier="urn:gw|shared").created


def test_the_natural_key_still_dedupes_and_a_new_identifier_on_it_is_not_kept(patient: Patient) -> None:
    when = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    original = _ingest(patient, when)
    assert not _ingest(patient, when).created  # the same measurement again
    # The same measurement with an identifier it was not stored under: answered with the stored reading, and the
    # identifier is not claimed, so it does not point at a reading that was never written.
    again = _ingest(patient, when, identifier="urn:gw|late-name")
    assert (again.created, again.reading.pk) == (False, original.reading.pk)
    assert not ReadingIdentifier.objects.filter(patient=patient).exists()
    # ...and stays free for the reading it does name.
    assert _ingest(patient, when + timedelta(minutes=10), identifier="urn:gw|late-name").created
    with pytest.raises(Conflict):
        _ingest(patient, when, systolic=150)  # other values at a stored natural key
    assert Reading.objects.filter(patient=patient).count() == 2


def test_an_identifier_costs_no_query_on_postgresql_and_one_on_sqlite(patient: Patient) -> None:
    when = timezone.now() - timedelta(hours=3)
    _ingest(patient, when - timedelta(hours=1))  # the approval policy is cached from here on
    with CaptureQueriesContext(connection) as bare:
        assert _ingest(patient, when).created
    with CaptureQueriesContext(connection) as identified:
        assert _ingest(patient, when + timedelta(minutes=5), identifier="urn:gw|counted").created
    extra = {"postgresql": 0, "sqlite": 1}[connection.vendor]
    assert len(identified.captured_queries) == len(bare.captured_queries) + extra


# --- Two connections at once -------------------------------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sends_of_one_identifier_in_different_months_store_one_reading(patient: Patient) -> None:
    reading_partitions_ensure(3)
    this_month = _month_start(timezone.now())
    stored = threading.Event()

    # The original holds its transaction open, with the identifier claimed, until the resend waits on the claim;
    # the resend names another month, so no key of care_reading could have stopped it.
    def original() -> int:
        with transaction.atomic():
            result = _ingest(Patient.objects.get(pk=patient.pk), this_month + timedelta(days=1), identifier="gw|race")
            assert result.created
            stored.set()
            waiting_for_a_lock(what="the second ingest")
        return result.reading.pk

    def resend() -> IngestResult:
        stored.wait(10)
        return _ingest(Patient.objects.get(pk=patient.pk), _month_start(this_month, 1), identifier="gw|race")

    first, first_out = in_thread(original)
    second, second_out = in_thread(resend)
    first.join(30)
    second.join(30)
    assert "error" not in first_out, first_out.get("error")
    assert "error" not in second_out, second_out.get("error")
    assert not second_out["result"].created
    assert second_out["result"].reading.pk == first_out["result"]
    assert Reading.objects.filter(patient=patient).count() == 1
    assert ReadingIdentifier.objects.filter(patient=patient).count() == 1


# --- The alert's reading -----------------------------------------------------------------------------------


def test_an_alert_always_finds_its_reading_though_the_database_no_longer_checks_it(patient: Patient) -> None:
    crisis = _ingest(patient, timezone.now() - timedelta(minutes=30), systolic=192, diastolic=124)
    [alert] = crisis.alerts
    assert alert.kind == AlertKind.HYPERTENSIVE_CRISIS
    loaded = Alert.objects.select_related("reading").get(pk=alert.pk)
    assert loaded.reading is not None and loaded.reading.pk == crisis.reading.pk
    # No alert anywhere names a reading that is not there.
    assert not Alert.objects.filter(reading__isnull=False).exclude(reading_id__in=Reading.objects.values("pk")).exists()
    # Readings are never deleted; the ORM still refuses to delete one an alert names.
    with pytest.raises(ProtectedError):
        Reading.objects.get(pk=crisis.reading.pk).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'care_reading'::regclass"
            )
            assert cursor.fetchone()[0] == 0  # by design: see Alert.reading


# --- Pruning -----------------------------------------------------------------------------------------------


def _partitions_in_plan(plan: str) -> set[str]:
    return set(re.findall(r"\bon (care_reading_(?:p\d{6}|default))\b", plan))


@postgresql_only
def test_a_bounded_readings_list_reads_only_the_months_in_range(
    patient: Patient, months: tuple[datetime, datetime]
) -> None:
    this_month, next_month = months
    _ingest(patient, this_month + timedelta(days=1))
    within = reading_list_for_patient(
        patient_id=patient.pk, taken_from=this_month + timedelta(days=2), taken_to=this_month + timedelta(days=9)
    )
    assert _partitions_in_plan(within.explain()) == {_partition_name(this_month)}
    across = reading_list_for_patient(
        patient_id=patient.pk, taken_from=next_month - timedelta(days=3), taken_to=next_month + timedelta(days=3)
    )
    assert _partitions_in_plan(across.explain()) == {_partition_name(this_month), _partition_name(next_month)}
    # An unbounded list reads them all, DEFAULT included.
    assert "care_reading_default" in _partitions_in_plan(reading_list_for_patient(patient_id=patient.pk).explain())


@postgresql_only
def test_the_evaluations_window_reads_only_the_months_it_spans(
    patient: Patient, months: tuple[datetime, datetime]
) -> None:
    _, next_month = months
    as_of = next_month + timedelta(days=3)
    # The feature window (inference.feature_source) and the policy's readings count: 14 days, by taken_at.
    window = readings_between(patient=patient, start=as_of - timedelta(days=14), end=as_of)
    assert _partitions_in_plan(window.explain()) == {
        _partition_name(_month_start(next_month, -1)),
        _partition_name(next_month),
    }


# --- The migration itself ----------------------------------------------------------------------------------


def _catalog(table: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(constraint name and definition, index names) of `table` itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass", [table]
        )
        constraints = {(name, definition) for name, definition in cursor.fetchall()}
        cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", [table])
        indexes = {name for (name,) in cursor.fetchall()}
    return constraints, indexes


@postgresql_only
def test_the_migration_keeps_every_row_id_sequence_constraint_and_index(patient: Patient) -> None:
    """Back to the unpartitioned table of 0008, rows of several months written there, and 0009 again: all inside
    this test's transaction (PostgreSQL's DDL is transactional), so the database is as it was afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate([("care", "0008_reading_identifier_side_table")])
    before_constraints, before_indexes = _catalog("care_reading")
    now = timezone.now()
    times = [_month_start(now, -7) + timedelta(hours=5), _month_start(now, -1), now - timedelta(minutes=1)]
    with connection.cursor() as cursor:
        for taken_at in times:
            cursor.execute(
                "INSERT INTO care_reading (patient_id, taken_at, systolic, diastolic, heart_rate, source, received_at, "
                "identifier, updated_at, utc_offset_minutes) VALUES (%s, %s, 130, 80, NULL, 'cuff', %s, '', %s, 60)",
                [patient.pk, taken_at, taken_at, taken_at],
            )
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM care_reading")
        ids = cursor.fetchone()[0]
        # The deferred patient checks of these inserts run now, not on a table the migration drops (a real
        # `migrate` runs in a transaction of its own and has none pending).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    MigrationExecutor(connection).migrate([("care", "0009_reading_partition_by_month")])
    after_constraints, after_indexes = _catalog("care_reading")
    assert {c for c in before_constraints if not c[1].startswith("PRIMARY KEY")} <= after_constraints
    assert ("care_reading_pkey", "PRIMARY KEY (id, taken_at)") in after_constraints
    assert after_indexes == before_indexes
    rows = list(Reading.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "taken_at", "utc_offset_minutes"))
    assert rows == [(pk, taken_at, 60) for pk, taken_at in zip(ids, times, strict=True)]
    # One partition for every month from the oldest reading's, so none of them is in DEFAULT.
    names = {p.name for p in reading_partitions()}
    assert {_partition_name(_month_start(now, k)) for k in range(-7, 4)} <= names
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM care_reading_default")
        assert cursor.fetchone()[0] == 0
    # The sequence goes on from where it was, and the checks still hold.
    fresh = _ingest(patient, now - timedelta(seconds=30))
    assert fresh.reading.pk > max(ids)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO care_reading (patient_id, taken_at, systolic, diastolic, source, received_at, identifier, "
            "updated_at) VALUES (%s, now(), 80, 90, 'cuff', now(), '', now())",
            [patient.pk],
        )
