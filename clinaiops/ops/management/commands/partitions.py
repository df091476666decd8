"""`manage.py partitions [--ensure] [--split-default TABLE]`: the monthly partitions of the readings and the ledger
(docs/scaling.md, clinaiops/ops/partitions.py).

Without options it lists each table's months, how many lie ahead and whether its DEFAULT partition holds rows.
`--ensure` makes the coming PARTITION_MONTHS_AHEAD months now, as the daily beat task does. `--split-default`
moves the rows of a DEFAULT partition into months of their own; it runs as the owner role of MIGRATION_DATABASE_URL
when that is set, like `migrate`, and locks the table while it runs.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connection

from clinaiops.audit.roles import RolesRefused, owner_connection
from clinaiops.ops.partitions import TABLES, SplitRefused, default_partition_split, partitions_summary
from clinaiops.ops.tasks import partitions_ensure


class Command(BaseCommand):
    help = (
        "List the monthly partitions of care_reading and audit_auditevent (PostgreSQL); --ensure makes the coming "
        "months now; --split-default TABLE moves a DEFAULT partition's rows into months of their own (as the owner)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ensure", action="store_true", help="make the coming months now")
        parser.add_argument("--split-default", choices=sorted(TABLES), help="move this table's DEFAULT rows out")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("no partitions: this database is not PostgreSQL (the tables are plain tables)")
            return
        if options["ensure"]:
            made = partitions_ensure()
            self.stdout.write(f"made: {made}")
        if options["split_default"]:
            self._split(options["split_default"])
        for summary in partitions_summary():
            first, last = summary.first_month, summary.last_month
            span = f"{first:%Y-%m} … {last:%Y-%m}" if first and last else "none"
            default = "holds rows: run --split-default" if summary.default_has_rows else "empty"
            warn = "" if summary.months_ahead else "  (no month ahead: is beat running partitions-ensure?)"
            self.stdout.write(
                f"{summary.table}: {summary.months} months ({span}), {summary.months_ahead} ahead{warn}; "
                f"DEFAULT {default}"
            )

    def _split(self, table: str) -> None:
        try:
            with owner_connection(DEFAULT_DB_ALIAS):
                created = default_partition_split(table)
        except (SplitRefused, RolesRefused) as exc:
            raise CommandError(f"--split-default refused: {exc}") from exc
        if not created:
            self.stdout.write(f"{table}: its DEFAULT partition was empty; nothing moved")
        else:
            moved = f"{table}: rows moved into {len(created)} months: {', '.join(created)}"
            self.stdout.write(self.style.SUCCESS(moved))
