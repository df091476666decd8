"""The approval policy in force is cached per process (governance.services.approval_policy_current), and a new
version must still apply to the very next reading: a stale crisis threshold would leave a crisis unalerted. The
cache is checked against the newest row's marker on every call, so nothing has to tell it of a new version."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind, Patient
from clinaiops.care.services import ReadingInput
from clinaiops.core.models import User
from clinaiops.loops.services.ingest import reading_ingest
from governance.models import ApprovalPolicy
from governance.services import approval_policy_current, approval_policy_revise
from tests.factories import PASSWORD


def _ingest(patient: Patient, systolic: int, diastolic: int, minutes_ago: int) -> list[str]:
    """The kinds of the alerts the reading opened."""
    result = reading_ingest(
        actor=patient.user,
        patient=patient,
        data=ReadingInput(timezone.now() - timedelta(minutes=minutes_ago), systolic, diastolic, 70, "cuff"),
    )
    return [alert.kind for alert in result.alerts]


def test_a_published_policy_applies_to_the_next_reading(patient: Patient, safety_officer: User) -> None:
    assert _ingest(patient, 172, 100, 30) == []  # below the default crisis threshold (180), and cached now
    assert _ingest(patient, 171, 100, 25) == []  # served from the cache
    approval_policy_revise(actor=safety_officer, changes={"crisis_sbp": 170}, password=PASSWORD, reason="Local rule")
    assert _ingest(patient, 172, 100, 20) == [AlertKind.HYPERTENSIVE_CRISIS]


def test_a_version_this_process_never_heard_of_applies_at_once(patient: Patient) -> None:
    """Another process's publish: only the database knows of it, which is all the cache asks."""
    assert _ingest(patient, 172, 100, 30) == []
    current = approval_policy_current()
    ApprovalPolicy.objects.create(version=current.version + 1, crisis_sbp=170, created_at=timezone.now())
    assert _ingest(patient, 172, 100, 20) == [AlertKind.HYPERTENSIVE_CRISIS]


@pytest.mark.django_db(transaction=True)
def test_a_version_committed_on_another_connection_applies_to_the_next_reading(patient: Patient) -> None:
    assert _ingest(patient, 172, 100, 30) == []
    version = approval_policy_current().version

    def publish() -> None:  # a thread has its own connection: another worker, as far as the database can tell
        try:
            ApprovalPolicy.objects.create(version=version + 1, crisis_sbp=170, created_at=timezone.now())
        finally:
            connection.close()

    worker = threading.Thread(target=publish)
    worker.start()
    worker.join()
    assert _ingest(patient, 172, 100, 20) == [AlertKind.HYPERTENSIVE_CRISIS]
    assert Alert.objects.filter(patient=patient, kind=AlertKind.HYPERTENSIVE_CRISIS).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no row version; policy rows are immutable")
def test_even_an_edit_in_place_is_not_served_stale(patient: Patient) -> None:
    """Never done (a change is a new version), but a restore or a hand edit must not leave the old values in
    force: the marker is the row's version (xmin), which any write changes."""
    assert _ingest(patient, 172, 100, 30) == []
    ApprovalPolicy.objects.filter(pk=approval_policy_current().pk).update(crisis_sbp=170)
    assert _ingest(patient, 172, 100, 20) == [AlertKind.HYPERTENSIVE_CRISIS]


def test_a_version_rolled_back_is_not_kept(db: None) -> None:
    first = approval_policy_current()
    with pytest.raises(RuntimeError), transaction.atomic():
        ApprovalPolicy.objects.create(version=first.version + 1, crisis_sbp=170, created_at=timezone.now())
        assert approval_policy_current().crisis_sbp == 170  # the transaction sees its own version, and caches it
        raise RuntimeError
    again = approval_policy_current()
    assert (again.pk, again.crisis_sbp) == (first.pk, first.crisis_sbp)


def test_a_caller_changing_its_policy_changes_no_one_elses(db: None) -> None:
    policy = approval_policy_current()
    policy.crisis_sbp = 250
    assert approval_policy_current().crisis_sbp == 180


def test_the_cached_policy_costs_one_small_query(db: None, django_assert_num_queries: Any) -> None:
    approval_policy_current()
    with django_assert_num_queries(1):  # the newest row's marker
        approval_policy_current()
    ApprovalPolicy.objects.create(version=approval_policy_current().version + 1, created_at=timezone.now())
    with django_assert_num_queries(2):  # the marker differs: the row is read again
        assert approval_policy_current().version == 2
