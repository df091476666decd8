from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clinaiops.core.errors import ApplicationError
from governance.management.signing import PASSWORD_SOURCES, password_argument_add, password_reentered
from governance.signoffs import model_signoff_create, model_signoffs_missing
from inference.management.lifecycle import VERSION_HELP, command_error, user_from_argument, version_from_argument


class Command(BaseCommand):
    help = (
        "E-sign a validated model version as its ML engineer or clinical safety officer (meaning: signed_off). "
        "The second sign-off, by the other role and another person, approves it. The password is re-entered: "
        f"{PASSWORD_SOURCES}; never on the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)
        parser.add_argument("--actor", required=True, help="username of the signer")
        password_argument_add(parser)
        parser.add_argument(
            "--acknowledge-full-review",
            action="store_true",
            help="the safety officer acknowledges the gates' 'needs full review' findings (shown by `evaluate`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"])
        version = version_from_argument(options["version"])
        password = password_reentered(options["password_file"], actor.username)
        for reason in version.review_reasons:
            self.stdout.write(f"  needs full review: {reason}")
        try:
            signoff = model_signoff_create(
                actor=actor,
                version=version,
                password=password,
                acknowledge_full_review=options["acknowledge_full_review"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(f"{signoff.signature.manifestation} ({signoff.get_role_display()}) on {version.sha256}")
        missing = model_signoffs_missing(version=version)
        if missing:
            self.stdout.write(f"still needed: a sign-off by a {' and a '.join(missing)}")
        else:
            self.stdout.write(self.style.SUCCESS(f"model {version.short_hash} is now {version.approval_state}"))
