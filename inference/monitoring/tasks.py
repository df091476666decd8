"""Thin Celery tasks for deployment monitoring (STYLE.md). Both are safe to run twice, and retry with backoff on a
transient database error (clinaiops.core.task_retry)."""

from __future__ import annotations

from clinaiops.core.errors import ValidationFailed
from clinaiops.core.task_retry import durable_task
from inference.monitoring.services.canary import canary_breaker_check
from inference.monitoring.services.drift_reports import drift_report_compute


@durable_task(name="inference.monitoring.tasks.drift_report_compute")
def drift_report_compute_task() -> int | None:
    """Daily (Celery beat): the drift report, then a circuit-breaker check, so a canary whose patients had
    safety events since the last clinician decision is still judged at least once a day."""
    try:
        report = drift_report_compute()
    except ValidationFailed:  # nothing serves production yet: nothing to compare
        report = None
    canary_breaker_check()
    return report.pk if report else None


@durable_task(name="inference.monitoring.tasks.canary_breaker_check")
def canary_breaker_check_task() -> int | None:
    event = canary_breaker_check()
    return event.pk if event else None
