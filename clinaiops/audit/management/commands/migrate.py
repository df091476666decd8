"""`migrate`, run as the owner role when MIGRATION_DATABASE_URL is set (docs/security.md "Database roles").

The app's DATABASE_URL names the runtime role, which may not create or alter anything; the deploy job sets
MIGRATION_DATABASE_URL to the owner role of the same database, and this command switches the connection to it
for the migration alone. Without it, Django's own migrate runs unchanged (the demo, the tests).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created

from clinaiops.audit.roles import RolesRefused, database_connection_as


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Connects as the owner role of MIGRATION_DATABASE_URL when it is set."

    def handle(self, *args: Any, **options: Any) -> None:
        # The request-time limits (docs/operations.md "Database outages") are for requests, not for a migration
        # that may run one long statement (an index on a big table): lifted for this command's connections only.
        alias = options["database"]
        saved = settings.DATABASE_CLIENT_TIMEOUT_SECONDS
        settings.DATABASE_CLIENT_TIMEOUT_SECONDS = 0
        connection_created.connect(_statement_timeout_lift, weak=False, dispatch_uid="migrate-statement-timeout")
        connections[alias].close()
        try:
            self._migrate(*args, **options)
        finally:
            connection_created.disconnect(dispatch_uid="migrate-statement-timeout")
            settings.DATABASE_CLIENT_TIMEOUT_SECONDS = saved
            connections[alias].close()  # the next connection gets the limits again

    def _migrate(self, *args: Any, **options: Any) -> None:
        url = settings.MIGRATION_DATABASE_URL
        if not url or options["database"] != DEFAULT_DB_ALIAS:
            super().handle(*args, **options)
            return
        try:
            with database_connection_as(url, options["database"]) as role:
                if options["verbosity"] >= 1:
                    self.stdout.write(f"Migrating as the owner role {role or '(from MIGRATION_DATABASE_URL)'}")
                super().handle(*args, **options)
        except RolesRefused as exc:
            raise CommandError(str(exc)) from exc


def _statement_timeout_lift(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
