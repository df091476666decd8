"""Signals the ledger sends so that what it triggers (a Celery task) is not imported by the services."""

from django.dispatch import Signal

# Sent after the commit of every AUDIT_CHECKPOINT_EVERY-th event, with `seq`; clinaiops.audit.tasks enqueues
# the checkpoint task in answer.
checkpoint_due = Signal()
