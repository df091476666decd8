"""Signals the care services send so that the Celery tasks they trigger are not imported by them."""

from django.dispatch import Signal

# Sent after commit with `notification_ids`: clinaiops.care.tasks enqueues their delivery on the NOTIFIERS channels.
notifications_created = Signal()
