"""Training runs are never stranded (issue 8 §5): a run whose worker died, or whose message never reached a worker,
is requeued by the sweeper and trains once, or is failed with the reason; `train --async` with the broker down
fails cleanly. tests/faults/ does the same with a real worker killed with SIGKILL and a real broker stopped."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from kombu import pools as kombu_pools

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from inference.models import ModelVersion, RunStatus, TrainingRun
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create, training_runs_sweep
from tests.conftest import _synthetic_labels, audit_actions
from tests.inference.training_cache import FittedModelCache


@pytest.fixture
def queued_run(patient: Patient, ml_engineer: User, fit_once_per_session: FittedModelCache) -> TrainingRun:
    _synthetic_labels(patient)
    return training_run_create(actor=ml_engineer, snapshot=dataset_snapshot_create(actor=ml_engineer), seed=11)


def _worker_died_while_training(run: TrainingRun) -> None:
    """What a worker killed mid-fit leaves behind: the run claimed exactly as training_run_execute claims it, and
    nothing after (no heartbeat since, no result)."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, progress=20, message="fitting"
    )
    assert claimed == 1


def _after(seconds: int) -> Any:
    return timezone.now() + timedelta(seconds=seconds + 1)


def test_a_run_whose_worker_died_is_requeued_and_then_trains_once(
    queued_run: TrainingRun, django_capture_on_commit_callbacks: Any
) -> None:
    _worker_died_while_training(queued_run)
    # Within the threshold the run may just be slow: left alone.
    assert training_runs_sweep(now=timezone.now()).requeued == ()

    with django_capture_on_commit_callbacks(execute=True):  # the requeue sends the task (eager here)
        sweep = training_runs_sweep(now=_after(settings.TRAINING_STALE_SECONDS))
    assert sweep.requeued == (queued_run.pk,)
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.requeue_count) == (RunStatus.SUCCEEDED, 1)
    assert ModelVersion.objects.filter(sha256=run.model_sha256).count() == 1
    actions = audit_actions(object_type="training_run", object_id=str(run.pk))
    assert actions == ["training.started", "training.requeued", "training.finished"]

    # A second sweep, or a redelivered message, finds nothing to do.
    assert training_runs_sweep(now=_after(settings.TRAINING_STALE_SECONDS)) == training_runs_sweep(now=_after(0))
    assert training_runs_sweep(now=_after(10 * settings.TRAINING_QUEUED_STALE_SECONDS)).requeued == ()


def test_a_queued_run_nobody_took_is_requeued_then_failed_with_the_reason_after_the_last_requeue(
    queued_run: TrainingRun,
) -> None:
    # The message was lost (the on_commit callbacks of this test never run: nothing is sent).
    later = timezone.now()
    for attempt in range(1, settings.TRAINING_MAX_REQUEUES + 1):
        later += timedelta(seconds=settings.TRAINING_QUEUED_STALE_SECONDS + 1)
        assert training_runs_sweep(now=later).requeued == (queued_run.pk,)
        run = TrainingRun.objects.get(pk=queued_run.pk)
        assert (run.status, run.requeue_count) == (RunStatus.QUEUED, attempt)
        assert training_runs_sweep(now=later).requeued == ()  # the requeue counts as a sign of life

    later += timedelta(seconds=settings.TRAINING_QUEUED_STALE_SECONDS + 1)
    sweep = training_runs_sweep(now=later)
    assert (sweep.requeued, sweep.failed) == ((), (queued_run.pk,))
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == RunStatus.FAILED
    assert f"failed after {settings.TRAINING_MAX_REQUEUES} requeues: no worker took it" in run.message
    actions = audit_actions(object_type="training_run", object_id=str(run.pk))
    assert actions == ["training.started"] + ["training.requeued"] * settings.TRAINING_MAX_REQUEUES + [
        "training.finished"
    ]


def test_a_running_run_that_keeps_beating_is_left_alone(queued_run: TrainingRun) -> None:
    _worker_died_while_training(queued_run)
    beat = timezone.now() + timedelta(seconds=settings.TRAINING_STALE_SECONDS)
    TrainingRun.objects.filter(pk=queued_run.pk).update(heartbeat_at=beat)  # as the heartbeat thread does
    assert training_runs_sweep(now=beat + timedelta(seconds=settings.TRAINING_STALE_SECONDS - 5)).requeued == ()
    assert TrainingRun.objects.get(pk=queued_run.pk).status == RunStatus.RUNNING


def test_training_beats_while_it_runs(queued_run: TrainingRun) -> None:
    from inference.services.training import training_run_execute

    before = timezone.now()
    run = training_run_execute(run_id=queued_run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.heartbeat_at is not None and run.heartbeat_at >= before


@pytest.mark.django_db(transaction=True)
def test_a_long_step_keeps_beating_from_the_heartbeat_thread(queued_run: TrainingRun, settings: Any) -> None:
    # Committed rows (transaction=True), as in a worker: the heartbeat thread's own connection sees the claim.
    from inference.services.training import training_run_execute

    settings.TRAINING_HEARTBEAT_SECONDS = 1
    seen: list[Any] = []

    def slow_fit_step(pct: int, msg: str) -> None:
        if pct == 20:  # the fit: a long step that reports nothing until it ends
            seen.append(TrainingRun.objects.get(pk=queued_run.pk).heartbeat_at)
            time.sleep(2.5)
            seen.append(TrainingRun.objects.get(pk=queued_run.pk).heartbeat_at)

    run = training_run_execute(run_id=queued_run.pk, progress=slow_fit_step)
    assert run.status == RunStatus.SUCCEEDED
    assert seen[1] > seen[0], "no heartbeat during the long step"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The project's Celery app sending for real to a broker address where nothing listens."""
    from clinaiops.celery import app as project_app

    app: Any = project_app
    keys = ("broker_url", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}

    def reset() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
        kombu_pools.reset()

    app.conf.update(broker_url=f"amqp://guest:guest@127.0.0.1:{_closed_port()}//", task_always_eager=False)
    reset()
    try:
        yield
    finally:
        reset()
        app.conf.update(saved)


def test_train_async_with_the_broker_down_fails_in_one_line_and_leaves_no_queued_run(
    patient: Patient, ml_engineer: User, broker_down: None
) -> None:
    _synthetic_labels(patient)
    with pytest.raises(CommandError) as refused:
        call_command("train", "--async", actor=ml_engineer.username, stdout=StringIO(), stderr=StringIO())
    message = str(refused.value)
    assert "\n" not in message
    assert "task queue (Celery broker) is unreachable" in message
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.message.startswith("not started: the task queue (Celery broker) was unreachable")
    assert not TrainingRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()
    assert audit_actions(object_type="training_run", object_id=str(run.pk)) == [
        "training.started",
        "training.finished",
    ]
