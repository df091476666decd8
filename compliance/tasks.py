"""Thin Celery tasks: fetch by id, call a service. Safe to run twice (export_run claims with a conditional update)."""

from __future__ import annotations

from clinaiops.core.task_retry import durable_task
from compliance.services import export_run, exports_sweep


@durable_task(name="compliance.tasks.export_run")
def export_run_task(export_id: int) -> str:
    return export_run(export_id=export_id).status


@durable_task(name="compliance.tasks.exports_sweep")
def exports_sweep_task() -> int:
    return exports_sweep()


def export_requested_enqueue(sender: object, *, export_id: int, **kwargs: object) -> None:
    """Receiver of compliance.signals.export_requested (connected in ComplianceConfig.ready)."""
    export_run_task.delay(export_id)
