from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.audit.verify import chain_verify, ledger_rows


class Command(BaseCommand):
    help = "Verify the audit ledger's hash chain. Exits non-zero and names the first broken seq on failure."

    def handle(self, *args: Any, **options: Any) -> None:
        result = chain_verify(ledger_rows())
        if not result.ok:
            raise CommandError(
                f"audit ledger BROKEN at seq {result.first_broken_seq}: {result.problem} "
                f"({result.events_checked} events verified before it)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit ledger OK: {result.events_checked} events verified"))
