from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from inference.management.lifecycle import command_error, gates_table, user_from_argument
from inference.models import ApprovalState, ModelFamily
from inference.selectors import model_version_for_run
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create, training_run_enqueue, training_run_execute


class Command(BaseCommand):
    help = (
        "Snapshot the labels, train a model, export it to ONNX, run the gates (parity, data quality, "
        "non-inferiority, calibration, fairness, change-control plan), sign its manifest and register it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--family", default=ModelFamily.LOGISTIC, choices=ModelFamily.values)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--actor", help="username of the ML engineer requesting the run")
        parser.add_argument("--async", dest="run_async", action="store_true", help="enqueue on Celery instead")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = user_from_argument(options["actor"]) if options["actor"] else None
        try:
            snapshot = dataset_snapshot_create(actor=actor)
            self.stdout.write(
                f"snapshot {snapshot.sha256[:12]}: {snapshot.row_count} rows {snapshot.class_counts}, "
                f"quality {'passed' if snapshot.quality_passed else 'FAILED'}"
            )
            run = training_run_create(actor=actor, snapshot=snapshot, family=options["family"], seed=options["seed"])
        except ApplicationError as exc:
            raise command_error(exc) from exc
        if options["run_async"]:
            try:
                # A broker that is down fails the run with the reason and says so in one line: no traceback, no
                # run left "queued" for a message that was never sent.
                training_run_enqueue(run_id=run.pk)
            except ApplicationError as exc:
                raise command_error(exc) from exc
            self.stdout.write(f"training run {run.pk} enqueued; `manage.py register --run {run.pk}` shows its model")
            return
        try:
            run = training_run_execute(run_id=run.pk, progress=lambda pct, msg: self.stdout.write(f"  {pct:3d}% {msg}"))
        except Exception as exc:  # the run is recorded as failed; say why and exit non-zero
            raise CommandError(f"training run {run.pk} failed: {type(exc).__name__}: {exc}") from exc
        version = model_version_for_run(run)
        if version is None:
            raise CommandError(f"training run {run.pk} finished without a registered model version")
        self.stdout.write(
            f"model {version.sha256} ({version.family}, {version.approval_state}); balanced accuracy "
            f"{version.metrics['balanced_accuracy']:.3f}, ONNX parity {version.parity_max_abs_diff:.1e}"
        )
        self.stdout.write("\n".join(gates_table(version.gate_outcome)))
        if version.approval_state == ApprovalState.REJECTED:
            # The run succeeded; the model did not pass. Said on stderr so scripts notice, exit 0 all the same.
            self.stderr.write(
                f"model {version.short_hash} was rejected; failed gates: {', '.join(version.failed_gates)}"
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"model {version.short_hash} is {version.approval_state}"))
