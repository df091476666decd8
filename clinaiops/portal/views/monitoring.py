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
from inference.labels import (
    BREAKER_REASON_LABELS,
    DRIFT_FEATURE_SEVERITY_LABELS,
    DRIFT_TEST_LABELS,
    INTEGRITY_ERROR_LABELS,
    RETRAINING_NOTE_LABELS,
    arm_label,
    feature_label,
    label_of,
)
from inference.monitoring.contracts import subgroup_accuracy
from inference.monitoring.models import DriftReport, MonitoringAlert, MonitoringAlertStatus
from inference.monitoring.selectors import (
    canary_overview,
    drift_report_get,
    drift_report_list,
    monitoring_alert_list,
    shadow_agreement,
)
from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.canary import canary_stage_advance
from inference.monitoring.services.drift_reports import drift_report_compute

READERS = (Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER)
ACKNOWLEDGERS = (Role.ML_ENGINEER, Role.SAFETY_OFFICER)


def _labels(codes: list[str], labels: dict[str, str]) -> str:
    return ", ".join(label_of(labels, code) for code in codes)


def _report_words(report: DriftReport) -> dict[str, str]:
    """The codes of a drift report, as words."""
    return {
        "drifted": ", ".join(feature_label(name) for name in report.drifted),
        "retraining_note": label_of(RETRAINING_NOTE_LABELS, report.retraining_note) if report.retraining_note else "",
        "retraining_status": report.retraining_run.get_status_display().lower() if report.retraining_run else "",
    }


def _alert_words(alert: MonitoringAlert) -> dict[str, str]:
    details = alert.details
    return {
        "arm": arm_label(details["arm"]) if details.get("arm") else "",
        "error": label_of(INTEGRITY_ERROR_LABELS, details["error"]) if details.get("error") else "",
        "tripped_on": _labels(details.get("tripped_on", []), BREAKER_REASON_LABELS),
    }


@roles_required(*READERS)
def overview(request: HttpRequest) -> HttpResponse:
    canary = canary_overview()
    context = {
        "canary": canary,
        "canary_rows": [(arm_label(arm.arm), arm) for arm in (canary.canary, canary.production) if arm is not None],
        "trips": [(trip, _labels(trip.reasons, BREAKER_REASON_LABELS)) for trip in canary.recent_trips],
        "shadows": [(shadow, arm_label(shadow.served_arm)) for shadow in shadow_agreement()],
        "override_margin_pct": 100 * canary.thresholds.override_margin,
        "error_margin_pct": 100 * canary.thresholds.error_margin,
        "alerts": monitoring_alert_list(status=MonitoringAlertStatus.OPEN)[:5],
        "reports": drift_report_list()[:5],
        "can_advance": request_user(request).role == Role.ML_ENGINEER,
        "nav": "monitoring",
    }
    return render(request, "portal/monitoring/overview.html", context)


@roles_required(*READERS)
def drift_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(drift_report_list(), 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [(report, _report_words(report)) for report in page.object_list],
        "can_run": request_user(request).role in ACKNOWLEDGERS,
        "nav": "monitoring",
    }
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
    severity = label_of(DRIFT_FEATURE_SEVERITY_LABELS, entry["severity"])
    return f"{feature_label(entry['name'])} — PSI {entry['psi']:.3f}, {severity}"


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
            "label": feature_label(entry["name"]),
            "test": label_of(DRIFT_TEST_LABELS, entry["test"]),
            "severity": label_of(DRIFT_FEATURE_SEVERITY_LABELS, entry["severity"]),
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
        [(feature_label(entry["name"]), entry["psi"], entry["severity"]) for entry in entries],
        watch=PSI_WATCH,
        severe=PSI_SEVERE,
        noise_floor=report.psi_noise_floor,
    )
    context = {
        "report": report,
        "words": _report_words(report),
        "override_arms": [(arm_label(arm), counts) for arm, counts in report.override_rates.get("by_arm", {}).items()],
        "subgroups": subgroup_accuracy(report.subgroups),
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
        "rows": [(alert, _alert_words(alert)) for alert in page.object_list],
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
