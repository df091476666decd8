"""Compliance pages: the audit ledger with its verification, and a patient's accounting of access and
disclosure."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clinaiops.audit.models import AuditAction
from clinaiops.audit.selectors import audit_event_list
from clinaiops.audit.services import audit_record
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Patient
from clinaiops.core.models import Role
from clinaiops.portal.access import request_user, roles_required
from governance.selectors import access_accounting


@roles_required(Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER)
def audit(request: HttpRequest) -> HttpResponse:
    events = audit_event_list(
        object_type=request.GET.get("object_type") or None, object_id=request.GET.get("object_id") or None
    )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    verification = ledger_verify() if request.GET.get("verify") else None
    return render(request, "portal/audit.html", {"page": page, "verification": verification, "nav": "audit"})


@roles_required(Role.COMPLIANCE_OFFICER)
def accounting(request: HttpRequest) -> HttpResponse:
    """A patient's accounting of access and disclosure, for the compliance office."""
    user = request_user(request)
    code = (request.GET.get("code") or "").strip().upper()
    patient = Patient.objects.filter(code=code).first() if code else None
    entries = []
    if patient is not None:
        with transaction.atomic():
            audit_record(
                action=AuditAction.PATIENT_RECORD_VIEWED, object_type="patient", object_id=patient.pk, actor=user,
                payload={"view": "access_accounting", "purpose": "compliance_review"},
            )  # fmt: skip
        entries = access_accounting(patient=patient)
    elif code:
        messages.error(request, "No patient has that code.")
    return render(
        request, "portal/accounting.html", {"patient": patient, "entries": entries, "code": code, "nav": "accounting"}
    )
