from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from clinaiops.audit.services import audit_checkpoint_create, audit_witness_catch_up


class Command(BaseCommand):
    help = (
        "Sign a checkpoint over the current head of the audit ledger (Ed25519), publish it to the witness, and "
        "republish any earlier checkpoint the witness lacks."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = audit_checkpoint_create(reason="on_demand")
        republished = audit_witness_catch_up()
        if republished:
            self.stdout.write(f"republished {len(republished)} checkpoints the witness lacked")
        if checkpoint is None:
            self.stdout.write("the ledger is empty; nothing to checkpoint")
            return
        self.stdout.write(self.style.SUCCESS(f"checkpoint at seq {checkpoint.seq} signed with key {checkpoint.key_id}"))
