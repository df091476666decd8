from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from governance.signoffs import model_signoff_create, model_signoffs_missing
from inference.management.commands._lifecycle import (
    VERSION_HELP,
    command_error,
    user_from_argument,
    version_from_argument,
)

PASSWORD_ENV = "SIGNOFF_PASSWORD"  # noqa: S105 - the variable's name, not a password


class Command(BaseCommand):
    help = (
        "E-sign a validated model version as its ML engineer or clinical safety officer (meaning: signed_off). "
        "The second sign-off, by the other role and another person, approves it. The password is re-entered: "
        f"from --password-file, the {PASSWORD_ENV} environment variable, or a prompt on a terminal; never on the "
        "command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)
        parser.add_argument("--actor", required=True, help="username of the signer")
        parser.add_argument("--password-file", type=Path, help="file whose first line is the signer's password")
        parser.add_argument(
            "--acknowledge-full-review",
            action="store_true",
            help="the safety officer acknowledges the gates' 'needs full review' findings (shown by `evaluate`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"])
        version = version_from_argument(options["version"])
        password = self._password(options["password_file"], actor.username)
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

    def _password(self, path: Path | None, username: str) -> str:
        if path is not None:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise CommandError(f"cannot read the password file: {exc.strerror}") from exc
            return lines[0] if lines else ""
        if os.environ.get(PASSWORD_ENV):
            return os.environ[PASSWORD_ENV]
        if sys.stdin.isatty():
            return getpass.getpass(f"password for {username} (re-entered to sign): ")
        raise CommandError(f"no password: use --password-file, set {PASSWORD_ENV}, or run from a terminal")
