"""Signals the export services send so that the Celery tasks they trigger are not imported by them."""

from django.dispatch import Signal

# Sent after the commit of an export request, with `export_id`; compliance.tasks enqueues the run in answer.
export_requested = Signal()
