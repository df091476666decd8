from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from inference.monitoring.contracts import subgroup_accuracy
from inference.monitoring.models import DriftReport
from inference.monitoring.services.drift_reports import drift_report_compute


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


class Command(BaseCommand):
    help = (
        "Compare the serving window with the production model's training snapshot: per-feature PSI and KS or "
        "chi-square, prediction drift, override rate, subgroup accuracy. Stores the report; severe drift alerts "
        "ML engineers and starts a candidate retraining run (never a promotion)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window-days", type=int, help="length of the current window (default DRIFT_WINDOW_DAYS)")
        parser.add_argument("--as-of", help="end of the window, ISO 8601 with a timezone (default: now)")
        parser.add_argument("--actor", help="username of the ML engineer or safety officer asking for it")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = None
        if options["actor"]:
            # The service decides (and audits) whether this account may ask for a report.
            actor = User.objects.filter(username=options["actor"], is_active=True).first()
            if actor is None:
                raise CommandError(f"no active user {options['actor']!r}")
        as_of = None
        if options["as_of"]:
            try:
                as_of = datetime.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError("--as-of must be an ISO 8601 date-time") from exc
            if as_of.tzinfo is None:
                raise CommandError("--as-of needs a timezone offset, for example 2026-03-01T00:00:00+00:00")
        if options["window_days"] is not None and options["window_days"] < 1:
            raise CommandError("--window-days must be at least 1")
        try:
            report = drift_report_compute(window_days=options["window_days"], as_of=as_of, actor=actor)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self._print(report)

    def _print(self, report: DriftReport) -> None:
        write = self.stdout.write
        write(
            f"drift report {report.pk}: model {report.model_version.short_hash}, reference snapshot "
            f"{report.reference_sha256[:12]} ({report.n_reference} rows) vs {report.n_current} rows from "
            f"{report.window_start:%Y-%m-%d %H:%M} to {report.as_of:%Y-%m-%d %H:%M} UTC"
        )
        if report.features:
            write(f"{'feature':<24} {'kind':<11} {'PSI':>7} {'test':<5} {'stat':>9} {'p adj':>9}  severity")
            entries = [*report.features, *([report.prediction] if report.prediction else [])]
            for entry in entries:
                p_adjusted = entry["p_adjusted"]
                write(
                    f"{entry['name']:<24} {entry['kind']:<11} {entry['psi']:>7.3f} {entry['test']:<5} "
                    f"{entry['statistic']:>9.3f} {'—' if p_adjusted is None else f'{p_adjusted:.2g}':>9}  "
                    f"{entry['severity']}"
                )
            write(f"PSI that noise alone gives at these sizes: about {report.psi_noise_floor:.3f}")
        overall = report.override_rates.get("overall", {})
        write(f"clinician override rate: {_rate(overall.get('rate'))} of {overall.get('decisions', 0)} decisions")
        for arm, counts in report.override_rates.get("by_arm", {}).items():
            write(f"  {arm}: {_rate(counts['rate'])} of {counts['decisions']}")
        subgroups = subgroup_accuracy(report.subgroups)
        write(f"accuracy against clinician decisions: {_rate(subgroups.accuracy)} of {subgroups.n}")
        for row in subgroups.rows:
            accuracy = _rate(row.accuracy) if row.compared else f"not compared (under {subgroups.min_rows})"
            write(f"  {row.attribute} {row.group}: {accuracy} of {row.n}")
        style = {"severe": self.style.ERROR, "watch": self.style.WARNING}.get(report.severity, self.style.SUCCESS)
        write(style(f"severity: {report.get_severity_display().lower()}"))
        if report.drifted:
            write(f"drifted: {', '.join(report.drifted)}")
        if report.retraining_run_id:
            write(f"candidate retraining run {report.retraining_run_id} started (it will not be promoted by itself)")
        elif report.retraining_note:
            write(f"no retraining run: {report.retraining_note}")
