from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.audit.verify import EMPTY, ledger_verify


class Command(BaseCommand):
    help = (
        "Verify the audit ledger's hash chain and signed checkpoints, and compare them with the witness outside "
        "the database. On failure, names the first broken seq and the kind of break (edited, deleted, inserted, "
        "reordered, truncation, forged checkpoint, deleted checkpoint, forged witness entry) and exits 1. An empty "
        "ledger is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--witness",
            type=Path,
            help="compare with this copy of the witness lines (from the syslog host, say), not the configured file",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        try:
            result = ledger_verify(witness_path=options["witness"])
        except Exception as exc:  # the command's boundary: a verdict or a one-line reason, never a traceback
            raise CommandError(f"audit ledger could not be verified: {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - started
        for note in result.notes:
            self.stderr.write(self.style.WARNING(f"warning: {note}"))
        if not result.ok:
            if result.kind == EMPTY:
                raise CommandError(f"audit ledger REFUSED: {result.problem}")
            where = f" at seq {result.first_broken_seq}" if result.first_broken_seq is not None else ""
            raise CommandError(
                f"audit ledger BROKEN{where}: {result.kind}: {result.problem} "
                f"({result.events_checked} events verified before it)"
            )
        rate = result.events_checked / elapsed if elapsed > 0 else 0.0
        witness = (
            f"; witness {result.witness_source}: {result.witness_entries} entries, newest seq {result.witness_head_seq}"
            if result.witnessed
            else "; no witness read"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"audit ledger OK: {result.events_checked} events and {result.checkpoints_checked} signed checkpoints "
                f"verified in {elapsed:.2f}s ({rate:,.0f} events/s){witness}"
            )
        )
