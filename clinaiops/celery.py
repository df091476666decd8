"""The Celery application. Tasks are thin: fetch by id, call a service (STYLE.md)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinaiops.settings.base")

app = Celery("clinaiops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
