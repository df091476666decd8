"""Thin Celery tasks for model lifecycle (STYLE.md): fetch by id, call the service. Safe to run twice: only a
queued run starts; re-verifying a model only reads. The worker signals at the end keep a worker from serving a
model it has not verified itself (docs/security.md, "The served model")."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.db import connections

from clinaiops.core.task_retry import durable_task
from inference.monitoring.services.integrity import model_trust_sweep
from inference.runtime import runtime_cache_clear
from inference.services.training import training_run_execute, training_runs_sweep


@durable_task(name="inference.tasks.training_run_execute")
def training_run_execute_task(run_id: int) -> str:
    return training_run_execute(run_id=run_id).status


@durable_task(name="inference.tasks.training_runs_sweep")
def training_runs_sweep_task() -> dict[str, list[int]]:
    """Every few minutes (beat): requeue stranded training runs, or fail them with the reason (issue 8 §5)."""
    sweep = training_runs_sweep()
    return {"requeued": list(sweep.requeued), "failed": list(sweep.failed)}


# --- The served model is the signed one (issue 8 §2, docs/security.md "The served model") ---
logger = logging.getLogger(__name__)


@shared_task(acks_late=True, name="inference.tasks.model_reverify")
def model_reverify_task() -> dict[str, Any]:
    """Celery beat, every MODEL_REVERIFY_SECONDS: re-verify the serving versions and this worker's cache."""
    sweep = model_trust_sweep()
    return {"verified": sweep.verified, "refused": list(sweep.refused)}


@worker_process_init.connect
def _model_cache_fresh_in_child(**_: Any) -> None:
    """A forked pool process starts with no verified model: it verifies each one in full at first use."""
    runtime_cache_clear()


@worker_ready.connect
def _model_reverify_on_worker_start(**_: Any) -> None:
    """Each worker re-verifies the serving versions as it starts, opening the integrity alert for a bad one.
    A failure here (the database still down) never stops the worker: the beat entry runs the same check."""
    try:
        model_trust_sweep()
    except Exception:  # a start-up check must not keep the worker from serving
        logger.exception("model re-verification at worker start failed; the beat schedule will retry it")
    finally:
        # Pool processes forked later must not share the parent's connection (none is open in a transaction
        # here in a worker; a caller that holds one keeps it).
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()


def training_run_queued_enqueue(sender: object, *, run_id: int, **kwargs: object) -> None:
    """Receiver of inference.signals.training_run_queued (connected in InferenceConfig.ready)."""
    training_run_execute_task.delay(run_id)
