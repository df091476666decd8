"""Decision listing: every recommendation in a date range with its tier, the clinician's decision and signature,
and the patient's response; a summary as the report, the rows as CSV and JSON Lines. Clinicians get their own care
teams' patients only (the queryset is scoped, not the page). Schema: docs/compliance-exports.md."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from django.conf import settings
from django.db.models import Count

from clinaiops.audit.chain import TIMESTAMP_FORMAT
from clinaiops.care.access import care_access_for
from clinaiops.care.models import Patient
from clinaiops.core.models import Role, User
from compliance.charts import bar_chart_svg
from compliance.errors import ExportInvalid, ExportNotFound
from compliance.listings import Listing, decisions_listing, decisions_queryset
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.reports.accounting import _range
from compliance.wording import DECISION_WORDS, STATUS_WORDS, TIER_WORDS, words
from governance.accounting import patient_by_code
from governance.ledger_search import timestamp_parameter


def _patient(actor: User, code: str) -> Patient | None:
    if not code:
        return None
    patient = patient_by_code(code)
    if patient is None:
        if actor.role == Role.CLINICIAN:
            raise ExportNotFound("No such patient.")
        raise ExportInvalid("No patient has that code.", fields={"patient_code": ["No patient has that code."]})
    if actor.role == Role.CLINICIAN and not care_access_for(user=actor, patient=patient).on_care_team:
        raise ExportNotFound("No such patient.")
    return patient


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    patient = _patient(actor, str(raw.get("patient_code") or ""))
    start, end = _range(raw)
    parameters: dict[str, Any] = {}
    if patient:
        parameters["patient_code"] = patient.code
    if start:
        parameters["from"] = timestamp_parameter(start)
    if end:
        parameters["to"] = timestamp_parameter(end)
    return parameters


def _queryset(request: BuildRequest) -> Any:
    start, end = _range(request.parameters)
    patient = _patient(request.actor, str(request.parameters.get("patient_code") or ""))
    return decisions_queryset(actor=request.actor, start=start, end=end, patient=patient)


def build(request: BuildRequest) -> ReportDocument:
    queryset = _queryset(request)
    rows = decisions_listing(queryset)
    shown = [dict(zip(rows.columns, row, strict=True)) for row in islice(rows.rows(), settings.EXPORT_PDF_MAX_ROWS)]
    for row in shown:
        row["tier_label"] = words(TIER_WORDS, row["tier"])
        row["decision_label"] = words(DECISION_WORDS, row["decision"])
        row["status_label"] = words(STATUS_WORDS, row["status"])
    by_tier = dict(queryset.order_by().values_list("tier").annotate(n=Count("id")))
    by_decision = dict(queryset.order_by().values_list("decision__outcome").annotate(n=Count("id")))
    by_status = dict(queryset.order_by().values_list("status").annotate(n=Count("id")))
    decided = sum(n for outcome, n in by_decision.items() if outcome)
    overridden = sum(n for outcome, n in by_decision.items() if outcome in {"modified", "rejected"})
    start, end = _range(request.parameters)
    data = document_header(SPEC, request) | {
        "range": {
            "from": start.strftime(TIMESTAMP_FORMAT) if start else None,
            "to": end.strftime(TIMESTAMP_FORMAT) if end else None,
        },
        "scope": "the care teams of the requesting clinician" if request.actor.role == Role.CLINICIAN else "all",
        "summary": {
            "recommendations": rows.total,
            "by_tier": by_tier,
            "by_decision": {(k or "none"): v for k, v in by_decision.items()},
            "by_status": by_status,
            "clinician_decisions": decided,
            "override_rate": round(overridden / decided, 4) if decided else None,
        },
        "rows": shown,
        "rows_shown": len(shown),
        "rows_truncated": rows.total > len(shown),
        "listing": dict(request.listing_files),  # the CSV/JSONL files beside this document, if any
    }
    charts = {
        "by_decision": bar_chart_svg(
            [(words(DECISION_WORDS, k), v) for k, v in sorted(by_decision.items(), key=lambda kv: -kv[1])],
            title="Clinician decisions",
        ),
        "by_tier": bar_chart_svg(
            [(words(TIER_WORDS, k), v) for k, v in sorted(by_tier.items(), key=lambda kv: -kv[1])], title="Tier"
        ),
    }
    assert rows.collector is not None
    return ReportDocument(data=data, patient_ids=frozenset(rows.collector.patient_ids), charts=charts)


def listing(request: BuildRequest) -> Listing:
    return decisions_listing(_queryset(request))


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.DECISIONS,
        title="Decision listing",
        schema="decision_listing",
        schema_version="1.0",
        template="compliance/reports/decisions.html",
        formats=frozenset(
            {ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF, ExportFormat.CSV, ExportFormat.JSONL}
        ),
        file_stem="decision-listing",
        prepare=prepare,
        build=build,
        listing=listing,
    )
)
