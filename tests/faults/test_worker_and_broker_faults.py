"""Fault tests for the workers and the broker (issue 8 §5 and "Proof"): a private RabbitMQ node and real Celery
workers. A worker is killed with SIGKILL mid-evaluation and mid-training, and the broker is stopped while
`train --async` and the evaluation schedule enqueue. After a fresh worker and the sweepers, each scenario
reports what was lost, duplicated and left stranded: 0, 0 and 0.

The PostgreSQL restart and stall are tested beside this, by the database-outage tests.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from clinaiops.audit.models import AuditEvent
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation, Trigger
from clinaiops.loops.tasks import evaluations_schedule, evaluations_sweep
from inference.models import ModelVersion, RunStatus, TrainingRun
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create, training_run_enqueue, training_runs_sweep
from tests.conftest import _synthetic_labels, readings_add
from tests.e2e.conftest import REPO_ROOT
from tests.factories import PatientFactory
from tests.faults.conftest import RabbitNode, app_on_broker, report, wait_for, worker_env, worker_kill

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READINGS = [(150, 92), (148, 90), (152, 94), (149, 91), (151, 93), (147, 90), (150, 92)]
COHORT = 16


def _queue() -> str:
    return f"faults-{uuid.uuid4().hex[:12]}"


def _cohort(care_team: CareTeam, patient: Patient) -> list[int]:
    """The fixture patient and COHORT others, each with a week of readings: every one is due and evaluable."""
    patients = [patient] + [PatientFactory(care_team=care_team, current_step=2) for _ in range(COHORT)]
    for member in patients:
        readings_add(member, READINGS)
    return [member.pk for member in patients]


def _evaluation_outcome(patient_ids: list[int]) -> tuple[int, int]:
    """(lost, duplicated) over the cohort: a patient with no scheduled evaluation today is lost; a second
    recommendation, or a second "recommendation.created" event for one, is a duplicate."""
    today = timezone.now().date()
    per_patient = dict(
        Recommendation.objects.filter(patient_id__in=patient_ids, trigger=Trigger.SCHEDULED, evaluation_date=today)
        .values_list("patient_id")
        .annotate(n=Count("pk"))
        .values_list("patient_id", "n")
    )
    lost = sum(1 for patient_id in patient_ids if per_patient.get(patient_id, 0) == 0)
    duplicated = sum(n - 1 for n in per_patient.values() if n > 1)
    recs = Recommendation.objects.filter(patient_id__in=patient_ids).count()
    duplicated += AuditEvent.objects.filter(action="recommendation.created").count() - recs
    return lost, duplicated


def _evaluated(patient_ids: list[int]) -> bool:
    return _evaluation_outcome(patient_ids)[0] == 0


def test_kill_9_of_a_worker_during_evaluations_loses_and_duplicates_nothing(
    broker: RabbitNode, workers: Any, care_team: CareTeam, patient: Patient, deployed_model: ModelVersion
) -> None:
    cohort = _cohort(care_team, patient)
    queue = _queue()
    with app_on_broker(broker.url, queue):
        first = workers(broker_url=broker.url, queue=queue)
        assert evaluations_schedule() == len(cohort)
        # Kill as soon as the worker is under way: one evaluation in its hands, unacknowledged, the rest queued.
        wait_for(lambda: Recommendation.objects.exists(), "a first recommendation", worker=first)
        worker_kill(first)
        done_at_kill = len(cohort) - _evaluation_outcome(cohort)[0]
        assert done_at_kill < len(cohort), "the worker finished before it was killed: nothing was tested"

        # A fresh worker takes the redelivered message and the rest; the sweep finds nothing left unanswered.
        fresh = workers(broker_url=broker.url, queue=queue)
        wait_for(lambda: _evaluated(cohort), "every cohort patient evaluated", worker=fresh)
        evaluations_sweep()
        wait_for(lambda: broker.queue_depth(queue) == 0, "an empty queue", worker=fresh)

    lost, duplicated = _evaluation_outcome(cohort)
    stranded = broker.queue_depth(queue)
    line = report(f"kill -9 during evaluation ({done_at_kill}/{len(cohort)} done)", lost=lost,
                  duplicated=duplicated, stranded=stranded)  # fmt: skip
    assert (lost, duplicated, stranded) == (0, 0, 0), line
    assert ledger_verify().ok


def _training_outcome(run_id: int) -> tuple[int, int, int]:
    run = TrainingRun.objects.get(pk=run_id)
    lost = 0 if run.status == RunStatus.SUCCEEDED else 1
    finished = AuditEvent.objects.filter(action="training.finished", object_id=str(run_id)).count()
    versions = ModelVersion.objects.filter(sha256=run.model_sha256).count() if run.model_sha256 else 0
    duplicated = max(0, finished - 1) + max(0, versions - 1)
    stranded = TrainingRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count()
    return lost, duplicated, stranded


def test_kill_9_of_a_worker_during_training_is_requeued_by_the_sweeper_and_trains_once(
    broker: RabbitNode, workers: Any, patient: Patient, ml_engineer: User
) -> None:
    _synthetic_labels(patient)
    run = training_run_create(actor=ml_engineer, snapshot=dataset_snapshot_create(actor=ml_engineer), seed=5)
    queue = _queue()
    with app_on_broker(broker.url, queue):
        first = workers(broker_url=broker.url, queue=queue)
        training_run_enqueue(run_id=run.pk)
        wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists(), "the run running",
            worker=first,
        )  # fmt: skip
        worker_kill(first)
        killed = TrainingRun.objects.get(pk=run.pk)
        assert killed.status == RunStatus.RUNNING, "the run finished before the worker was killed"

        # The redelivered message finds the run "running" and leaves it (a live worker might hold it); only the
        # sweeper, once the heartbeat is stale, requeues it.
        fresh = workers(broker_url=broker.url, queue=queue)
        wait_for(lambda: broker.queue_depth(queue) == 0, "the redelivery consumed", worker=fresh)
        later = timezone.now() + timedelta(seconds=settings.TRAINING_STALE_SECONDS + 1)
        assert training_runs_sweep(now=later).requeued == (run.pk,)
        wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(), "the run trained",
            worker=fresh,
        )  # fmt: skip

    lost, duplicated, stranded = _training_outcome(run.pk)
    line = report("kill -9 during training", lost=lost, duplicated=duplicated, stranded=stranded)
    assert (lost, duplicated, stranded) == (0, 0, 0), line
    assert TrainingRun.objects.get(pk=run.pk).requeue_count == 1
    assert ledger_verify().ok


def _train_async(broker_url: str, actor: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "train", "--async", "--actor", actor],
        cwd=REPO_ROOT, env=worker_env(broker_url), capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_a_broker_stop_during_train_async_fails_cleanly_and_strands_nothing(
    broker: RabbitNode, workers: Any, patient: Patient, ml_engineer: User
) -> None:
    _synthetic_labels(patient)
    broker.stop()
    done = _train_async(broker.url, ml_engineer.username)

    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "task queue (Celery broker) is unreachable" in lines[0], done.stderr
    refused = TrainingRun.objects.get()
    assert refused.status == RunStatus.FAILED and "unreachable" in refused.message

    # The broker is back: a new run goes through, and nothing is left for the sweeper to find.
    broker.start()
    queue = _queue()
    with app_on_broker(broker.url, queue):
        fresh = workers(broker_url=broker.url, queue=queue)
        run = training_run_create(actor=ml_engineer, snapshot=refused.snapshot, seed=5)
        training_run_enqueue(run_id=run.pk)
        wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(), "the run trained",
            worker=fresh,
        )  # fmt: skip
    far = timezone.now() + timedelta(days=1)
    sweep = training_runs_sweep(now=far)
    lost, duplicated, stranded = _training_outcome(run.pk)
    stranded += len(sweep.requeued) + len(sweep.failed)
    line = report("broker stop during train --async", lost=lost, duplicated=duplicated, stranded=stranded)
    assert (lost, duplicated, stranded) == (0, 0, 0), line


def test_a_broker_stop_during_evaluation_enqueueing_loses_nothing_once_the_sweep_catches_up(
    broker: RabbitNode, workers: Any, care_team: CareTeam, patient: Patient, deployed_model: ModelVersion
) -> None:
    cohort = _cohort(care_team, patient)
    queue = _queue()
    with app_on_broker(broker.url, queue) as app:
        broker.stop()
        with pytest.raises(BrokerError):  # the hourly schedule meets the outage: its messages are not sent
            evaluations_schedule()
        assert not Recommendation.objects.exists()

        broker.start()
        app.reset_connections()
        fresh = workers(broker_url=broker.url, queue=queue)
        assert evaluations_sweep() == len(cohort)  # every due patient was left unanswered
        wait_for(lambda: _evaluated(cohort), "every cohort patient evaluated", worker=fresh)
        assert evaluations_sweep() == 0
        wait_for(lambda: broker.queue_depth(queue) == 0, "an empty queue", worker=fresh)

    lost, duplicated = _evaluation_outcome(cohort)
    stranded = broker.queue_depth(queue)
    line = report("broker stop during evaluation enqueueing", lost=lost, duplicated=duplicated, stranded=stranded)
    assert (lost, duplicated, stranded) == (0, 0, 0), line
    assert ledger_verify().ok
