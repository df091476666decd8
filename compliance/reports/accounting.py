"""Disclosure accounting for one patient (HIPAA 45 CFR 164.528): who accessed or disclosed what of the record, when
and why, including the exports themselves and emergency access with its grant. Read from governance.accounting,
the same source as the patient's /me/access-log/ and the portal page. Schema: docs/compliance-exports.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clinaiops.audit.chain import TIMESTAMP_FORMAT
from clinaiops.care.models import Patient
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import Role, User
from compliance.charts import bar_chart_svg
from compliance.errors import ExportInvalid, ExportNotFound
from compliance.listings import Listing, accounting_listing
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from governance.accounting import AccessEntry, EntryKind, access_accounting, patient_by_code
from governance.ledger_search import moment_parse, timestamp_parameter

_KIND_LABELS = {
    EntryKind.VIEW: "record viewed",
    EntryKind.EMERGENCY_VIEW: "record viewed under emergency access",
    EntryKind.EMERGENCY_GRANT: "emergency access opened",
    EntryKind.DENIED: "access refused",
    EntryKind.DISCLOSURE: "disclosed in an export",
    EntryKind.DOWNLOAD: "export downloaded",
}


def _patient_for(actor: User, code: str) -> Patient:
    if actor.role == Role.PATIENT:
        own = Patient.objects.filter(user=actor).first()
        # A patient asking for someone else's accounting learns nothing, not even that the code exists.
        if own is None or (code and code.strip().upper() != own.code):
            raise ExportNotFound("No such patient.")
        return own
    patient = patient_by_code(code)
    if patient is None:
        raise ExportInvalid("No patient has that code.", fields={"patient_code": ["No patient has that code."]})
    return patient


def _range(raw: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    try:
        start = moment_parse(str(raw.get("from") or ""), field_name="from")
        end = moment_parse(str(raw.get("to") or ""), field_name="to", end_of_day=True)
    except ValidationFailed as exc:
        raise ExportInvalid(exc.message, fields=exc.fields) from exc
    if start and end and end <= start:
        raise ExportInvalid("The range is empty.", fields={"to": ["The end must be after the start."]})
    return start, end


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    patient = _patient_for(actor, str(raw.get("patient_code") or ""))
    start, end = _range(raw)
    parameters: dict[str, Any] = {"patient_code": patient.code}
    if start:
        parameters["from"] = timestamp_parameter(start)
    if end:
        parameters["to"] = timestamp_parameter(end)
    return parameters


def entry_dict(entry: AccessEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq, "when": entry.when.strftime(TIMESTAMP_FORMAT), "who": entry.who, "role": entry.role,
        "role_code": entry.role_code, "kind": entry.kind, "kind_label": _KIND_LABELS.get(entry.kind, entry.kind),
        "action": entry.action, "what": entry.what, "why": entry.why, "grant_id": entry.grant_id,
        "export_id": entry.export_id,
    }  # fmt: skip


def build(request: BuildRequest) -> ReportDocument:
    patient = Patient.objects.get(code=request.parameters["patient_code"])
    start, end = _range(request.parameters)
    entries = [entry_dict(e) for e in access_accounting(patient=patient, start=start, end=end, limit=None)]
    kinds = Counter(e["kind_label"] for e in entries)
    people = Counter(f"{e['who']} ({e['role']})" for e in entries)
    data = document_header(SPEC, request) | {
        "regulation": "HIPAA 45 CFR 164.528 (accounting of disclosures); staff reads are listed as well",
        "patient": {"code": patient.code},
        "range": {
            "from": start.strftime(TIMESTAMP_FORMAT) if start else None,
            "to": end.strftime(TIMESTAMP_FORMAT) if end else None,
        },
        "summary": {
            "entries": len(entries),
            "by_kind": [{"kind": k, "count": n} for k, n in kinds.most_common()],
            "by_person": [{"who": k, "count": n} for k, n in people.most_common(10)],
            "emergency_grants": sorted({e["grant_id"] for e in entries if e["grant_id"] is not None}),
            "exports": sorted({e["export_id"] for e in entries if e["export_id"] is not None}),
        },
        "entries": entries,
        "listing": dict(request.listing_files),  # the CSV/JSONL files beside this document, if any
    }
    charts = {
        "by_kind": bar_chart_svg([(k, n) for k, n in kinds.most_common()], title="Entries by kind"),
        "by_person": bar_chart_svg([(k, n) for k, n in people.most_common(10)], title="Who (top 10)"),
    }
    return ReportDocument(data=data, patient_ids=frozenset({patient.pk}), charts=charts)


def listing(request: BuildRequest) -> Listing:
    patient = Patient.objects.get(code=request.parameters["patient_code"])
    start, end = _range(request.parameters)
    return accounting_listing(patient=patient, start=start, end=end)


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.ACCOUNTING,
        title="Accounting of access and disclosure",
        schema="disclosure_accounting",
        schema_version="1.0",
        template="compliance/reports/accounting.html",
        formats=frozenset(
            {ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF, ExportFormat.CSV, ExportFormat.JSONL}
        ),
        file_stem="accounting",
        prepare=prepare,
        build=build,
        listing=listing,
    )
)
