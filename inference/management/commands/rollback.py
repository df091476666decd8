from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from inference.management.lifecycle import command_error, user_from_argument
from inference.models import Arm
from inference.services.serving import serving_rollback


class Command(BaseCommand):
    help = "Point a deployment arm back at the version that served before the current one, in one audited action."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--arm", required=True, choices=Arm.values)
        parser.add_argument("--actor", required=True, help="username of an ML engineer or clinical safety officer")
        parser.add_argument("--reason", required=True, help="why (kept with the pointer history; ≤200 characters)")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"])
        try:
            event = serving_rollback(arm=options["arm"], actor=actor, reason=options["reason"])
        except ApplicationError as exc:
            raise command_error(exc) from exc
        if event.model_version is None:
            self.stdout.write(
                self.style.WARNING(f"{options['arm']} now serves nothing (rules only: every proposal goes to review)")
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"{options['arm']} rolled back to {event.model_version.sha256}"))
