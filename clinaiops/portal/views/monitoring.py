"""Monitoring pages: canary status, shadow agreement, drift reports with charts, alerts for ML engineers.

ML engineers, clinical safety officers and compliance officers read them; clinicians and patients do not
(their refusals are audited by `roles_required`). Only aggregates are shown: no patient appears here, and
shadow outputs are never shown one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import Role
from clinaiops.portal.access import request_user, roles_required
from clinaiops.portal.charts_monitoring import Series, bin_labels, drift_histogram_svg, psi_bars_svg, series_svg
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
from inference.models import ModelVersion
from inference.monitoring.contracts import subgroup_accuracy
from inference.monitoring.models import DriftReport, MonitoringAlert, MonitoringAlertStatus, PredictionLog
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


# --- Over time (issue 11): a series over the drift reports and over the prediction log, per version ---------

TREND_DAYS = 30
TREND_REPORTS = 60


@dataclass(frozen=True)
class DriftPoint:
    report: DriftReport
    max_feature_psi: float | None
    max_feature: str
    prediction_psi: float | None
    override_rate: float | None


def drift_trend(limit: int = TREND_REPORTS) -> list[DriftPoint]:
    """The newest `limit` drift reports, oldest first, each reduced to the numbers a trend needs. One query."""
    reports = list(
        DriftReport.objects.select_related("model_version")
        .only(
            "pk", "created_at", "severity", "features", "prediction", "override_rates", "n_current",
            "model_version__sha256",
        )
        .order_by("-created_at", "-pk")[:limit]
    )  # fmt: skip
    points = []
    for report in reversed(reports):
        psis = [(entry["psi"], entry["name"]) for entry in report.features if isinstance(entry.get("psi"), int | float)]
        top = max(psis, default=(None, ""))
        prediction = report.prediction or {}
        overall = report.override_rates.get("overall") if isinstance(report.override_rates, dict) else None
        rate = overall.get("rate") if isinstance(overall, dict) else None
        points.append(
            DriftPoint(
                report=report,
                max_feature_psi=top[0],
                max_feature=feature_label(top[1]) if top[1] else "",
                prediction_psi=prediction.get("psi") if isinstance(prediction.get("psi"), int | float) else None,
                override_rate=rate if isinstance(rate, int | float) else None,
            )
        )
    return points


@dataclass(frozen=True)
class DayPerformance:
    day: date
    version: str  # short hash
    arm: str  # as a label
    proposals: int
    decisions: int
    overridden: int

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.decisions if self.decisions else None


def performance_trend(*, days: int = TREND_DAYS, now: datetime | None = None) -> list[DayPerformance]:
    """Per day, version and arm over the last `days` days of the prediction log: proposals, clinician decisions
    and overrides. Two queries (the aggregate and the versions' hashes)."""
    now = now or timezone.now()
    rows = list(
        PredictionLog.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model_version_id", "arm")
        .annotate(
            proposals=Count("pk"),
            decisions=Count("pk", filter=Q(decided_at__isnull=False)),
            overridden=Count("pk", filter=Q(overridden=True)),
        )
        .order_by("day", "model_version_id", "arm")
    )
    hashes = dict(
        ModelVersion.objects.filter(pk__in={row["model_version_id"] for row in rows}).values_list("pk", "sha256")
    )
    return [
        DayPerformance(
            day=row["day"],
            version=hashes.get(row["model_version_id"], "")[:12],
            arm=arm_label(row["arm"]),
            proposals=row["proposals"],
            decisions=row["decisions"],
            overridden=row["overridden"],
        )
        for row in rows
    ]


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.get_current_timezone())


def trend_charts(drift: list[DriftPoint], performance: list[DayPerformance]) -> dict[str, SafeString]:
    drift_svg = series_svg(
        [
            Series("largest feature PSI", tuple((p.report.created_at, p.max_feature_psi) for p in drift
                                                if p.max_feature_psi is not None)),
            Series("prediction PSI", tuple((p.report.created_at, p.prediction_psi) for p in drift
                                           if p.prediction_psi is not None)),
        ],
        title="Drift over time: PSI per drift report",
        y_label="drift report",
        thresholds=[(PSI_WATCH, f"watch {PSI_WATCH:g}"), (PSI_SEVERE, f"severe {PSI_SEVERE:g}")],
    )  # fmt: skip
    lines: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    volume: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for row in performance:
        key = (row.version, row.arm)
        volume.setdefault(key, []).append((_noon(row.day), float(row.proposals)))
        if row.override_rate is not None:
            lines.setdefault(key, []).append((_noon(row.day), row.override_rate))
    override_svg = series_svg(
        [Series(f"{version} ({arm})", tuple(points)) for (version, arm), points in lines.items()],
        title=f"Clinician override rate per day and version, last {TREND_DAYS} days",
        y_label="day the proposal was made",
        percent=True,
    )
    volume_svg = series_svg(
        [Series(f"{version} ({arm})", tuple(points)) for (version, arm), points in volume.items()],
        title=f"Proposals per day and version, last {TREND_DAYS} days",
        y_label="day the proposal was made",
    )
    return {
        "drift_trend_svg": mark_safe(drift_svg),  # noqa: S308 - the chart module escapes every label
        "override_trend_svg": mark_safe(override_svg),  # noqa: S308
        "volume_trend_svg": mark_safe(volume_svg),  # noqa: S308
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
    drift, performance = drift_trend(), performance_trend()
    context.update(trend_charts(drift, performance))
    context.update({"drift_points": drift, "performance_rows": performance, "trend_days": TREND_DAYS})
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
    drift = drift_trend()
    context.update({"drift_trend_svg": trend_charts(drift, [])["drift_trend_svg"], "drift_points": drift})
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
