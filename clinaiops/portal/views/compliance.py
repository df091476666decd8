"""Compliance pages: the audit ledger (filters, seq-keyed pages, event detail, checkpoint and witness status, the
last verification, flagged bursts of refusals) and a patient's accounting of access and disclosure.

Exports, verification jobs and downloads are compliance's own pages (compliance/views.py, /compliance/…): the
portal links to them by URL name and imports nothing of compliance (DESIGN §9: sibling surfaces). The reads here
go through governance.ledger_search and governance.accounting, which the exports use too, so a page and its export
select the same events.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import Role
from clinaiops.portal.access import request_user, roles_required
from governance.accounting import (
    access_accounting,
    audit_action_choices,
    patient_by_code,
    patient_record_read,
)
from governance.ledger_search import (
    denied_burst_rule,
    denied_bursts,
    ledger_event_detail,
    ledger_filters_parse,
    ledger_filters_resolve,
    ledger_page,
    ledger_status,
    moment_parse,
)


def _cursor(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@roles_required(Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER)
def audit(request: HttpRequest) -> HttpResponse:
    """The ledger, newest first, 100 a page keyed by seq; no COUNT(*) and no verification inside the request."""
    if request.GET.get("verify"):
        messages.info(request, "Verification runs as a job now: use “Verify the whole ledger” below.")
    errors: dict[str, list[str]] = {}
    page = None
    query = {k: v for k, v in request.GET.items() if k in {"actor", "action", "object_type", "object_id",
                                                          "patient_code", "from", "to"} and v}  # fmt: skip
    bursts = denied_bursts()
    try:
        resolved = ledger_filters_resolve(ledger_filters_parse(request.GET))
        page = ledger_page(
            resolved, before=_cursor(request.GET.get("before")), after=_cursor(request.GET.get("after")), bursts=bursts
        )
    except ValidationFailed as exc:
        errors = exc.fields or {"": [exc.message]}
    context = {
        "page": page,
        "errors": errors,
        "query": query,
        "actions": audit_action_choices(),
        "bursts": bursts,
        "burst_rule": denied_burst_rule(),
        "status": ledger_status(),
        "nav": "audit",
    }
    return render(request, "portal/audit.html", context)


@roles_required(Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER)
def audit_event(request: HttpRequest, seq: int) -> HttpResponse:
    """One event: its payload, previous hash, hash (recomputed), IP and request id."""
    detail = ledger_event_detail(seq)
    if detail is None:
        raise Http404("No such event.")
    return render(request, "portal/audit_event.html", {"detail": detail, "nav": "audit"})


@roles_required(Role.COMPLIANCE_OFFICER)
def accounting(request: HttpRequest) -> HttpResponse:
    """A patient's accounting of access and disclosure, for the compliance office; reading it is itself accounted."""
    user = request_user(request)
    code = (request.GET.get("code") or "").strip().upper()
    errors: dict[str, list[str]] = {}
    start = end = None
    try:
        start = moment_parse(request.GET.get("from", ""), field_name="from")
        end = moment_parse(request.GET.get("to", ""), field_name="to", end_of_day=True)
    except ValidationFailed as exc:
        errors = exc.fields
    patient = patient_by_code(code) if code else None
    entries = []
    if patient is not None and not errors:
        patient_record_read(actor=user, patient_id=patient.pk)
        entries = access_accounting(patient=patient, start=start, end=end)
    elif code and patient is None:
        messages.error(request, "No patient has that code.")
    context = {
        "patient": patient,
        "entries": entries,
        "code": code,
        "date_from": request.GET.get("from", ""),
        "date_to": request.GET.get("to", ""),
        "errors": errors,
        "nav": "accounting",
    }
    return render(request, "portal/accounting.html", context)
