"""manage.py export KIND …: the compliance exports from the command line, audited as --actor."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from compliance.models import ExportFormat, ExportKind, ExportStatus
from compliance.permissions import export_kind_built
from compliance.registry import REPORTS
from compliance.services import export_file_path, export_request, export_run, export_spec_for
from governance.accounting import PURPOSE_LABELS

_ACTOR_HELP = (
    "username of the person making the export: it is audited as theirs and their role decides what it may hold"
)
# The reports of one model version. Each is offered with its formats once its module is registered
# (compliance.registry); until then the command says it is not built yet.
_MODEL_KINDS = {
    "model-card": (ExportKind.MODEL_CARD, "the model card of one model version"),
    "fairness": (ExportKind.FAIRNESS, "the fairness report of one model version (validation data, and live "
                                      "clinician-labelled decisions over --from/--to)"),
    "explainability": (ExportKind.EXPLAINABILITY, "the explainability report (global SHAP) of one model version"),
}  # fmt: skip
_VERSION_HELP = "a model version (a hash prefix) or production, canary, shadow, latest"


class Command(BaseCommand):
    help = (
        "Export a compliance report, listing or signed evidence bundle to a file. Every export is recorded in the "
        "audit ledger as --actor's, and in the accounting of each patient it discloses. Kinds: decision, decisions, "
        "audit, accounting, bundle, verification, model-card, fairness, explainability."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

        def kind(name: str, help_text: str, formats: list[str]) -> CommandParser:
            sub: CommandParser = kinds.add_parser(name, help=help_text, description=help_text)
            sub.add_argument("--actor", required=True, help=_ACTOR_HELP)
            sub.add_argument("--out", required=True, type=Path, help="the file to write")
            if len(formats) > 1:
                sub.add_argument("--format", choices=formats, default=formats[0], help=f"default {formats[0]}")
            sub.add_argument("--purpose", choices=sorted(PURPOSE_LABELS), default="compliance_review",
                             help="why the export is made (shown in the patients' accounting)")  # fmt: skip
            return sub

        def dated(sub: CommandParser) -> None:
            sub.add_argument("--from", dest="from", default="", help="start: a date (YYYY-MM-DD, UTC) or ISO timestamp")
            sub.add_argument("--to", dest="to", default="", help="end: a date (that whole day included) or timestamp")

        decision = kind("decision", "the decision record of one recommendation", ["json", "html", "pdf"])
        decision.add_argument("recommendation_id", help="the recommendation's number")
        decisions = kind("decisions", "every recommendation of a range with its decision", ["csv", "jsonl", "json",
                                                                                          "html", "pdf"])  # fmt: skip
        dated(decisions)
        decisions.add_argument("--patient", default="", help="only this patient's (a patient code)")
        audit = kind("audit", "the audit events of a range, with its verification status", ["csv", "jsonl", "pdf",
                                                                                          "json", "html"])  # fmt: skip
        dated(audit)
        audit.add_argument("--by", default="", help="only events by this username")
        audit.add_argument("--action", default="", help="only this action, for example review.decided")
        audit.add_argument("--object-type", default="", help="only events on this kind of object")
        audit.add_argument("--object-id", default="", help="only events on this object id")
        audit.add_argument("--patient", default="", help="only events that concern this patient (a patient code)")
        accounting = kind("accounting", "a patient's accounting of access and disclosure (HIPAA 164.528)",
                          ["json", "html", "pdf", "csv", "jsonl"])  # fmt: skip
        accounting.add_argument("patient_code", help="the patient's code, for example P-0001")
        dated(accounting)
        bundle = kind("bundle", "a signed evidence bundle (zip) of a range, checked by compliance/verify_bundle.py",
                      ["zip"])  # fmt: skip
        dated(bundle)
        kind("verification", "verify the whole ledger (chain, checkpoints, witness) and write the report",
             ["json", "html", "pdf"])  # fmt: skip
        for name, (model_kind, help_text) in _MODEL_KINDS.items():
            if export_kind_built(model_kind):
                spec = REPORTS[model_kind]
                sub = kind(name, help_text, [f for f in ExportFormat.values if f in spec.formats])
                sub.add_argument("version", help=_VERSION_HELP)
                if model_kind == ExportKind.FAIRNESS:
                    dated(sub)
                continue
            sub = kinds.add_parser(name, help="not built yet", description=f"{help_text}: not built yet")
            sub.add_argument("version", nargs="?", help=_VERSION_HELP)
            sub.add_argument("--actor", required=True, help=_ACTOR_HELP)
            sub.add_argument("--format", default="json")
            sub.add_argument("--out", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.filter(username=options["actor"]).first()
        if actor is None:
            raise CommandError(f"no user is called {options['actor']!r}")
        name = options["kind"]
        if name in _MODEL_KINDS:
            try:  # the role first, then whether the kind is built, as everywhere else
                export_spec_for(actor=actor, kind=_MODEL_KINDS[name][0])
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        kind, parameters = self._request(name, options)
        fmt = options.get("format") or ExportFormat.ZIP
        out: Path = options["out"]
        if not out.parent.exists():
            raise CommandError(f"the directory {out.parent} does not exist")
        try:
            export = export_request(
                actor=actor, kind=kind, parameters={k: v for k, v in parameters.items() if v}, formats=[fmt],
                purpose=options["purpose"], enqueue=False,
            )  # fmt: skip
        except ApplicationError as exc:
            problems = [f"{field}: {p}" for field, ps in exc.fields.items() for p in ps]
            raise CommandError(" ".join([exc.message, *problems])) from exc
        export = export_run(export_id=export.pk)
        if export.status != ExportStatus.FINISHED:
            raise CommandError(f"export #{export.pk} failed: {export.error_message}")
        written = export.files.get(format=fmt)
        shutil.copyfile(export_file_path(written), out)
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {out} ({written.size} bytes, SHA-256 {written.sha256}) — export #{export.pk}, "
                f"{export.patients_disclosed} patient(s) disclosed, audited as {actor.username}"
            )
        )

    def _request(self, name: str, options: dict[str, Any]) -> tuple[str, dict[str, str]]:
        dates = {"from": options.get("from", ""), "to": options.get("to", "")}
        if name == "decision":
            return ExportKind.DECISION_RECORD, {"recommendation_id": options["recommendation_id"]}
        if name == "decisions":
            return ExportKind.DECISIONS, {**dates, "patient_code": options["patient"]}
        if name == "audit":
            filters = {"actor": options["by"], "action": options["action"], "object_type": options["object_type"],
                       "object_id": options["object_id"], "patient_code": options["patient"]}  # fmt: skip
            return ExportKind.AUDIT_RANGE, {**dates, **filters}
        if name == "accounting":
            return ExportKind.ACCOUNTING, {**dates, "patient_code": options["patient_code"]}
        if name == "bundle":
            return ExportKind.EVIDENCE_BUNDLE, dates
        if name in _MODEL_KINDS:
            model_kind = _MODEL_KINDS[name][0]
            return model_kind, {"version": options["version"], **(dates if model_kind == ExportKind.FAIRNESS else {})}
        return ExportKind.LEDGER_VERIFICATION, {}
