"""`manage.py rotate_keys`: move every encrypted value and blind-index value onto the current keys
(clinaiops.care.key_rotation says the whole procedure). `--check` changes nothing and exits 1 while anything is
still under an old key, so a deploy script can wait for it before dropping the old key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.care.key_rotation import DEFAULT_BATCH_SIZE, key_rotation_status, keys_rotate
from clinaiops.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Re-encrypt identifiers and free text under the current key and rebuild the blind index (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per transaction")
        parser.add_argument("--check", action="store_true", help="report what is left under old keys; change nothing")

    def handle(self, *args: Any, batch_size: int, check: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if check:
            status = key_rotation_status()
            self.stdout.write(f"current keys: field {status.field_key_id}, blind index {status.index_key_id}")
            for label, count in (*status.stale_values, *status.stale_index_rows):
                if count:
                    self.stdout.write(f"  {label}: {count:,} under an old key")
            if status.pending:
                raise CommandError(f"{status.pending:,} values are not under the current keys yet: run rotate_keys")
            self.stdout.write(self.style.SUCCESS("OK: every value is under the current keys"))
            return
        try:
            report = keys_rotate(batch_size=batch_size, progress=self.stdout.write)
        except ApplicationError as exc:  # an envelope under a key no longer listed, or altered: names the column
            raise CommandError(exc.message) from None
        if not report.changed and not report.remaining:
            self.stdout.write(self.style.SUCCESS("Nothing to rotate: every value is under the current keys."))
            return
        self.stdout.write(
            f"re-encrypted {sum(n for _, n in report.reencrypted):,} values under {report.field_key_id}; "
            f"rebuilt {sum(n for _, n in report.reindexed):,} index rows under {report.index_key_id}"
        )
        if report.remaining:
            raise CommandError(
                f"{report.remaining:,} values were written under an old key during the run: restart every process "
                "with the new key list, then run rotate_keys again"
            )
        self.stdout.write(self.style.SUCCESS("OK: every value is under the current keys; old keys may be removed."))
