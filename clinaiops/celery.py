"""The Celery application. Tasks are thin: fetch by id, call a service (STYLE.md).

Tasks go to one queue per kind of work (settings ``CELERY_TASK_ROUTES``, issue 13): ``evaluation``, ``training``,
``exports``, ``monitoring``, ``audit`` and ``default``. Production runs a worker pool per queue, e.g.
``celery -A clinaiops worker -Q evaluation --concurrency 4``, so a training run never delays an evaluation. One
worker for everything consumes them all: ``-Q evaluation,training,exports,monitoring,audit,default``
(`worker_queues`, with TASK_QUEUE_PREFIX when it is set).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinaiops.settings.base")

app = Celery("clinaiops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def worker_queues() -> list[str]:
    """Every queue a task can be routed to, with TASK_QUEUE_PREFIX: what a worker that does all kinds of work
    consumes (``-Q``)."""
    from django.conf import settings

    return [f"{settings.TASK_QUEUE_PREFIX}{kind}" for kind in settings.TASK_QUEUE_KINDS]
