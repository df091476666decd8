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
from django.db import DEFAULT_DB_ALIAS

from clinaiops.audit.roles import RolesRefused, database_connection_as


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Connects as the owner role of MIGRATION_DATABASE_URL when it is set."

    def handle(self, *args: Any, **options: Any) -> None:
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
