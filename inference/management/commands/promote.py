from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from inference.management.lifecycle import (
    VERSION_HELP,
    command_error,
    user_from_argument,
    version_from_argument,
)
from inference.models import Arm
from inference.services.serving import model_version_promote


class Command(BaseCommand):
    help = (
        "Point a deployment arm at a model version. Production and canary take only approved versions (two "
        "sign-offs: `manage.py signoff`); shadow also takes validated ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)
        parser.add_argument("--arm", default=Arm.PRODUCTION, choices=Arm.values)
        parser.add_argument("--actor", required=True, help="username of the ML engineer promoting it")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"])
        version = version_from_argument(options["version"])
        try:
            model_version_promote(version=version, arm=options["arm"], actor=actor)
        except ApplicationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(self.style.SUCCESS(f"{options['arm']} now serves {version.sha256}"))
