from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance.lineage import model_version_lineage
from inference.labels import (
    CLASS_LABELS,
    PROVENANCE_LABELS,
    count_terms,
    metric_terms,
    parameter_terms,
    terms_text,
)
from inference.management.lifecycle import VERSION_HELP, gates_table, version_from_argument


class Command(BaseCommand):
    help = (
        "Print a model version's full lineage: snapshot (hash, time range, label provenance), training run "
        "(parameters, seed, code and library versions), metrics, gates, manifest verification, sign-offs and "
        "serving history."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help=VERSION_HELP)

    def handle(self, *args: Any, **options: Any) -> None:
        lineage = model_version_lineage(version_from_argument(options["version"]))
        version, run, snapshot = lineage.version, lineage.run, lineage.snapshot
        out = self.stdout.write
        out(f"model version {version.sha256}")
        out(f"  family {version.get_family_display()} ({version.family}); state {version.approval_state}")
        out(f"  registered {version.created_at:%Y-%m-%d %H:%M:%S} UTC")
        out(f"  sklearn {version.sklearn_sha256}; SHAP background {version.background_sha256}")
        out(f"  manifest {version.manifest_sha256 or '(none)'} signed by key {version.manifest_key_id or '(none)'}")
        out(f"  manifest verification: {lineage.manifest}")
        out("snapshot")
        out(f"  sha256 {snapshot.sha256}")
        start, end = f"{snapshot.time_start:%Y-%m-%d %H:%M}", f"{snapshot.time_end:%Y-%m-%d %H:%M}"
        out(f"  {snapshot.row_count} rows from {start} to {end} UTC")
        quality = "passed" if snapshot.quality_passed else "FAILED"
        out(f"  feature set {snapshot.feature_set_version}; quality {quality}")
        provenance = terms_text(count_terms(snapshot.provenance_counts, PROVENANCE_LABELS))
        out(f"  label provenance {provenance}; classes {terms_text(count_terms(snapshot.class_counts, CLASS_LABELS))}")
        out(f"training run {run.pk} ({run.status})")
        out(f"  params {terms_text(parameter_terms(run.params))}; seed {run.seed}")
        libraries = ", ".join(f"{name} {v}" for name, v in sorted(run.library_versions.items()))
        out(f"  code {run.code_version}; libraries {libraries}")
        out(f"  requested by {run.requested_by or 'system'}")
        out(f"metrics {terms_text(metric_terms(version.metrics))}")
        out("gates")
        if lineage.gates_unreadable:
            out(f"  THE STORED GATES CANNOT BE READ: {lineage.gates_unreadable}")
        else:
            out("\n".join(gates_table(lineage.gates, listed=None)))
        out("sign-offs")
        for signoff in lineage.signoffs:
            check = "signature verified" if signoff.verified else "SIGNATURE DOES NOT VERIFY"
            out(f"  {signoff.manifestation} as {signoff.role} ({check})")
            for reason in signoff.acknowledged:
                out(f"    acknowledged: {reason}")
        if lineage.missing_signoffs:
            out(f"  missing: {', '.join(lineage.missing_signoffs)}")
        out("serving history")
        for move in lineage.history:
            moved = "to" if move.towards else "away from"
            out(
                f"  {move.at:%Y-%m-%d %H:%M:%S} UTC {move.arm}: moved {moved} this version by {move.by} ({move.reason})"
            )
        if not lineage.history:
            out("  never served")
        out(f"  serving now on: {', '.join(lineage.serving_on) if lineage.serving_on else 'no arm'}")
