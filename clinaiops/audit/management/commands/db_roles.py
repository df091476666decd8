from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.audit.roles import RolesRefused, database_roles_ensure, runtime_role_status


class Command(BaseCommand):
    help = (
        "Create or repair the PostgreSQL owner role (owns the schema, runs migrations) and runtime role (owns "
        "nothing; SELECT on the ledger, appends only through audit_append()) on the database DATABASE_URL names. "
        "Run it as a superuser, before the first migrate and again after adopting an existing database. "
        "Idempotent: prints what it changed. Passwords, if any, come from DB_OWNER_PASSWORD and DB_RUNTIME_PASSWORD "
        "(never the command line) and are sent as SCRAM verifiers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="the owner role, e.g. clinaiops_owner")
        parser.add_argument("--runtime", required=True, help="the runtime role, e.g. clinaiops_app")

    def handle(self, *args: Any, **options: Any) -> None:
        owner, runtime = options["owner"], options["runtime"]
        try:
            done = database_roles_ensure(
                owner=owner,
                runtime=runtime,
                owner_password=os.environ.get("DB_OWNER_PASSWORD") or None,
                runtime_password=os.environ.get("DB_RUNTIME_PASSWORD") or None,
            )
        except RolesRefused as exc:
            raise CommandError(f"db_roles refused: {exc}") from exc
        for sentence in done:
            self.stdout.write(f"- {sentence}")
        status = runtime_role_status(runtime=runtime, owner=owner)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(done)} changes. {runtime}: owns {status.owned_objects} objects, ledger privileges "
                f"{', '.join(status.ledger_privileges) or 'none'}, appends through audit_append(): "
                f"{'yes' if status.can_append else 'not yet (migrate first)'}."
            )
        )
