from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from inference.services import dataset_snapshot_create, training_run_create, training_run_execute
from inference.tasks import training_run_execute_task


class Command(BaseCommand):
    help = "Snapshot the labels, train a model, export it to ONNX, check parity and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--family", default="logistic", help="model family (default: logistic)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--actor", help="username of the ML engineer requesting the run")
        parser.add_argument("--async", dest="run_async", action="store_true", help="enqueue on Celery instead")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"no user {options['actor']!r}")
        try:
            snapshot = dataset_snapshot_create(actor=actor)
            self.stdout.write(
                f"snapshot {snapshot.sha256[:12]}: {snapshot.row_count} rows {snapshot.class_counts}, "
                f"quality {'passed' if snapshot.quality_passed else 'FAILED'}"
            )
            run = training_run_create(actor=actor, snapshot=snapshot, family=options["family"], seed=options["seed"])
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from exc
        if options["run_async"]:
            training_run_execute_task.delay(run.pk)
            self.stdout.write(f"training run {run.pk} enqueued")
            return
        run = training_run_execute(run_id=run.pk, progress=lambda pct, msg: self.stdout.write(f"  {pct:3d}% {msg}"))
        version = run.model_version
        self.stdout.write(
            self.style.SUCCESS(
                f"model {version.sha256} ({version.approval_state}); balanced accuracy "
                f"{version.metrics['balanced_accuracy']:.3f}, ONNX parity {version.parity_max_abs_diff:.1e}"
            )
        )
