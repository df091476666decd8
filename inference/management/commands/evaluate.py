from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.gates.evaluation import model_version_gates_recompute
from inference.gates.result import StoredGateInvalid
from inference.management.lifecycle import LISTED, VERSION_HELP, gates_table, version_from_argument


class Command(BaseCommand):
    help = "Print a model version's gates with their numbers (as stored in its signed manifest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)
        parser.add_argument(
            "--recompute",
            action="store_true",
            help="also run the gates again against today's production model and change-control plan "
            "(printed only: a registered version's gates never change)",
        )
        parser.add_argument("--all", action="store_true", help="list every failure and finding, not the first few")

    def handle(self, *args: Any, **options: Any) -> None:
        version = version_from_argument(options["version"])
        listed = None if options["all"] else LISTED
        self.stdout.write(f"model {version.sha256} ({version.family}, {version.approval_state})")
        try:
            stored = version.gate_outcome
        except StoredGateInvalid as exc:
            raise CommandError(f"the stored gates of {version.short_hash} cannot be read: {exc}") from exc
        self.stdout.write("stored gates:")
        self.stdout.write("\n".join(gates_table(stored, listed=listed)))
        if options["recompute"]:
            outcome = model_version_gates_recompute(version)
            verdict = "would be validated" if outcome.validated else f"would fail: {', '.join(outcome.failed)}"
            self.stdout.write(f"recomputed now ({verdict}; not stored):")
            self.stdout.write("\n".join(gates_table(outcome, listed=listed)))
