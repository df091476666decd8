"""Thin Celery tasks of clinical records: fetch by id, call a service (STYLE.md)."""

from __future__ import annotations

from clinaiops.care.notifications import notifications_deliver
from clinaiops.core.task_retry import durable_task


@durable_task(name="clinaiops.care.tasks.notifications_deliver")
def notifications_deliver_task(notification_ids: list[int]) -> int:
    """Send notifications on the NOTIFIERS channels. Safe to run twice: a channel already reached is skipped."""
    return notifications_deliver(notification_ids=notification_ids)


def notifications_created_receiver(sender: object, notification_ids: list[int], **kwargs: object) -> None:
    """Receiver of clinaiops.care.signals.notifications_created (connected in CareConfig.ready)."""
    notifications_deliver_task.delay(notification_ids)
