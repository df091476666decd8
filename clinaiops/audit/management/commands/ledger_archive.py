"""`manage.py ledger_archive --before YYYY-MM`: detach the ledger's months before the given one (docs/scaling.md).

Run it as the owner role, like `migrate`: with MIGRATION_DATABASE_URL set, the connection switches to it for the
command; the runtime role is refused (it may not detach partitions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from clinaiops.audit.partitions import LedgerArchiveRefused, ledger_archive
from clinaiops.audit.roles import RolesRefused, owner_connection


def _month_start(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise CommandError(f"--before {text!r}: give a month as YYYY-MM") from exc


class Command(BaseCommand):
    help = (
        "Archive the audit ledger's months before --before YYYY-MM (never the current month): make sure a signed, "
        "witnessed checkpoint sits at the last seq of the newest month archived, then DETACH those partitions. The "
        "detached tables stay in the database under their names; moving them elsewhere and dropping them is the "
        "operator's step. Runs as the owner role of MIGRATION_DATABASE_URL when it is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, help="the first month kept, as YYYY-MM (UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        before = _month_start(options["before"])
        current = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if before > current:
            raise CommandError(f"--before {options['before']}: the current month ({current:%Y-%m}) is never archived")
        try:
            with owner_connection(DEFAULT_DB_ALIAS):
                archive = ledger_archive(before=before)
        except (LedgerArchiveRefused, RolesRefused) as exc:
            raise CommandError(f"ledger_archive refused: {exc}") from exc
        if not archive.detached:
            self.stdout.write(f"no attached month of the ledger ends before {before:%Y-%m}: nothing detached")
            return
        for name in archive.detached:
            self.stdout.write(f"- detached {name}")
        if archive.anchor_seq is None:
            self.stdout.write("the detached months held no events; the verifier's start is unchanged")
        else:
            how = "signed now" if archive.anchor_created else "already there"
            self.stdout.write(
                f"anchor: the signed checkpoint at seq {archive.anchor_seq} ({how}, in the witness); audit_verify "
                f"now starts from it (events 1–{archive.anchor_seq} are archived)"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(archive.detached)} months detached. They stay in the database under their names: export them "
                "(pg_dump -t) to the archive store, verify the copy, then drop them there."
            )
        )
