from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance.signoffs import model_signoff_list, model_signoff_verify, model_signoffs_missing
from inference.management.commands._lifecycle import VERSION_HELP, gates_table, version_from_argument
from inference.manifest import manifest_verify
from inference.selectors import serving_history, serving_pointer_list


class Command(BaseCommand):
    help = (
        "Print a model version's full lineage: snapshot (hash, time range, label provenance), training run "
        "(parameters, seed, code and library versions), metrics, gates, manifest verification, sign-offs and "
        "serving history."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)

    def handle(self, *args: Any, **options: Any) -> None:
        version = version_from_argument(options["version"])
        run = version.training_run
        snapshot = run.snapshot
        out = self.stdout.write
        out(f"model version {version.sha256}")
        out(f"  family {version.get_family_display()} ({version.family}); state {version.approval_state}")
        out(f"  registered {version.created_at:%Y-%m-%d %H:%M:%S} UTC")
        out(f"  sklearn {version.sklearn_sha256}; SHAP background {version.background_sha256}")
        verification = manifest_verify(version)
        out(f"  manifest {version.manifest_sha256 or '(none)'} signed by key {version.manifest_key_id or '(none)'}")
        out(f"  manifest verification: {verification}")
        out("snapshot")
        out(f"  sha256 {snapshot.sha256}")
        start, end = f"{snapshot.time_start:%Y-%m-%d %H:%M}", f"{snapshot.time_end:%Y-%m-%d %H:%M}"
        out(f"  {snapshot.row_count} rows from {start} to {end} UTC")
        quality = "passed" if snapshot.quality_passed else "FAILED"
        out(f"  feature set {snapshot.feature_set_version}; quality {quality}")
        out(f"  label provenance {_counts(snapshot.provenance_counts)}; classes {_counts(snapshot.class_counts)}")
        out(f"training run {run.pk} ({run.status})")
        out(f"  params {run.params}; seed {run.seed}")
        out(f"  code {run.code_version}; libraries {_counts(run.library_versions)}")
        out(f"  requested by {run.requested_by or 'system'}")
        out(f"metrics {_counts({k: round(v, 4) for k, v in version.metrics.items()})}")
        out("gates")
        out("\n".join(gates_table(version.gates, listed=None)))
        out("sign-offs")
        for signoff in model_signoff_list(version=version):
            check = "signature verified" if model_signoff_verify(signoff) else "SIGNATURE DOES NOT VERIFY"
            out(f"  {signoff.signature.manifestation} as {signoff.get_role_display()} ({check})")
            for reason in signoff.acknowledged_review_reasons:
                out(f"    acknowledged: {reason}")
        missing = model_signoffs_missing(version=version)
        if missing:
            out(f"  missing: {', '.join(missing)}")
        out("serving history")
        events = list(serving_history(version=version))
        for event in reversed(events):
            moved = "to" if event.model_version_id == version.pk else "away from"
            by = event.set_by.username if event.set_by else "system"
            kind = "rollback" if event.is_rollback else event.reason
            out(f"  {event.set_at:%Y-%m-%d %H:%M:%S} UTC {event.arm}: moved {moved} this version by {by} ({kind})")
        if not events:
            out("  never served")
        arms = [pointer.arm for pointer in serving_pointer_list() if pointer.model_version_id == version.pk]
        out(f"  serving now on: {', '.join(arms) if arms else 'no arm'}")


def _counts(values: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(values.items())) or "none"
