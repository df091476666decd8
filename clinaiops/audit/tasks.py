from __future__ import annotations

from celery import shared_task

from clinaiops.audit.services import audit_checkpoint_create


@shared_task(acks_late=True, name="clinaiops.audit.tasks.audit_checkpoint_create")
def audit_checkpoint_create_task() -> int | None:
    checkpoint = audit_checkpoint_create(reason="scheduled")
    return checkpoint.seq if checkpoint else None
