from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "clinaiops.ops"
    label = "ops"
    verbose_name = "Operability"

    def ready(self) -> None:
        # Counting hooks: Celery task signals and post-save counters. Connected here so that web processes and
        # Celery workers (which run django.setup()) both get them.
        from clinaiops.ops import hooks

        hooks.connect()
