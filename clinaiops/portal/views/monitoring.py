"""Monitoring pages: canary status, shadow agreement, drift reports with charts, alerts for ML engineers.

ML engineers, clinical safety officers and compliance officers read them; clinicians and patients do not
(their refusals are audited by `roles_required`). Only aggregates are shown: no patient appears here, and
shadow outputs are never shown one by one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import Role
from clinaiops.portal.access import request_user, roles_required
from clinaiops.portal.charts_monitoring import bin_labels, drift_histogram_svg, psi_bars_svg
from inference.drift import PSI_SEVERE, PSI_WATCH
from inference.features import FEATURE_LABELS
from inference.monitoring.models import MonitoringAlertStatus
from inference.monitoring.selectors import (
    canary_overview,
    drift_report_get,
    drift_report_list,
    monitoring_alert_list,
    shadow_agreement,
)
from inference.monitoring.services import canary_stage_advance, drift_report_compute, monitoring_alert_acknowledge

READERS = (Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER)
ACKNOWLEDGERS = (Role.ML_ENGINEER, Role.SAFETY_OFFICER)


@roles_required(*READERS)
def overview(request: HttpRequest) -> HttpResponse:
    canary = canary_overview()
    context = {
        "canary": canary,
        "canary_rows": [arm for arm in (canary.canary, canary.production) if arm is not None],
        "override_margin_pct": 100 * canary.thresholds.override_margin,
        "error_margin_pct": 100 * canary.thresholds.error_margin,
        "shadows": shadow_agreement(),
        "alerts": monitoring_alert_list(status=MonitoringAlertStatus.OPEN)[:5],
        "reports": drift_report_list()[:5],
        "can_advance": request_user(request).role == Role.ML_ENGINEER,
        "nav": "monitoring",
    }
    return render(request, "portal/monitoring/overview.html", context)


@roles_required(*READERS)
def drift_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(drift_report_list(), 25).get_page(request.GET.get("page"))
    context = {"page": page, "can_run": request_user(request).role in ACKNOWLEDGERS, "nav": "monitoring"}
    return render(request, "portal/monitoring/drift_list.html", context)


@require_POST
@roles_required(*ACKNOWLEDGERS)
def drift_run(request: HttpRequest) -> HttpResponse:
    try:
        report = drift_report_compute(actor=request_user(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("portal:monitoring-drift-list")
    messages.success(request, f"Drift report {report.pk}: {report.get_severity_display().lower()}.")
    return redirect("portal:monitoring-drift", pk=report.pk)


def _feature_title(entry: dict[str, Any]) -> str:
    label = FEATURE_LABELS.get(entry["name"], entry["name"])
    return f"{label} — PSI {entry['psi']:.3f}, {entry['severity']}"


@roles_required(*READERS)
def drift_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = drift_report_get(report_id=pk)
    if report is None:
        raise Http404("No such drift report.")
    entries = sorted(report.features, key=lambda entry: -entry["psi"])
    if report.prediction:
        entries.append(report.prediction)
    histograms = [
        {
            "entry": entry,
            "label": FEATURE_LABELS.get(entry["name"], entry["name"]),
            "svg": mark_safe(  # noqa: S308 - the chart module escapes every label
                drift_histogram_svg(
                    reference=entry["reference_hist"],
                    current=entry["current_hist"],
                    labels=bin_labels(entry["bin_edges"], entry["categories"]),
                    cuts=entry["bin_edges"][1:-1],
                    title=_feature_title(entry),
                )
            ),
        }
        for entry in entries
    ]
    psi_svg = psi_bars_svg(
        [(entry["name"], entry["psi"], entry["severity"]) for entry in entries],
        watch=PSI_WATCH,
        severe=PSI_SEVERE,
        noise_floor=report.psi_noise_floor,
    )
    context = {
        "report": report,
        "psi_svg": mark_safe(psi_svg),  # noqa: S308
        "histograms": histograms,
        "alerts": report.alerts.all(),
        "nav": "monitoring",
    }
    return render(request, "portal/monitoring/drift_detail.html", context)


@roles_required(*READERS)
def alert_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status")
    alerts = monitoring_alert_list(status=status if status in MonitoringAlertStatus.values else None)
    page = Paginator(alerts, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "can_acknowledge": request_user(request).role in ACKNOWLEDGERS,
        "nav": "monitoring",
    }
    return render(request, "portal/monitoring/alerts.html", context)


@require_POST
@roles_required(*ACKNOWLEDGERS)
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        monitoring_alert_acknowledge(actor=request_user(request), alert_id=pk)
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from exc
        messages.error(request, exc.message)
    else:
        messages.success(request, "Alert acknowledged.")
    return redirect("portal:monitoring-alerts")


@require_POST
@roles_required(Role.ML_ENGINEER)
def canary_advance(request: HttpRequest) -> HttpResponse:
    try:
        state = canary_stage_advance(actor=request_user(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The canary now serves {state.stage_percent} % of patients.")
    return redirect("portal:monitoring")
