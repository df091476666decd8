"""Thin Celery tasks for deployment monitoring (STYLE.md). Both are safe to run twice."""

from __future__ import annotations

from celery import shared_task

from clinaiops.core.errors import ValidationFailed
from inference.monitoring import services


@shared_task(acks_late=True, name="inference.monitoring.tasks.drift_report_compute")
def drift_report_compute_task() -> int | None:
    """Daily (Celery beat): the drift report, then a circuit-breaker check, so a canary whose patients had
    safety events since the last clinician decision is still judged at least once a day."""
    try:
        report = services.drift_report_compute()
    except ValidationFailed:  # nothing serves production yet: nothing to compare
        report = None
    services.canary_breaker_check()
    return report.pk if report else None


@shared_task(acks_late=True, name="inference.monitoring.tasks.canary_breaker_check")
def canary_breaker_check_task() -> int | None:
    event = services.canary_breaker_check()
    return event.pk if event else None
