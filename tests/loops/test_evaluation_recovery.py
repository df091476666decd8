"""Evaluations survive a database blip and a lost message (issue 8 §5).

A dropped database connection used to fail the evaluation task and ack it, and the patient waited up to an hour
for the next schedule. Tasks now retry with backoff on transient database errors (clinaiops.core.task_retry), and
the evaluations sweep enqueues again every due evaluation that got no answer. tests/faults/ repeats this with a
real worker killed with SIGKILL and a real broker stopped."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from clinaiops.care.models import Patient
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation_sweep import evaluations_enqueued_mark, evaluations_unanswered
from clinaiops.loops.tasks import evaluation_run_task, evaluations_sweep
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add

READINGS = [(150, 92), (148, 90), (152, 94), (149, 91), (151, 93), (147, 90), (150, 92)]


def _backend_pid() -> int:
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def _terminate(pid: int) -> None:
    """Drop one server session from outside, as a PostgreSQL restart or a failover does to every session."""
    params = connection.get_connection_params()
    dsn = {key: value for key, value in params.items() if key in {"host", "port", "user", "password", "dbname"}}
    with psycopg.connect(**dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_whose_database_connection_dropped_is_retried_not_lost(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("drops a PostgreSQL session with pg_terminate_backend")
    readings_add(patient, READINGS)
    dropped = _backend_pid()
    _terminate(dropped)

    # throw=False: the suite's eager mode propagates errors, which would raise Celery's Retry instead of retrying;
    # a worker sends the retry as a new message with a backoff countdown, an eager retry runs at once.
    result = evaluation_run_task.apply(args=[patient.pk], throw=False)

    # The first attempt met the dead session (OperationalError); the retry opened a fresh one and evaluated.
    assert result.successful(), result.traceback
    rec = Recommendation.objects.get(patient=patient)
    assert result.result == rec.pk
    assert _backend_pid() != dropped
    assert audit_actions(action="recommendation.created") == ["recommendation.created"]


def test_the_sweep_enqueues_a_due_evaluation_that_was_never_answered(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    readings_add(patient, READINGS)
    # The hourly schedule's message for this patient was lost: nothing was marked, nothing was evaluated.
    assert evaluations_unanswered(as_of=_now()) == [patient.pk]

    assert evaluations_sweep.delay().get() == 1  # eager here: the evaluation runs at once
    assert Recommendation.objects.filter(patient=patient).count() == 1
    # Answered, and no longer due: the next sweeps leave it alone.
    assert evaluations_sweep.delay().get() == 0
    assert Recommendation.objects.filter(patient=patient).count() == 1


def test_the_sweep_leaves_a_recently_enqueued_evaluation_to_its_message_until_the_grace_period_ends(
    patient: Patient, deployed_model: ModelVersion, settings: Any
) -> None:
    readings_add(patient, READINGS)
    settings.EVALUATION_SWEEP_GRACE_SECONDS = 1
    evaluations_enqueued_mark([patient.pk])  # the schedule sent it a moment ago; a worker has not taken it yet
    assert evaluations_unanswered(as_of=_now()) == []
    time.sleep(1.2)
    assert evaluations_unanswered(as_of=_now()) == [patient.pk]


def test_a_recorded_skip_is_an_answer_the_sweep_does_not_repeat(patient: Patient, deployed_model: ModelVersion) -> None:
    # No readings: the evaluation is skipped (and audited); the sweep must not re-ask every few minutes.
    assert evaluations_sweep.delay().get() == 1
    assert audit_actions(action="evaluation.skipped") == ["evaluation.skipped"]
    assert evaluations_sweep.delay().get() == 0
    assert audit_actions(action="evaluation.skipped") == ["evaluation.skipped"]


def test_beat_runs_every_sweeper_every_few_minutes() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    by_task = {entry["task"]: float(entry["schedule"]) for entry in schedule.values()}
    for task in (
        "clinaiops.loops.tasks.evaluations_sweep",
        "inference.tasks.training_runs_sweep",
        "compliance.tasks.exports_sweep",
        "clinaiops.audit.tasks.audit_checkpoint_create",  # its default reason is "scheduled": a missed one is made
    ):
        assert task in by_task, task
        assert by_task[task] <= 600, task


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()
