from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from inference.management.lifecycle import command_error
from inference.services.training import training_run_register


class Command(BaseCommand):
    help = (
        "Show the model version a training run registered, running the run first if it is still queued. "
        "Training registers its model itself (gates, signed manifest, validated or rejected), so this is "
        "idempotent: for a finished run it only finds the version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", type=int, required=True, dest="run_id", help="training run id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            version = training_run_register(
                run_id=options["run_id"], progress=lambda pct, msg: self.stdout.write(f"  {pct:3d}% {msg}")
            )
        except ApplicationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(f"training run {options['run_id']} → model {version.sha256} ({version.approval_state})")
