"""Reads of recommendations. Authorization is decided in the queryset (DESIGN §6): what a user may not see is
simply not found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind, AlertPriority, AlertStatus, Reading, ReadingSource
from clinaiops.care.selectors import patient_list_visible
from clinaiops.core.errors import NotFound
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus, ReviewDecision, Tier

_RELATED = ("patient__care_team", "model_version", "policy", "decision", "decision__signature")
# A model version row carries its metrics, gates and signed manifest (tens of KB of JSON, DESIGN §10); a
# recommendation needs only its hash and family, so the rest stays in the database.
_MODEL_VERSION_BULK = (
    "model_version__metrics", "model_version__gates", "model_version__manifest_text", "model_version__feature_names",
    "model_version__classes",
)  # fmt: skip


def recommendation_list_visible(*, user: User) -> QuerySet[Recommendation]:
    """Patients see their own; clinicians those of their care teams' patients; nobody else any."""
    if user.role not in {Role.PATIENT, Role.CLINICIAN}:
        return Recommendation.objects.none()
    return (
        Recommendation.objects.select_related(*_RELATED)
        .defer(*_MODEL_VERSION_BULK)
        .filter(patient__in=patient_list_visible(user=user))
        .order_by("-created_at", "-pk")
    )


def recommendation_get_visible(*, user: User, recommendation_id: int) -> Recommendation:
    rec = recommendation_list_visible(user=user).filter(pk=recommendation_id).first()
    if rec is None:
        raise NotFound("No such recommendation.")
    return rec


def review_queue(*, user: User) -> QuerySet[Recommendation]:
    return (
        recommendation_list_visible(user=user)
        .filter(status=RecommendationStatus.PENDING_REVIEW, tier=Tier.MAJOR)
        .order_by("created_at")
    )


def recommendation_list_for_patient(*, user: User, patient_id: int, limit: int = 10) -> list[Recommendation]:
    """The newest recommendations of one patient, as far as `user` may see them (the patient page)."""
    return list(recommendation_list_visible(user=user).filter(patient_id=patient_id)[:limit])


# --- The review worklist (issue 11) ------------------------------------------------------------------------

# How far above target the 7-day mean must differ before it outranks time since the last review: within a band of
# 10 mmHg, the patient who has waited longest for a clinician's look comes first (a home-cuff mean moves by a few
# mmHg from week to week on its own, so a 2 mmHg difference should not decide the order).
RISK_BAND_MMHG = 10
_SAFETY_ALERT_KINDS = (AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION)
# The risk is measured BP: home-cuff readings (or typed in from one). Cuffless wearable estimates under-read on darker
# skin (DESIGN §8), so ranking by them would put those patients lower on the worklist; they are left out, as the
# model's own BP features leave them out (inference/features.py).
_MEASURED = (ReadingSource.CUFF, ReadingSource.MANUAL)


@dataclass(frozen=True)
class WorklistItem:
    """One major proposal on the worklist, with what orders it: an open safety alert, the 7-day mean cuff BP above
    the patient's target, the days since a clinician last decided for the patient, and its age against the SLA."""

    recommendation: Recommendation
    safety_alert_open: bool
    sbp_mean_7d: float | None
    dbp_mean_7d: float | None
    excess_mmhg: int
    days_since_review: int  # since enrolment if never reviewed
    ever_reviewed: bool
    age: timedelta
    due_at: datetime
    overdue: bool

    @property
    def risk_band(self) -> int:
        return self.excess_mmhg // RISK_BAND_MMHG

    def sort_key(self) -> tuple[int, int, int, datetime, int]:
        rec = self.recommendation
        return (0 if self.safety_alert_open else 1, -self.risk_band, -self.days_since_review, rec.created_at, rec.pk)


def _worklist_annotated(
    user: User, now: datetime, *, ignore_decision_of: int | None = None
) -> QuerySet[Recommendation]:
    decisions = ReviewDecision.objects.filter(recommendation__patient=OuterRef("patient"))
    if ignore_decision_of is not None:
        decisions = decisions.exclude(recommendation_id=ignore_decision_of)
    week = Reading.objects.filter(
        patient=OuterRef("patient"), taken_at__gt=now - timedelta(days=7), taken_at__lte=now, source__in=_MEASURED
    )
    return recommendation_list_visible(user=user).annotate(
        safety_alert_open=Exists(
            Alert.objects.filter(
                patient=OuterRef("patient"),
                status=AlertStatus.OPEN,
                priority=AlertPriority.P0,
                kind__in=_SAFETY_ALERT_KINDS,
            )
        ),
        sbp_mean_7d=Subquery(week.values("patient").annotate(mean=Avg("systolic")).values("mean")[:1]),
        dbp_mean_7d=Subquery(week.values("patient").annotate(mean=Avg("diastolic")).values("mean")[:1]),
        last_review_at=Subquery(decisions.order_by("-decided_at").values("decided_at")[:1]),
    )


def _worklist_item(rec: Recommendation, now: datetime, sla: timedelta) -> WorklistItem:
    sbp = getattr(rec, "sbp_mean_7d", None)
    dbp = getattr(rec, "dbp_mean_7d", None)
    patient = rec.patient
    excess = max(
        0,
        round(sbp - patient.target_sbp) if sbp is not None else 0,
        round(dbp - patient.target_dbp) if dbp is not None else 0,
    )
    # Never reviewed: counted from enrolment, so a new patient is not treated as just reviewed.
    reviewed = getattr(rec, "last_review_at", None) or patient.enrolled_at
    due_at = rec.created_at + sla
    return WorklistItem(
        recommendation=rec,
        safety_alert_open=bool(getattr(rec, "safety_alert_open", False)),
        sbp_mean_7d=sbp,
        dbp_mean_7d=dbp,
        excess_mmhg=excess,
        days_since_review=max(0, (now - reviewed).days),
        ever_reviewed=getattr(rec, "last_review_at", None) is not None,
        age=now - rec.created_at,
        due_at=due_at,
        overdue=now > due_at,
    )


def worklist(*, user: User, now: datetime | None = None) -> list[WorklistItem]:
    """The clinician's review worklist, in triage order: patients with an open safety alert first; then clinical
    risk (the 7-day mean BP above target, in bands of RISK_BAND_MMHG, then the days since a clinician last decided
    for the patient); then the oldest first. One query, whatever the length. Each item carries its age against
    REVIEW_SLA_HOURS."""
    now = now or timezone.now()
    sla = timedelta(hours=settings.REVIEW_SLA_HOURS)
    recs = _worklist_annotated(user, now).filter(status=RecommendationStatus.PENDING_REVIEW, tier=Tier.MAJOR)
    items = [_worklist_item(rec, now, sla) for rec in recs]
    return sorted(items, key=WorklistItem.sort_key)


def worklist_next_after(*, user: User, rec_id: int, now: datetime | None = None) -> Recommendation | None:
    """The worklist item after `rec_id` in triage order, for "next item" once it is signed (it has left the
    worklist by then): the first pending item that sorted after it, else the top of the worklist, else None."""
    now = now or timezone.now()
    items = worklist(user=user, now=now)
    # Its place as it was while pending: its own decision does not count as the patient's last review.
    signed = _worklist_annotated(user, now, ignore_decision_of=rec_id).filter(pk=rec_id).first()
    if signed is not None:
        key = _worklist_item(signed, now, timedelta(hours=settings.REVIEW_SLA_HOURS)).sort_key()
        later = [item for item in items if item.sort_key() > key and item.recommendation.pk != rec_id]
        if later:
            return later[0].recommendation
    rest = [item for item in items if item.recommendation.pk != rec_id]
    return rest[0].recommendation if rest else None


def recommendation_list_changed_since(*, user: User, since: datetime) -> QuerySet[Recommendation]:
    """What a patient's app must fetch again (`?updated_since=`): the recommendations made, delivered, answered or
    decided at or after `since`. A recommendation has no updated_at; these four times are every change it has."""
    changed = (
        Q(created_at__gte=since)
        | Q(delivered_at__gte=since)
        | Q(responded_at__gte=since)
        | Q(decision__decided_at__gte=since)
    )
    return recommendation_list_visible(user=user).filter(changed)
