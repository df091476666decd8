from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from clinaiops.audit.services import audit_checkpoint_create


class Command(BaseCommand):
    help = "Sign a checkpoint over the current head of the audit ledger (Ed25519)."

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = audit_checkpoint_create(reason="on_demand")
        if checkpoint is None:
            self.stdout.write("the ledger is empty; nothing to checkpoint")
            return
        self.stdout.write(self.style.SUCCESS(f"checkpoint at seq {checkpoint.seq} signed with key {checkpoint.key_id}"))
