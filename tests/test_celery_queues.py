"""Celery queues per kind of work (issue 13): where each task goes, and that eager mode does not care."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from clinaiops.celery import app, worker_queues

REPO_ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {
    "clinaiops.loops.tasks.evaluation_run": "evaluation",
    "inference.tasks.training_run_execute": "training",
    "compliance.tasks.export_run": "exports",
    "inference.monitoring.tasks.drift_report_compute": "monitoring",
    "inference.monitoring.tasks.canary_breaker_check": "monitoring",
    "inference.tasks.model_reverify": "monitoring",
    "clinaiops.audit.tasks.audit_checkpoint_create": "audit",
    # Beat's dispatchers, sweepers and purges: light, and not stuck behind the pool they feed.
    "clinaiops.loops.tasks.evaluations_schedule": "default",
    "clinaiops.loops.tasks.evaluations_sweep": "default",
    "clinaiops.loops.tasks.alerts_escalate": "default",
    "inference.tasks.training_runs_sweep": "default",
    "compliance.tasks.exports_sweep": "default",
    "clinaiops.api.tasks.tokens_expired_purge": "default",
    "clinaiops.api.tasks.idempotency_keys_purge": "default",
}


@pytest.fixture(autouse=True)
def _tasks_discovered() -> None:
    app.loader.import_default_modules()  # what a worker does at start: every app's tasks module


def _queue_of(task_name: str) -> str:
    return str(app.amqp.router.route({}, task_name)["queue"].name)


@pytest.mark.parametrize(("task_name", "queue"), sorted(EXPECTED.items()))
def test_each_kind_of_work_has_its_own_queue(task_name: str, queue: str) -> None:
    assert task_name in app.tasks
    assert _queue_of(task_name) == queue


def test_every_project_task_lands_on_a_queue_a_full_worker_consumes() -> None:
    ours = [name for name in app.tasks if name.split(".")[0] in {"clinaiops", "inference", "compliance"}]
    assert set(EXPECTED) <= set(ours)
    assert {_queue_of(name) for name in ours} <= set(worker_queues())
    assert worker_queues() == ["evaluation", "training", "exports", "monitoring", "audit", "default"]


def test_a_training_run_and_an_evaluation_never_share_a_queue() -> None:
    evaluation = _queue_of("clinaiops.loops.tasks.evaluation_run")
    busy = {_queue_of(name) for name in ("inference.tasks.training_run_execute", "compliance.tasks.export_run")}
    busy |= {_queue_of("inference.monitoring.tasks.drift_report_compute")}
    assert evaluation not in busy


def test_eager_mode_runs_tasks_in_process_whatever_their_queue(db: None) -> None:
    assert settings.CELERY_TASK_ALWAYS_EAGER
    from clinaiops.loops.tasks import evaluation_run_task

    result = evaluation_run_task.delay(999_999_999)  # no such patient: the task answers None, in this process
    assert result.successful()
    assert result.get() is None


def test_queue_prefix_namespaces_every_queue_and_the_default() -> None:
    code = (
        "import django; django.setup(); from clinaiops.celery import app, worker_queues; "
        "print(','.join(worker_queues())); print(app.conf.task_default_queue); "
        "print(app.amqp.router.route({}, 'clinaiops.loops.tasks.evaluation_run')['queue'].name)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test", "TASK_QUEUE_PREFIX": "staging-"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    queues, default, evaluation = done.stdout.split()
    assert queues.split(",") == [f"staging-{kind}" for kind in settings.TASK_QUEUE_KINDS]
    assert default == "staging-default"
    assert evaluation == "staging-evaluation"
