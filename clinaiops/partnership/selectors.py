"""Reads of the patient–clinician loop.

Functions that take a `patient` expect the caller to have scoped it already (clinaiops.care.selectors
`patient_get_visible` for staff, `patient_for_user` for the patient). `followups_overdue` scopes itself: it
answers only for the patients of the user's own care teams.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from clinaiops.care.escalation_chain import escalation_chain_for
from clinaiops.care.models import Alert, AlertKind, CareTeam, DoseLog, Patient, Reading
from clinaiops.core.models import Role, User
from clinaiops.partnership.followup import (
    FOLLOWUP_WINDOW_DAYS,
    STABLE_IN_RANGE,
    BPWindowStats,
    FollowUpRule,
    bp_window_stats,
    followup_due,
    followup_rule,
)
from clinaiops.partnership.goals import (
    PROGRESS_WINDOW_DAYS,
    GoalKindCode,
    GoalProgress,
    ProgressStatus,
    checkin_observed,
    lifestyle_progress,
)
from clinaiops.partnership.models import CareNote, FollowUpPlan, GoalCheckIn, LifestyleGoal

SAFETY_ALERT_KINDS = (AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION)


# --- Notes ---------------------------------------------------------------------------------------------------


def notes_for_patient_view(patient: Patient) -> QuerySet[CareNote]:
    """The notes the patient may read (the patient API and the patient's copy of the visit summary): only those
    the clinician marked visible. Clinical notes stay with the care team."""
    return CareNote.objects.filter(patient=patient, visible_to_patient=True).select_related("author")


def notes_for_care_team(patient: Patient) -> QuerySet[CareNote]:
    """Every note on the patient, newest first, for the care team's pages."""
    return CareNote.objects.filter(patient=patient).select_related("author")


# --- Goals ---------------------------------------------------------------------------------------------------


def goals_active(patient: Patient) -> list[LifestyleGoal]:
    return list(LifestyleGoal.objects.filter(patient=patient, ended_at__isnull=True).select_related("set_by"))


def _readings_in(patient: Patient, start: datetime, end: datetime) -> list[tuple[int, int]]:
    return list(
        Reading.objects.filter(patient=patient, taken_at__gte=start, taken_at__lte=end).values_list(
            "systolic", "diastolic"
        )
    )


def bp_target_progress(
    patient: Patient, *, now: datetime, days: int = PROGRESS_WINDOW_DAYS, stats: BPWindowStats | None = None
) -> GoalProgress:
    """The BP target as a shared goal: on track when at least 80 % of readings are in range (the stable line of
    the follow-up rule), from the readings themselves (or from `stats` of the same window, already computed)."""
    if stats is None:
        stats = bp_window_stats(
            _readings_in(patient, now - timedelta(days=days), now),
            target_sbp=patient.target_sbp,
            target_dbp=patient.target_dbp,
        )
    target = f"below {patient.target_sbp}/{patient.target_dbp} mmHg"
    patient_target = f"Keep your blood pressure below {patient.target_sbp}/{patient.target_dbp}"
    fraction = stats.fraction_in_range
    if fraction is None:
        return GoalProgress(
            "bp_target", "Blood pressure", target, patient_target, ProgressStatus.NO_DATA, "No data yet",
            f"no readings in the last {days} days", None,
        )  # fmt: skip
    return GoalProgress(
        kind="bp_target",
        label="Blood pressure",
        target=target,
        patient_target=patient_target,
        status=ProgressStatus.MET if fraction >= STABLE_IN_RANGE else ProgressStatus.NOT_MET,
        current=f"{round(fraction * 100)} % of readings in range",
        basis=f"{stats.readings} readings in the last {days} days",
        fraction=fraction,
    )


@dataclass(frozen=True)
class Adherence:
    taken: int
    logged: int

    @property
    def fraction(self) -> float | None:
        return self.taken / self.logged if self.logged else None

    @property
    def percent(self) -> int | None:
        fraction = self.fraction
        return None if fraction is None else round(fraction * 100)


def adherence_between(patient: Patient, *, start: date, end: date) -> Adherence:
    counts = DoseLog.objects.filter(patient=patient, day__gte=start, day__lte=end).aggregate(
        logged=Count("pk"), taken=Count("pk", filter=Q(taken=True))
    )
    return Adherence(taken=counts["taken"] or 0, logged=counts["logged"] or 0)


def goal_progress_for(
    patient: Patient, *, now: datetime | None = None, bp_stats: BPWindowStats | None = None
) -> list[GoalProgress]:
    """Every shared goal with its progress over the last 28 days: the BP target first, then the lifestyle goals.
    Adherence from the dose log; salt, activity and sleep from the patient's check-ins; "no data yet" otherwise."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    start = today - timedelta(days=PROGRESS_WINDOW_DAYS - 1)
    progress = [bp_target_progress(patient, now=now, stats=bp_stats)]
    goals = goals_active(patient)
    checkins: dict[str, list[GoalCheckIn]] = defaultdict(list)
    if any(goal.kind != GoalKindCode.ADHERENCE for goal in goals):
        for checkin in GoalCheckIn.objects.filter(patient=patient, day__gte=start, day__lte=today):
            checkins[checkin.kind].append(checkin)
    for goal in goals:
        kind = GoalKindCode(goal.kind)
        if kind is GoalKindCode.ADHERENCE:
            adherence = adherence_between(patient, start=start, end=today)
            fraction = adherence.fraction
            progress.append(
                lifestyle_progress(
                    kind,
                    goal.target_value,
                    observed=None if fraction is None else fraction * 100,
                    basis=f"{adherence.taken} of {adherence.logged} logged doses taken in the last "
                    f"{PROGRESS_WINDOW_DAYS} days"
                    if adherence.logged
                    else f"no doses logged in the last {PROGRESS_WINDOW_DAYS} days",
                )
            )
            continue
        entries = checkins[kind.value]
        covered = (today - min(c.day for c in entries)).days + 1 if entries else 0
        progress.append(
            lifestyle_progress(
                kind,
                goal.target_value,
                observed=checkin_observed(kind, [c.value for c in entries], days_covered=covered),
                basis=f"{len(entries)} check-in{'s' if len(entries) != 1 else ''} by the patient in the last "
                f"{PROGRESS_WINDOW_DAYS} days"
                if entries
                else f"no check-ins by the patient in the last {PROGRESS_WINDOW_DAYS} days",
            )
        )
    return progress


# --- Follow-up -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpStatus:
    """The rule's answer for a patient, and the date in force (the clinician's override, if any)."""

    patient_id: int
    rule: FollowUpRule
    stats: BPWindowStats  # the readings of the rule's window against the target
    anchor_on: date  # the last follow-up, or enrolment
    last_followup_on: date | None
    rule_due_on: date
    due_on: date
    overridden: bool
    override_reason: str
    override_by: str
    override_at: datetime | None
    today: date

    @property
    def days_overdue(self) -> int:
        return max(0, (self.today - self.due_on).days)

    @property
    def overdue(self) -> bool:
        return self.due_on < self.today

    @property
    def reason(self) -> str:
        """Why this date: the clinician's reason when overridden, the rule's otherwise."""
        if self.overridden:
            return f"Set by {self.override_by}: {self.override_reason}"
        return self.rule.reason

    @property
    def patient_reason(self) -> str:
        return "as agreed with your care team" if self.overridden else self.rule.patient_reason


def followup_statuses(patients: list[Patient], *, now: datetime | None = None) -> dict[int, FollowUpStatus]:
    """The follow-up status of each patient, in four queries whatever their number (readings, alerts, plans;
    the patients are given)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    since = now - timedelta(days=FOLLOWUP_WINDOW_DAYS)
    ids = [p.pk for p in patients]
    readings: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for patient_id, sbp, dbp in Reading.objects.filter(
        patient_id__in=ids, taken_at__gte=since, taken_at__lte=now
    ).values_list("patient_id", "systolic", "diastolic"):
        readings[patient_id].append((sbp, dbp))
    alerts = dict(
        Alert.objects.filter(patient_id__in=ids, kind__in=SAFETY_ALERT_KINDS, opened_at__gte=since, opened_at__lte=now)
        .values("patient_id")
        .annotate(n=Count("pk"))
        .values_list("patient_id", "n")
    )
    plans = {
        plan.patient_id: plan for plan in FollowUpPlan.objects.filter(patient_id__in=ids).select_related("override_by")
    }
    statuses = {}
    for patient in patients:
        stats = bp_window_stats(readings[patient.pk], target_sbp=patient.target_sbp, target_dbp=patient.target_dbp)
        rule = followup_rule(stats, alerts=alerts.get(patient.pk, 0))
        plan = plans.get(patient.pk)
        last = plan.last_followup_on if plan else None
        anchor = last or timezone.localdate(patient.enrolled_at)
        rule_due = followup_due(anchor, rule)
        override = plan.override_due_on if plan else None
        statuses[patient.pk] = FollowUpStatus(
            patient_id=patient.pk,
            rule=rule,
            stats=stats,
            anchor_on=anchor,
            last_followup_on=last,
            rule_due_on=rule_due,
            due_on=override or rule_due,
            overridden=override is not None,
            override_reason=plan.override_reason if plan and override else "",
            override_by=(plan.override_by.signature_name if plan and plan.override_by else ""),
            override_at=plan.override_at if plan else None,
            today=today,
        )
    return statuses


def followup_status(patient: Patient, *, now: datetime | None = None) -> FollowUpStatus:
    return followup_statuses([patient], now=now)[patient.pk]


@dataclass(frozen=True)
class OverdueFollowUp:
    """One overdue follow-up, for the clinician's worklist."""

    patient: Patient
    due_on: date
    reason: str
    days_overdue: int
    category: str  # the rule's category in words ("Volatile"), or "Set by a clinician"


def followups_overdue(*, user: User, now: datetime | None = None) -> list[OverdueFollowUp]:
    """The overdue follow-ups of the patients in `user`'s care teams (not those reached by emergency access),
    most overdue first. Other roles get none. Five queries whatever the number of patients."""
    if user.role != Role.CLINICIAN:
        return []
    patients = list(Patient.objects.filter(care_team__members=user).select_related("care_team"))
    statuses = followup_statuses(patients, now=now)
    overdue = [
        OverdueFollowUp(
            patient=patient,
            due_on=status.due_on,
            reason=status.reason,
            days_overdue=status.days_overdue,
            category="Set by a clinician" if status.overridden else status.rule.label,
        )
        for patient in patients
        if (status := statuses[patient.pk]).overdue
    ]
    return sorted(overdue, key=lambda item: (-item.days_overdue, item.patient.code))


# --- The patient page's section ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarePlanPanel:
    """What the patient page shows of the care plan: the next follow-up, the goals' progress and the notes."""

    followup: FollowUpStatus
    goals: tuple[GoalProgress, ...]
    notes_total: int
    notes_visible: int


def care_plan_panel(patient: Patient, *, now: datetime | None = None) -> CarePlanPanel:
    """Five queries with no lifestyle goals (readings, alerts and plan for the follow-up, goals, notes); the
    follow-up's 28-day readings serve the BP goal too. Check-in goals add one, a medicine-taking goal one."""
    now = now or timezone.now()
    counts = CareNote.objects.filter(patient=patient).aggregate(
        total=Count("pk"), visible=Count("pk", filter=Q(visible_to_patient=True))
    )
    followup = followup_status(patient, now=now)
    return CarePlanPanel(
        followup=followup,
        goals=tuple(goal_progress_for(patient, now=now, bp_stats=followup.stats)),
        notes_total=counts["total"] or 0,
        notes_visible=counts["visible"] or 0,
    )


# --- The patient's own view (issue 12: the mobile API's goals, notes and care team) --------------------------


def staff_display_name(user: User) -> str:
    """A staff member's name as the patient sees it: the printed name or the full name, never the username (it
    can be an e-mail address or a login the patient has no business knowing); the role's label when neither is
    set."""
    return user.printed_name or user.get_full_name() or Role(user.role).label


def notes_for_patient_between(
    patient: Patient, *, since: date | None = None, until: date | None = None
) -> QuerySet[CareNote]:
    """The notes the patient may read (`notes_for_patient_view`), newest first, written from `since` to `until`
    inclusive, both calendar days in the clinic's time zone. The day is compared in the database (`__date`), so
    no date at the edge of the calendar overflows a datetime in Python."""
    notes = notes_for_patient_view(patient).order_by("-written_at", "-pk")
    if since is not None:
        notes = notes.filter(written_at__date__gte=since)
    if until is not None:
        notes = notes.filter(written_at__date__lte=until)
    return notes


class GoalTrend(StrEnum):
    IMPROVING = "improving"
    STEADY = "steady"
    WORSENING = "worsening"
    UNKNOWN = "unknown"


# The previous window is the same length, just before: "the 4 weeks before".
TREND_LABELS: dict[GoalTrend, str] = {
    GoalTrend.IMPROVING: "Better than the 4 weeks before",
    GoalTrend.STEADY: "About the same as the 4 weeks before",
    GoalTrend.WORSENING: "Not as good as the 4 weeks before",
    GoalTrend.UNKNOWN: "Not enough information to compare yet",
}
# How far the progress fraction (0..1 towards the target) must move to count as a change: a reading or a check-in
# more or less in a window moves it by a few points, which is noise, not a trend.
TREND_MIN_CHANGE = 0.05


def goal_trend(current: float | None, previous: float | None) -> GoalTrend:
    """Compare two windows' progress fractions (higher is closer to the target, whichever way the goal points)."""
    if current is None or previous is None:
        return GoalTrend.UNKNOWN
    if current - previous >= TREND_MIN_CHANGE:
        return GoalTrend.IMPROVING
    if previous - current >= TREND_MIN_CHANGE:
        return GoalTrend.WORSENING
    return GoalTrend.STEADY


@dataclass(frozen=True)
class GoalWithTrend:
    """One goal's progress over the last 28 days, and how it compares with the 28 days before."""

    progress: GoalProgress
    previous: GoalProgress | None
    trend: GoalTrend

    @property
    def trend_label(self) -> str:
        return TREND_LABELS[self.trend]


def goal_progress_with_trend(patient: Patient, *, now: datetime | None = None) -> list[GoalWithTrend]:
    """`goal_progress_for` over the last 28 days and over the 28 days before, each goal with its trend. The earlier
    window is judged against today's target (the question is "am I getting closer to my goal"). Twice the queries
    of `goal_progress_for`, whatever the number of readings: at most eight."""
    now = now or timezone.now()
    current = goal_progress_for(patient, now=now)
    before = {p.kind: p for p in goal_progress_for(patient, now=now - timedelta(days=PROGRESS_WINDOW_DAYS))}
    result = []
    for progress in current:
        previous = before.get(progress.kind)
        trend = goal_trend(progress.fraction, previous.fraction if previous else None)
        result.append(GoalWithTrend(progress=progress, previous=previous, trend=trend))
    return result


@dataclass(frozen=True)
class CareTeamMember:
    """A clinician on the patient's care team, as the patient sees them: a name and a role, no contact details
    (the account's e-mail and username stay with the staff)."""

    user_id: int
    name: str
    role: str
    is_lead: bool


@dataclass(frozen=True)
class CareTeamForPatient:
    name: str
    members: tuple[CareTeamMember, ...]
    # Who to contact first: the first person of the team's escalation chain, who is also the first person the
    # patient's safety alerts go to (clinaiops.care.escalation_chain); None for a team with no active clinician.
    contact_first: CareTeamMember | None


def care_team_for_patient_view(patient: Patient) -> CareTeamForPatient:
    """The patient's care team: its active clinicians in the order they joined (not service accounts such as a
    device gateway, nor people whose account is closed), the lead marked, and who to contact first. Four queries
    (members, the chain's two, the lead)."""
    team = patient.care_team
    through = CareTeam.members.through
    rows = (
        through.objects.filter(careteam_id=team.pk, user__role=Role.CLINICIAN, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    members = tuple(
        CareTeamMember(
            user_id=row.user.pk,
            name=staff_display_name(row.user),
            role="Care team lead" if row.user.pk == team.lead_id else Role(row.user.role).label,
            is_lead=row.user.pk == team.lead_id,
        )
        for row in rows
    )
    chain = escalation_chain_for(team=team)
    by_id = {member.user_id: member for member in members}
    contact = by_id.get(chain[0].pk) if chain else None
    return CareTeamForPatient(name=team.name, members=members, contact_first=contact)
