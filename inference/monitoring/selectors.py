"""Reads for deployment monitoring: arm performance, canary overview, shadow agreement, reports and alerts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind
from inference.models import Arm, ModelVersion, ServingPointer
from inference.monitoring.contracts import ArmPerformance, BreakerThresholds, CanaryOverview, ShadowAgreement
from inference.monitoring.models import (
    CANARY_STAGE_TRANSITIONS,
    CANARY_STAGES,
    CanaryState,
    CircuitBreakerEvent,
    DriftReport,
    MonitoringAlert,
    PredictionLog,
    ShadowScore,
)

# P0 safety findings (DESIGN §2) count as adverse outcomes; other care alerts (break-glass access) do not.
SAFETY_ALERT_KINDS = (AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION)


def breaker_thresholds() -> BreakerThresholds:
    return BreakerThresholds(
        min_decisions=settings.CANARY_MIN_DECISIONS,
        override_margin=settings.CANARY_OVERRIDE_MARGIN_PP / 100,
        error_margin=settings.CANARY_ERROR_MARGIN_PP / 100,
        outcome_days=settings.CANARY_OUTCOME_DAYS,
    )


def arm_performance(
    *, arm: str, since: datetime, until: datetime, outcome_days: int, model_version_id: int | None = None
) -> ArmPerformance:
    """One aggregate query over the arm's prediction log in [since, until] (see ArmPerformance)."""
    logs = PredictionLog.objects.filter(arm=arm, created_at__gte=since, created_at__lte=until)
    if model_version_id is not None:
        logs = logs.filter(model_version_id=model_version_id)
    safety_alert_after_advice = Alert.objects.filter(
        patient_id=OuterRef("patient_id"),
        kind__in=SAFETY_ALERT_KINDS,
        opened_at__gt=OuterRef("advice_delivered_at"),
        opened_at__lte=OuterRef("advice_delivered_at") + timedelta(days=outcome_days),
    )
    totals = logs.annotate(adverse_outcome=Exists(safety_alert_after_advice)).aggregate(
        predictions=Count("pk"),
        decisions=Count("pk", filter=Q(decided_at__isnull=False)),
        overridden=Count("pk", filter=Q(overridden=True)),
        settled=Count("pk", filter=Q(decided_at__isnull=False) | Q(tier__in=("minor", "feedback"))),
        adverse=Count("pk", filter=Q(advice_delivered_at__isnull=False, adverse_outcome=True)),
    )
    return ArmPerformance(arm=arm, **totals)


def canary_overview(*, now: datetime | None = None) -> CanaryOverview:
    """The canary deployment now serving (if any): its stage and both arms' numbers since it started."""
    now = now or timezone.now()
    thresholds = breaker_thresholds()
    trips = list(CircuitBreakerEvent.objects.select_related("model_version").order_by("-tripped_at")[:5])
    pointer = ServingPointer.objects.select_related("model_version").filter(arm=Arm.CANARY).first()
    if pointer is None:
        return CanaryOverview(None, None, 0, None, None, None, thresholds, None, trips)
    state = CanaryState.objects.filter(model_version=pointer.model_version, started_at=pointer.since).first()
    stage = state.stage_percent if state else CANARY_STAGES[0]

    def performance(arm: str, version_id: int | None) -> ArmPerformance:
        return arm_performance(
            arm=arm,
            since=pointer.since,
            until=now,
            outcome_days=thresholds.outcome_days,
            model_version_id=version_id,
        )

    return CanaryOverview(
        version=pointer.model_version,
        started_at=pointer.since,
        stage_percent=stage,
        state=state,
        canary=performance(Arm.CANARY, pointer.model_version_id),
        production=performance(Arm.PRODUCTION, None),
        thresholds=thresholds,
        next_stage=CANARY_STAGE_TRANSITIONS.get(stage),
        recent_trips=trips,
    )


def shadow_agreement(*, days: int = 30, now: datetime | None = None) -> list[ShadowAgreement]:
    """Per shadow version and served arm: how often the shadow proposed what was served."""
    now = now or timezone.now()
    rows = (
        ShadowScore.objects.filter(scored_at__gt=now - timedelta(days=days), scored_at__lte=now)
        .values("model_version_id", "served_arm", "served_action", "action")
        .annotate(n=Count("pk"))
    )
    pairs: dict[tuple[int, str], Counter[tuple[str, str]]] = {}
    for row in rows:
        pairs.setdefault((row["model_version_id"], row["served_arm"]), Counter())[
            (row["served_action"], row["action"])
        ] += row["n"]
    if not pairs:
        return []
    versions = ModelVersion.objects.in_bulk({version_id for version_id, _ in pairs})
    return [
        ShadowAgreement(
            version=versions[version_id],
            served_arm=arm,
            scored=sum(counts.values()),
            agreed=sum(n for (served, shadow), n in counts.items() if served == shadow),
            pairs=dict(counts),
        )
        for (version_id, arm), counts in sorted(pairs.items(), key=lambda item: (-item[0][0], item[0][1]))
    ]


def drift_report_list() -> QuerySet[DriftReport]:
    return DriftReport.objects.select_related("model_version", "retraining_run").order_by("-created_at", "-pk")


def drift_report_get(*, report_id: int) -> DriftReport | None:
    return drift_report_list().select_related("reference_snapshot", "requested_by").filter(pk=report_id).first()


def monitoring_alert_list(*, status: str | None = None) -> QuerySet[MonitoringAlert]:
    alerts = MonitoringAlert.objects.select_related("model_version", "acknowledged_by", "drift_report")
    if status is not None:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-opened_at", "-pk")
