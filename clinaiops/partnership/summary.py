"""The visit summary: aggregated trends over a period (default the last 90 days), for a clinician's copy and a
plain-language patient's copy. Built here from the records, rendered by the portal (HTML and PDF).

What it holds: BP control (time in range, means, nocturnal dip, variability, week by week), the regimen changes
and who decided each one (a clinician, or the AI within the clinician's bounds), adherence and goal progress,
safety alerts, the AI's recommendations and what became of them, and the next follow-up.

The caller has scoped the patient (clinaiops.care.selectors) and records the read (patient_record_viewed).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind, Patient, Reading, RegimenChange
from clinaiops.core.models import Role
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import DecisionOutcome, Recommendation, RecommendationStatus, Tier
from clinaiops.partnership.followup import bp_in_range
from clinaiops.partnership.goals import GoalProgress
from clinaiops.partnership.models import CareNote
from clinaiops.partnership.selectors import (
    SAFETY_ALERT_KINDS,
    Adherence,
    FollowUpStatus,
    adherence_between,
    followup_status,
    goal_progress_for,
    notes_for_patient_view,
)
from inference.features import NIGHT_HOURS

DEFAULT_DAYS = 90
MIN_DAYS = 7
MAX_DAYS = 365
MAX_RECOMMENDATION_LINES = 25


@dataclass(frozen=True)
class WeekBP:
    start: date
    readings: int
    mean_sbp: float | None
    mean_dbp: float | None
    fraction_in_range: float | None

    @property
    def percent_in_range(self) -> int | None:
        return None if self.fraction_in_range is None else round(self.fraction_in_range * 100)


@dataclass(frozen=True)
class BPControl:
    readings: int
    in_range: int
    mean_sbp: float | None
    mean_dbp: float | None
    day_mean_sbp: float | None
    night_mean_sbp: float | None
    # 1 − night/day mean systolic (ESH: 10–20 % is a normal dip); None without both day and night readings.
    nocturnal_dip: float | None
    sbp_sd: float | None
    weeks: tuple[WeekBP, ...]

    @property
    def fraction_in_range(self) -> float | None:
        return self.in_range / self.readings if self.readings else None

    @property
    def percent_in_range(self) -> int | None:
        fraction = self.fraction_in_range
        return None if fraction is None else round(fraction * 100)

    @property
    def dip_words(self) -> str:
        if self.nocturnal_dip is None:
            return "not known (no night-time readings)"
        dip = self.nocturnal_dip
        pattern = (
            "normal dip" if 0.10 <= dip <= 0.20 else "little or no dip" if dip < 0.10 else "a larger than usual dip"
        )
        return f"{round(dip * 100)} % ({pattern})"


@dataclass(frozen=True)
class RegimenChangeLine:
    changed_at: datetime
    from_regimen: str
    to_regimen: str
    direction: str  # "raised" or "lowered"
    decided_by: str  # the clinician's copy
    decided_by_patient: str  # the patient's copy
    by_ai: bool


@dataclass(frozen=True)
class AlertLine:
    opened_at: datetime
    what: str
    what_patient: str
    status: str


@dataclass(frozen=True)
class RecommendationLine:
    created_at: datetime
    proposal: str  # "increase, step 2 → 3"
    proposal_patient: str  # "raise your medicine one step"
    route: str  # how the approval policy routed it
    outcome: str
    confidence: float


@dataclass(frozen=True)
class RecommendationCounts:
    total: int
    delivered_within_bounds: int
    reviewed: int
    accepted: int
    modified: int
    rejected: int
    waiting: int


@dataclass(frozen=True)
class VisitSummary:
    patient: Patient
    start: datetime
    end: datetime
    days: int
    bp: BPControl
    changes: tuple[RegimenChangeLine, ...]
    adherence: Adherence
    goals: tuple[GoalProgress, ...]
    alerts: tuple[AlertLine, ...]
    recommendations: tuple[RecommendationLine, ...]
    recommendation_counts: RecommendationCounts
    followup: FollowUpStatus
    notes_for_patient: tuple[CareNote, ...]
    regimen_now: str

    @property
    def changes_by_ai(self) -> int:
        return sum(1 for c in self.changes if c.by_ai)

    @property
    def changes_by_clinician(self) -> int:
        return len(self.changes) - self.changes_by_ai


def _mean(values: list[int]) -> float | None:
    return statistics.fmean(values) if values else None


def bp_control(readings: list[Reading], *, target_sbp: int, target_dbp: int, start: datetime) -> BPControl:
    """BP control over the readings: time in range (the follow-up rule's definition), means, the nocturnal dip
    (night = 00:00–05:59 local time, as the model's feature), and weekly means from `start`."""
    in_range = [bp_in_range(r.systolic, r.diastolic, target_sbp=target_sbp, target_dbp=target_dbp) for r in readings]
    night = [timezone.localtime(r.taken_at).hour in NIGHT_HOURS for r in readings]
    day_sbp = [r.systolic for r, is_night in zip(readings, night, strict=True) if not is_night]
    night_sbp = [r.systolic for r, is_night in zip(readings, night, strict=True) if is_night]
    day_mean, night_mean = _mean(day_sbp), _mean(night_sbp)
    dip = 1 - night_mean / day_mean if day_mean and night_mean is not None else None
    weeks: list[WeekBP] = []
    first_day = timezone.localdate(start)
    buckets: dict[int, list[tuple[Reading, bool]]] = {}
    for reading, ok in zip(readings, in_range, strict=True):
        index = (timezone.localdate(reading.taken_at) - first_day).days // 7
        buckets.setdefault(index, []).append((reading, ok))
    last_index = max(buckets) if buckets else -1
    for index in range(last_index + 1):
        items = buckets.get(index, [])
        weeks.append(
            WeekBP(
                start=first_day + timedelta(weeks=index),
                readings=len(items),
                mean_sbp=_mean([r.systolic for r, _ in items]),
                mean_dbp=_mean([r.diastolic for r, _ in items]),
                fraction_in_range=sum(ok for _, ok in items) / len(items) if items else None,
            )
        )
    return BPControl(
        readings=len(readings),
        in_range=sum(in_range),
        mean_sbp=_mean([r.systolic for r in readings]),
        mean_dbp=_mean([r.diastolic for r in readings]),
        day_mean_sbp=day_mean,
        night_mean_sbp=night_mean,
        nocturnal_dip=dip,
        sbp_sd=statistics.stdev(float(r.systolic) for r in readings) if len(readings) >= 2 else None,
        weeks=tuple(weeks),
    )


def _recommendation_id(cause: str) -> int | None:
    kind, _, ref = cause.partition(":")
    return int(ref) if kind == "recommendation" and ref.isdigit() else None


def _change_line(change: RegimenChange, recs: dict[int, Recommendation]) -> RegimenChangeLine:
    direction = "raised" if change.to_step > change.from_step else "lowered"
    rec_id = _recommendation_id(change.cause)
    rec = recs.get(rec_id) if rec_id is not None else None
    decision = getattr(rec, "decision", None) if rec is not None else None
    if decision is not None:
        name = decision.clinician.signature_name
        verb = (
            "modified the AI's proposal"
            if decision.outcome == DecisionOutcome.MODIFIED
            else "accepted the AI's proposal"
        )
        by, by_patient, ai = f"Clinician: {name} ({verb} on review)", f"your care team ({name})", False
    elif rec is not None:
        by = "AI, within the clinician's bounds (delivered without review)"
        by_patient = "the app's suggestion, within limits your care team set"
        ai = True
    elif change.changed_by is not None and change.changed_by.role == Role.CLINICIAN:
        name = change.changed_by.signature_name
        by, by_patient, ai = f"Clinician: {name}", f"your care team ({name})", False
    elif change.cause.startswith("simulated_history"):
        by, by_patient, ai = "Clinician (care before the AI was used)", "your care team", False
    else:
        by, by_patient, ai = "Recorded by the system", "your care team", False
    return RegimenChangeLine(
        changed_at=change.changed_at,
        from_regimen=regimen_label(change.from_step),
        to_regimen=regimen_label(change.to_step),
        direction=direction,
        decided_by=by,
        decided_by_patient=by_patient,
        by_ai=ai,
    )


_ALERT_PATIENT: dict[str, str] = {
    AlertKind.HYPERTENSIVE_CRISIS: "a very high reading; your care team was told at once",
    AlertKind.SUSTAINED_HYPOTENSION: "low readings; your care team was told at once",
}

_PATIENT_ACTION = {
    "increase": "raise your medicine one step",
    "decrease": "lower your medicine one step",
    "maintain": "keep your medicine the same",
}


def _recommendation_line(rec: Recommendation) -> RecommendationLine:
    decision = getattr(rec, "decision", None)
    route = "Sent to clinician review" if rec.tier == Tier.MAJOR else "Delivered within the clinician's bounds"
    if decision is not None:
        name = decision.clinician.signature_name
        if decision.outcome == DecisionOutcome.ACCEPTED:
            outcome = f"Accepted by {name}"
        elif decision.outcome == DecisionOutcome.MODIFIED:
            outcome = f"Modified by {name} to: {regimen_label(decision.to_step)}"
        else:
            outcome = f"Rejected by {name}"
        if rec.status in (RecommendationStatus.ACKNOWLEDGED, RecommendationStatus.DECLINED):
            outcome += f"; {rec.get_status_display().lower()}"
    else:
        outcome = rec.get_status_display()
    return RecommendationLine(
        created_at=rec.created_at,
        proposal=f"{rec.action}, step {rec.from_step} → {rec.to_step}",
        proposal_patient=_PATIENT_ACTION.get(rec.action, "review your medicine"),
        route=route,
        outcome=outcome,
        confidence=rec.confidence,
    )


def visit_summary_build(*, patient: Patient, days: int = DEFAULT_DAYS, now: datetime | None = None) -> VisitSummary:
    """The summary of the last `days` days ending `now`."""
    end = now or timezone.now()
    start = end - timedelta(days=days)
    readings = list(
        Reading.objects.filter(patient=patient, taken_at__gte=start, taken_at__lte=end).order_by("taken_at")
    )
    recs = list(
        Recommendation.objects.filter(patient=patient, created_at__gte=start, created_at__lte=end)
        .select_related("decision__clinician")
        .order_by("-created_at", "-pk")
    )
    changes = list(
        RegimenChange.objects.filter(patient=patient, changed_at__gte=start, changed_at__lte=end)
        .select_related("changed_by")
        .order_by("changed_at", "pk")
    )
    # A change may come from a recommendation made before the period; fetch those too.
    cause_ids = {rid for c in changes if (rid := _recommendation_id(c.cause)) is not None}
    by_id = {rec.pk: rec for rec in recs}
    missing = cause_ids - by_id.keys()
    if missing:
        for rec in Recommendation.objects.filter(pk__in=missing, patient=patient).select_related("decision__clinician"):
            by_id[rec.pk] = rec
    alerts = Alert.objects.filter(
        patient=patient, kind__in=SAFETY_ALERT_KINDS, opened_at__gte=start, opened_at__lte=end
    ).order_by("opened_at")
    decided = [r for r in recs if getattr(r, "decision", None) is not None]
    counts = RecommendationCounts(
        total=len(recs),
        delivered_within_bounds=sum(1 for r in recs if r.tier == Tier.MINOR),
        reviewed=len(decided),
        accepted=sum(1 for r in decided if r.decision.outcome == DecisionOutcome.ACCEPTED),
        modified=sum(1 for r in decided if r.decision.outcome == DecisionOutcome.MODIFIED),
        rejected=sum(1 for r in decided if r.decision.outcome == DecisionOutcome.REJECTED),
        waiting=sum(1 for r in recs if r.status == RecommendationStatus.PENDING_REVIEW),
    )
    return VisitSummary(
        patient=patient,
        start=start,
        end=end,
        days=days,
        bp=bp_control(readings, target_sbp=patient.target_sbp, target_dbp=patient.target_dbp, start=start),
        changes=tuple(_change_line(c, by_id) for c in changes),
        adherence=adherence_between(patient, start=timezone.localdate(start), end=timezone.localdate(end)),
        goals=tuple(goal_progress_for(patient, now=end)),
        alerts=tuple(
            AlertLine(
                opened_at=a.opened_at,
                what=a.get_kind_display(),
                what_patient=_ALERT_PATIENT.get(a.kind, "an alert about your blood pressure"),
                status=a.get_status_display(),
            )
            for a in alerts
        ),
        recommendations=tuple(_recommendation_line(r) for r in recs[:MAX_RECOMMENDATION_LINES]),
        recommendation_counts=counts,
        followup=followup_status(patient, now=end),
        notes_for_patient=tuple(notes_for_patient_view(patient).filter(written_at__gte=start, written_at__lte=end)),
        regimen_now=regimen_label(patient.current_step),
    )
