from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from governance.change_control import change_control_plan_declare
from governance.management.signing import PASSWORD_SOURCES, password_argument_add, password_reentered
from inference.features import FEATURE_SET_VERSION
from inference.management.lifecycle import command_error, user_from_argument
from inference.models import ModelFamily


class Command(BaseCommand):
    help = (
        "Declare and e-sign the titration model's change-control plan (a clinical safety officer): what a retrain "
        "may change without a full review. Each call adds a new version; the gates use the newest. The password "
        f"is re-entered: {PASSWORD_SOURCES}; never on the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--actor", required=True, help="username of the clinical safety officer")
        password_argument_add(parser)
        parser.add_argument(
            "--family", action="append", choices=ModelFamily.values, dest="families", help="allowed family (repeat)"
        )
        parser.add_argument(
            "--feature-set",
            action="append",
            dest="feature_sets",
            help=f"allowed feature set (default {FEATURE_SET_VERSION})",
        )
        parser.add_argument("--floor", type=float, required=True, help="minimum balanced accuracy")
        parser.add_argument("--ceiling", type=float, required=True, help="maximum equalized-odds difference")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"])
        password = password_reentered(options["password_file"], actor.username)
        try:
            plan = change_control_plan_declare(
                actor=actor,
                password=password,
                allowed_families=options["families"] or [ModelFamily.LOGISTIC],
                allowed_feature_set_versions=options["feature_sets"] or [FEATURE_SET_VERSION],
                performance_floor=options["floor"],
                fairness_ceiling=options["ceiling"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(self.style.SUCCESS(f"declared {plan}, e-signed by {actor.signature_name}"))
