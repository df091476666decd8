from __future__ import annotations

from clinaiops.audit.services import audit_checkpoint_create, audit_witness_catch_up
from clinaiops.core.task_retry import durable_task


@durable_task(name="clinaiops.audit.tasks.audit_checkpoint_create")
def audit_checkpoint_create_task(reason: str = "scheduled") -> int | None:
    """Sign a checkpoint over the head: after the commit of every AUDIT_CHECKPOINT_EVERY-th event ("periodic")
    and by beat every AUDIT_CHECKPOINT_INTERVAL_SECONDS ("scheduled"), which also republishes to the witness any
    checkpoint a crash or a sink outage kept from it. Safe to run twice: the head already signed is not signed
    again."""
    checkpoint = audit_checkpoint_create(reason=reason)
    if reason == "scheduled":
        audit_witness_catch_up()
    return checkpoint.seq if checkpoint else None


def checkpoint_due_enqueue(sender: object, *, seq: int, **kwargs: object) -> None:
    """Receiver of clinaiops.audit.signals.checkpoint_due (connected in AuditConfig.ready)."""
    audit_checkpoint_create_task.delay("periodic")
