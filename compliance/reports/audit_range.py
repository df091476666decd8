"""Audit range report: the events of a time range, filtered by actor, action, object or patient code, with the
verification status of that range (chain, checkpoints, witness). Schema: docs/compliance-exports.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncDate

from clinaiops.audit.chain import TIMESTAMP_FORMAT
from clinaiops.audit.models import AuditOutcome
from clinaiops.care.models import Patient
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import User
from compliance.charts import bar_chart_svg, column_chart_svg
from compliance.errors import ExportInvalid
from compliance.listings import DisclosureCollector, Listing, audit_listing
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.verification import range_verify
from governance.accounting import audit_action_label, object_label, role_label
from governance.ledger_search import (
    ResolvedFilters,
    denied_bursts,
    ledger_events,
    ledger_filters_parse,
    ledger_filters_resolve,
    ledger_last_verification,
)


def _resolve(raw: Mapping[str, Any]) -> ResolvedFilters:
    try:
        return ledger_filters_resolve(ledger_filters_parse({k: str(v) for k, v in raw.items()}))
    except ValidationFailed as exc:
        raise ExportInvalid(exc.message, fields=exc.fields) from exc


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    return dict(_resolve(raw).filters.as_parameters())


_FILTER_NAMES = {
    "actor": "actor", "action": "action", "object_type": "object type", "object_id": "object id",
    "patient_code": "patient", "from": "from", "to": "until (exclusive)",
}  # fmt: skip


def _filter_words(parameters: Mapping[str, str]) -> list[str]:
    return [
        f"{_FILTER_NAMES.get(k, k)}: {audit_action_label(v) if k == 'action' else v}" for k, v in parameters.items()
    ]


def _outcome_label(code: str) -> str:
    return str(AuditOutcome(code).label) if code in AuditOutcome.values else code


def _event_dict(event: Any, patient_codes: dict[str, str]) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "recorded_at": event.recorded_at.strftime(TIMESTAMP_FORMAT),
        "actor": event.actor.username if event.actor else None,
        "actor_name": event.actor.signature_name if event.actor else "system",
        "actor_role": event.actor_role,
        "actor_role_label": role_label(event.actor_role),
        "action": event.action,
        "action_label": audit_action_label(event.action),
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_label": object_label(event.object_type, event.object_id, patient_codes),
        "outcome": event.outcome,
        "outcome_label": _outcome_label(event.outcome),
        "request_id": event.request_id,
        "ip": event.ip,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def build(request: BuildRequest) -> ReportDocument:
    resolved = _resolve(request.parameters)
    events = ledger_events(resolved)
    total = events.count()
    by_action = list(events.order_by().values_list("action").annotate(n=Count("id")).order_by("-n", "action"))
    by_outcome = list(events.order_by().values_list("outcome").annotate(n=Count("id")).order_by("-n"))
    by_day = list(
        events.order_by()
        .annotate(day=TruncDate("recorded_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    max_rows = settings.EXPORT_PDF_MAX_ROWS
    collector = DisclosureCollector()
    inline = list(events.select_related("actor")[:max_rows])
    patient_ids = {int(e.object_id) for e in inline if e.object_type == "patient" and e.object_id.isdigit()}
    codes = {str(pk): code for pk, code in Patient.objects.filter(pk__in=patient_ids).values_list("pk", "code")}
    shown = []
    for event in inline:
        collector.audit_row(event.object_type, event.object_id, event.payload)
        shown.append(_event_dict(event, codes))
    verification = range_verify(resolved.seq_range, progress=lambda done: request.progress(done, 0))
    last = ledger_last_verification()
    bursts = denied_bursts(seq_range=resolved.seq_range)
    filters = resolved.filters
    data = document_header(SPEC, request) | {
        "range": {
            "from": filters.start.strftime(TIMESTAMP_FORMAT) if filters.start else None,
            "to": filters.end.strftime(TIMESTAMP_FORMAT) if filters.end else None,
            "first_seq": resolved.seq_range.first,
            "last_seq": resolved.seq_range.last,
            "head_seq": resolved.head_seq,
        },
        "filters": filters.as_parameters(),
        "filter_words": _filter_words(filters.as_parameters()),
        "summary": {
            "events": total,
            "by_action": [{"action": a, "label": audit_action_label(a), "count": n} for a, n in by_action],
            "by_outcome": [{"outcome": o, "label": _outcome_label(o), "count": n} for o, n in by_outcome],
            "by_day": [{"day": d.isoformat(), "count": n} for d, n in by_day if d is not None],
            "denied": sum(n for o, n in by_outcome if o == AuditOutcome.DENIED),
            "denied_bursts": [
                {
                    "actor": b.actor,
                    "count": b.count,
                    "first_seq": b.first_seq,
                    "last_seq": b.last_seq,
                    "first_at": b.first_at.strftime(TIMESTAMP_FORMAT),
                    "last_at": b.last_at.strftime(TIMESTAMP_FORMAT),
                }
                for b in bursts
            ],
        },
        "verification": verification.as_dict()
        | {
            "last_full_verification": None
            if last is None
            else {
                "at": last.at.strftime(TIMESTAMP_FORMAT),
                "by": last.by,
                "ok": last.ok,
                "events_checked": last.events_checked,
                "first_broken_seq": last.first_broken_seq,
                "kind": last.kind,
                "export_id": last.export_id,
            }
        },
        "events": shown,
        "events_shown": len(shown),
        "events_truncated": total > len(shown),
        "listing": dict(request.listing_files),  # the CSV/JSONL files beside this document, if any
    }
    charts = {
        "by_action": bar_chart_svg([(row["label"], row["count"]) for row in data["summary"]["by_action"]][:15],
                                   title="Events by action"),
        "by_day": column_chart_svg([(row["day"], row["count"]) for row in data["summary"]["by_day"]],
                                   title="Events per day (UTC)"),
        "by_outcome": bar_chart_svg([(row["label"], row["count"]) for row in data["summary"]["by_outcome"]],
                                    title="Events by outcome", highlight=_outcome_label(AuditOutcome.DENIED)),
    }  # fmt: skip
    return ReportDocument(data=data, patient_ids=frozenset(collector.resolved()), charts=charts)


def listing(request: BuildRequest) -> Listing:
    resolved = _resolve(request.parameters)
    return audit_listing(resolved, total=ledger_events(resolved).count())


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.AUDIT_RANGE,
        title="Audit range report",
        schema="audit_range",
        schema_version="1.0",
        template="compliance/reports/audit_range.html",
        formats=frozenset(
            {ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF, ExportFormat.CSV, ExportFormat.JSONL}
        ),
        file_stem="audit-range",
        prepare=prepare,
        build=build,
        listing=listing,
    )
)
