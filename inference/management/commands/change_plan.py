from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from inference.features import FEATURE_SET_VERSION
from inference.management.commands._lifecycle import command_error, user_from_argument
from inference.models import ModelFamily
from inference.services import change_control_plan_create


class Command(BaseCommand):
    help = (
        "Declare the titration model's change-control plan (a clinical safety officer): what a retrain may "
        "change without a full review. Each call adds a new version; the gates use the newest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--actor", required=True, help="username of the clinical safety officer")
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
        try:
            plan = change_control_plan_create(
                actor=actor,
                allowed_families=options["families"] or [ModelFamily.LOGISTIC],
                allowed_feature_set_versions=options["feature_sets"] or [FEATURE_SET_VERSION],
                performance_floor=options["floor"],
                fairness_ceiling=options["ceiling"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(self.style.SUCCESS(f"declared {plan}"))
