from __future__ import annotations

from celery import shared_task

from inference.services import training_run_execute


@shared_task(acks_late=True, name="inference.tasks.training_run_execute")
def training_run_execute_task(run_id: int) -> str:
    return training_run_execute(run_id=run_id).status
