"""Signals the model-lifecycle services send so that the Celery tasks they trigger are not imported by them."""

from django.dispatch import Signal

# Sent to start a queued training run, with `run_id`; inference.tasks enqueues training_run_execute_task in answer.
training_run_queued = Signal()
