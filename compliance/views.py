"""Compliance pages (/compliance/…), in the portal's look: start an export (a job with progress), list and download
finished exports, read a decision record, stream CSV or JSON Lines. One view per operation: validate, call a
service or selector, render. Who may export what is decided by compliance.permissions, in the services."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.core.errors import ApplicationError, NotFound, PermissionRefused
from clinaiops.core.models import Role, User
from compliance.errors import ExportNotBuilt
from compliance.models import ExportFormat, ExportKind, ExportStatus
from compliance.permissions import PORTAL_ROLES, export_kinds_for
from compliance.registry import REPORTS
from compliance.rendering import report_body
from compliance.reports import BuildRequest
from compliance.selectors import export_get_visible, export_list_visible
from compliance.services import export_file_open, export_request, export_spec_for, export_stream
from governance.accounting import PURPOSE_LABELS, audit_action_choices, patient_record_read

View = Callable[..., HttpResponseBase]
_PARAMETER_FIELDS = (
    "from", "to", "actor", "action", "object_type", "object_id", "patient_code", "recommendation_id", "version",
)  # fmt: skip


def staff_required(view: View) -> View:
    """Signed-in staff only (patients export through the API); other roles are refused and audited."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        assert isinstance(user, User)
        if user.role not in PORTAL_ROLES:
            audit_record_denied(
                action=AuditAction.ACCESS_DENIED, object_type="portal_view", object_id=view.__name__, actor=user,
                reason="wrong_role",
            )  # fmt: skip
            raise PermissionDenied("Your role cannot use this page.")
        return view(request, *args, **kwargs)

    return wrapped


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _refusal(exc: ApplicationError) -> None:
    """Map a refusal to the page's answer: 404 for what is out of scope, 403 for a role, else a message."""
    if isinstance(exc, NotFound):
        raise Http404(exc.message) from exc
    if isinstance(exc, PermissionRefused):
        raise PermissionDenied(exc.message) from exc


@staff_required
@require_GET
def exports(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    kinds = export_kinds_for(user.role)
    chosen = request.GET.get("kind") or (kinds[0] if kinds else "")
    context = {
        "kinds": [
            (kind, kind.label, [(f, ExportFormat(f).label) for f in ExportFormat.values if f in REPORTS[kind].formats])
            for kind in kinds
        ],
        "chosen": chosen,
        "prefill": {name: request.GET.get(name, "") for name in _PARAMETER_FIELDS},
        "purposes": sorted(PURPOSE_LABELS.items(), key=lambda item: item[1]),
        "actions": audit_action_choices(),
        "exports": export_list_visible(actor=user),
        "nav": "exports",
    }
    return render(request, "compliance/exports.html", context)


@staff_required
@require_POST
def export_start(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    kind = request.POST.get("kind", "")
    parameters = {name: request.POST.get(name, "").strip() for name in _PARAMETER_FIELDS}
    try:
        export = export_request(
            actor=user,
            kind=kind,
            parameters={k: v for k, v in parameters.items() if v},
            formats=request.POST.getlist("formats"),
            purpose=request.POST.get("purpose", "compliance_review"),
        )
    except ExportNotBuilt as exc:
        messages.error(request, exc.message)
        return redirect("compliance:exports")
    except ApplicationError as exc:
        _refusal(exc)
        problems = [f"{field.replace('_', ' ')}: {p}" for field, ps in exc.fields.items() for p in ps]
        messages.error(request, " ".join([exc.message, *problems]))
        query = "&".join(f"{k}={v}" for k, v in parameters.items() if v)
        return redirect(f"{request.path.rsplit('start/', 1)[0]}?kind={kind}&{query}")
    messages.success(request, f"Export #{export.pk} started.")
    return redirect("compliance:export", pk=export.pk)


@staff_required
@require_GET
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        export = export_get_visible(actor=_user(request), export_id=pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    running = export.status in {ExportStatus.QUEUED, ExportStatus.RUNNING}
    context = {
        "export": export,
        "files": list(export.files.all()),
        "running": running,
        "purpose": PURPOSE_LABELS.get(export.purpose, export.purpose),
        "nav": "exports",
    }
    return render(request, "compliance/export_detail.html", context)


@staff_required
@require_GET
def export_download(request: HttpRequest, pk: int, name: str) -> HttpResponseBase:
    user = _user(request)
    try:
        export = export_get_visible(actor=user, export_id=pk)
        export_file, path = export_file_open(actor=user, export=export, name=name)
    except ApplicationError as exc:
        _refusal(exc)
        messages.error(request, exc.message)
        return redirect("compliance:export", pk=pk)
    # FileResponse streams the file in blocks (a StreamingHttpResponse): a large listing never sits in memory.
    return FileResponse(path.open("rb"), as_attachment=True, filename=export_file.name)


@staff_required
@require_POST
def ledger_verify_start(request: HttpRequest) -> HttpResponse:
    try:
        export = export_request(
            actor=_user(request), kind=ExportKind.LEDGER_VERIFICATION, parameters={},
            formats=[ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF], purpose="audit",
        )  # fmt: skip
    except ApplicationError as exc:
        _refusal(exc)
        messages.error(request, exc.message)
        return redirect("portal:audit")
    return redirect("compliance:export", pk=export.pk)


@staff_required
@require_GET
def decision_record(request: HttpRequest, pk: int) -> HttpResponse:
    """The decision record of one recommendation, in the page; reading it is accounted as a read of the record."""
    user = _user(request)
    try:
        spec = export_spec_for(actor=user, kind=ExportKind.DECISION_RECORD)
        parameters = spec.prepare(user, {"recommendation_id": str(pk)})
    except ApplicationError as exc:
        if isinstance(exc, NotFound):
            audit_record_denied(
                action=AuditAction.ACCESS_DENIED, object_type="recommendation", object_id=pk, actor=user,
                reason="outside_care_team",
            )  # fmt: skip
        _refusal(exc)
        raise
    assert spec.build is not None
    document = spec.build(BuildRequest(actor=user, parameters=parameters, generated_at=timezone.now()))
    patient_id = next(iter(document.patient_ids))
    purpose = "care" if user.role == Role.CLINICIAN else "compliance_review"
    patient_record_read(actor=user, patient_id=patient_id, view="decision_record", purpose=purpose)
    context = {"body": report_body(spec, document), "data": document.data, "nav": "exports"}
    return render(request, "compliance/decision_page.html", context)


def _streamed(request: HttpRequest, kind: str) -> HttpResponseBase:
    user = _user(request)
    parameters = {k: str(request.GET.get(k, "")) for k in _PARAMETER_FIELDS if request.GET.get(k)}
    try:
        streamed = export_stream(
            actor=user, kind=kind, parameters=parameters, fmt=request.GET.get("format", ExportFormat.CSV),
            purpose=request.GET.get("purpose", "compliance_review"),
        )  # fmt: skip
    except ApplicationError as exc:
        _refusal(exc)
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(streamed.chunks, content_type=streamed.content_type)
    response["Content-Disposition"] = f'attachment; filename="{streamed.filename}"'
    return response


@staff_required
@require_GET
def audit_stream(request: HttpRequest) -> HttpResponseBase:
    """The filtered ledger as CSV or JSON Lines, streamed from a server-side cursor."""
    return _streamed(request, ExportKind.AUDIT_RANGE)


@staff_required
@require_GET
def accounting_stream(request: HttpRequest) -> HttpResponseBase:
    return _streamed(request, ExportKind.ACCOUNTING)


@staff_required
@require_GET
def decisions_stream(request: HttpRequest) -> HttpResponseBase:
    return _streamed(request, ExportKind.DECISIONS)
