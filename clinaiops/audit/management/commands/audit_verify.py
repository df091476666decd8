from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from clinaiops.audit.verify import ledger_verify


class Command(BaseCommand):
    help = (
        "Verify the audit ledger's hash chain and signed checkpoints. On failure, names the first broken seq and "
        "the kind of break (edited, deleted, inserted, reordered, truncation, forged checkpoint) and exits 1."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        result = ledger_verify()
        elapsed = time.perf_counter() - started
        if not result.ok:
            raise CommandError(
                f"audit ledger BROKEN at seq {result.first_broken_seq}: {result.kind}: {result.problem} "
                f"({result.events_checked} events verified before it)"
            )
        rate = result.events_checked / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"audit ledger OK: {result.events_checked} events and {result.checkpoints_checked} signed checkpoints "
                f"verified in {elapsed:.2f}s ({rate:,.0f} events/s)"
            )
        )
