from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import Role, User
from inference.models import Arm
from inference.selectors import model_version_list
from inference.services import model_version_find, serving_pointer_set


class Command(BaseCommand):
    help = "Point a deployment arm (production by default) at a validated model version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="model hash or a unique prefix (≥6 chars), or 'latest'")
        parser.add_argument("--arm", default=Arm.PRODUCTION, choices=Arm.values)
        parser.add_argument("--actor", required=True, help="username of the ML engineer promoting it")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.filter(username=options["actor"]).first()
        if actor is None or actor.role != Role.ML_ENGINEER:
            raise CommandError(f"{options['actor']!r} is not an ML engineer account")
        try:
            if options["version"] == "latest":
                version = model_version_list().first()
                if version is None:
                    raise CommandError("there is no model version yet; run `manage.py train` first")
            else:
                version = model_version_find(options["version"])
            serving_pointer_set(arm=options["arm"], version=version, actor=actor, reason="promote_command")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"{options['arm']} now serves {version.sha256}"))
