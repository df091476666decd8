"""Password re-entry for the commands that e-sign (signoff, change_plan): from a file, an environment variable or a
terminal prompt, never the command line, where other users' `ps` and the shell history would see it."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from django.core.management.base import CommandError, CommandParser

PASSWORD_ENV = "SIGNOFF_PASSWORD"  # noqa: S105 - the variable's name, not a password
PASSWORD_SOURCES = f"from --password-file, the {PASSWORD_ENV} environment variable, or a prompt on a terminal"


def password_argument_add(parser: CommandParser) -> None:
    parser.add_argument("--password-file", type=Path, help="file whose first line is the signer's password")


def password_reentered(path: Path | None, username: str) -> str:
    """The signer's password, re-entered for this signature (21 CFR 11.200(a))."""
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
