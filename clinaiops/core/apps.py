from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.management import call_command


def cache_tables_create(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """After every migrate: the table of each database cache (the shared cache of the demo and the tests, used by
    the sign-in throttle), so that `make demo` and a fresh test database need no `createcachetable` step. It runs
    as whoever migrates (the owner role in production), whose default privileges grant the runtime role its use.
    `createcachetable` skips tables that exist."""
    if any(cache["BACKEND"].endswith("DatabaseCache") for cache in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    name = "clinaiops.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Imported in ready(): these modules import models, which exist only once the app registry is loaded.
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from clinaiops.core.db_outage import db_outage_connect
        from clinaiops.core.middleware import session_limits_start

        user_logged_in.connect(session_limits_start, dispatch_uid="clinaiops.core.session_limits_start")
        post_migrate.connect(cache_tables_create, sender=self, dispatch_uid="clinaiops.core.cache_tables_create")
        db_outage_connect()  # 503 on a database outage, client-side time limit (issue 8 §5)
