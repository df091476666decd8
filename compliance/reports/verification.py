"""Ledger verification report: the whole ledger verified (chain, signed checkpoints, witness) as a job with
progress, instead of inside a web request (issue 13: 12 s at 2M events). Its end is recorded in the ledger itself as
an `audit.verified` event, which is what the ledger page shows as the last result. Schema:
docs/compliance-exports.md."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from clinaiops.audit.models import AuditCheckpoint
from clinaiops.core.models import User
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.verification import ledger_verify_with_progress
from governance.ledger_search import checkpoint_latest, ledger_head


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    return {}


def build(request: BuildRequest) -> ReportDocument:
    head_seq, _ = ledger_head()
    started = time.perf_counter()
    result = ledger_verify_with_progress(lambda done: request.progress(done, head_seq))
    seconds = time.perf_counter() - started
    latest = checkpoint_latest()
    data = document_header(SPEC, request) | {
        "head_seq": head_seq,
        "result": {
            "ok": result.ok,
            "events_checked": result.events_checked,
            "checkpoints_checked": result.checkpoints_checked,
            "first_broken_seq": result.first_broken_seq,
            "kind": result.kind,
            "problem": result.problem,
            "notes": list(result.notes),
        },
        "witness": {
            "compared": result.witnessed,
            "source": result.witness_source,
            "entries": result.witness_entries,
            "head_seq": result.witness_head_seq,
            "unwitnessed_checkpoints": list(result.unwitnessed_checkpoints),
        },
        "checkpoints": {
            "count": AuditCheckpoint.objects.count(),
            "latest_seq": latest.seq if latest else None,
            "latest_signature_valid": latest.signature_valid if latest else None,
        },
        "seconds": round(seconds, 3),
        "events_per_second": round(result.events_checked / seconds) if seconds > 0 else None,
    }
    return ReportDocument(data=data, patient_ids=frozenset())


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.LEDGER_VERIFICATION,
        title="Ledger verification",
        schema="ledger_verification",
        schema_version="1.0",
        template="compliance/reports/verification.html",
        formats=frozenset({ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF}),
        file_stem="ledger-verification",
        prepare=prepare,
        build=build,
    )
)
