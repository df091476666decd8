"""The feature window is read in one query on the hot path (issue 13): the dose counts and the last regimen change ride
on the reading rows as scalar subqueries. What it reads must not change: only what lies inside the window counts,
and a window without readings still has its doses and its last change (a second query then)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.care.services import dose_log_store, regimen_change
from inference.feature_source import feature_window_load
from inference.features import WINDOW_DAYS
from tests.conftest import readings_add


def _history(patient: Patient) -> None:
    """The patient logs 10 doses in the window (7 taken) and one long before it; the clinician changed the step
    20 days ago and again 3 days ago."""
    today = timezone.localdate()
    for days_ago in range(10):
        dose_log_store(patient=patient, day=today - timedelta(days=days_ago), taken=days_ago >= 3)
    dose_log_store(patient=patient, day=today - timedelta(days=WINDOW_DAYS + 5), taken=True)
    now = timezone.now()
    regimen_change(patient=patient, to_step=patient.current_step + 1, actor=None, cause="test:1",
                   at=now - timedelta(days=20), system_reason="seeding")  # fmt: skip
    patient.refresh_from_db()
    regimen_change(patient=patient, to_step=patient.current_step + 1, actor=None, cause="test:2",
                   at=now - timedelta(days=3), system_reason="seeding")  # fmt: skip
    patient.refresh_from_db()


def test_the_window_is_one_query_and_counts_only_what_lies_inside_it(
    patient: Patient, django_assert_num_queries: Any
) -> None:
    _history(patient)
    readings_add(patient, [(150, 92)] * 6)
    readings_add(patient, [(160, 95)] * 2, end=timezone.now() - timedelta(days=WINDOW_DAYS + 2))  # outside
    as_of = timezone.now()
    with django_assert_num_queries(1):
        window = feature_window_load(patient=patient, as_of=as_of)
    assert len(window.taken_at) == 6 and set(window.systolic) == {150.0}
    assert (window.doses_logged, window.doses_taken) == (10, 7)
    assert window.last_change_at is not None
    assert abs((window.last_change_at - (as_of - timedelta(days=3))).total_seconds()) < 60
    # As of a week ago, the newer change has not happened yet, and the last three doses were not logged.
    earlier = feature_window_load(patient=patient, as_of=as_of - timedelta(days=7))
    assert earlier.last_change_at is not None
    assert abs((earlier.last_change_at - (as_of - timedelta(days=20))).total_seconds()) < 60


def test_a_window_without_readings_still_has_its_doses_and_its_last_change(
    patient: Patient, django_assert_num_queries: Any
) -> None:
    _history(patient)
    with django_assert_num_queries(3):  # no reading row for them to ride on
        window = feature_window_load(patient=patient, as_of=timezone.now())
    assert len(window.taken_at) == 0
    assert (window.doses_logged, window.doses_taken) == (10, 7)
    assert window.last_change_at is not None


def test_a_patient_who_logged_nothing_counts_zero_not_null(patient: Patient) -> None:
    readings_add(patient, [(150, 92)] * 3)
    window = feature_window_load(patient=patient, as_of=timezone.now())
    assert (window.doses_logged, window.doses_taken, window.last_change_at) == (0, 0, None)
