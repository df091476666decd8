"""Serializers of the patient's care plan and alerts (issue 12): goals, notes, the next follow-up, the care team,
the safety alerts. Read-only, and in the patient's words: every code (`status`, `trend`, `kind`) comes with the
sentence an app shows beside it, and no staff e-mail address or username is ever part of a response."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from clinaiops.api.serializers import CHOICE_MESSAGES, AlertOutSerializer
from clinaiops.care.guidance import URGENT_HELP, alert_title
from clinaiops.care.models import Alert, AlertStatus
from clinaiops.core.models import Role
from clinaiops.partnership.followup import FOLLOWUP_WINDOW_DAYS
from clinaiops.partnership.goals import GoalKindCode, ProgressStatus
from clinaiops.partnership.models import CareNote
from clinaiops.partnership.selectors import (
    CareTeamForPatient,
    CareTeamMember,
    FollowUpStatus,
    GoalTrend,
    GoalWithTrend,
    staff_display_name,
)

# --- Goals ---------------------------------------------------------------------------------------------------

# What the patient's copy of the visit summary says for each status (portal/partnership/_summary_patient.html).
PATIENT_STATUS_WORDS: dict[ProgressStatus, str] = {
    ProgressStatus.MET: "You are on track.",
    ProgressStatus.NOT_MET: "Not there yet; keep going.",
    ProgressStatus.NO_DATA: "We have no information on this yet.",
}
GOAL_KINDS = ["bp_target", *(kind.value for kind in GoalKindCode)]


class GoalSerializer(serializers.Serializer[GoalWithTrend]):
    kind = serializers.ChoiceField(
        choices=GOAL_KINDS,
        source="progress.kind",
        help_text="Which goal: the blood-pressure target (always first), then salt, activity, sleep, medicine.",
    )
    name = serializers.CharField(source="progress.label", help_text="The goal's name, for a heading.")
    goal = serializers.CharField(
        source="progress.patient_target", help_text="The goal as a sentence, with its target and unit."
    )
    target = serializers.CharField(source="progress.target", help_text="The target with its unit.")
    current = serializers.CharField(
        source="progress.current",
        help_text=f"Where the patient is over the last {FOLLOWUP_WINDOW_DAYS} days, with its unit; "
        "'No data yet' without readings, check-ins or logged doses.",
    )
    status = serializers.ChoiceField(
        choices=[s.value for s in ProgressStatus], source="progress.status", help_text="met, not_met or no_data."
    )
    status_text = serializers.SerializerMethodField(help_text="The status in the patient's words.")
    progress = serializers.FloatField(
        source="progress.fraction",
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text="0 to 1: how far the current value is towards the target (1 = met), for a progress bar; "
        "null without data.",
    )
    trend = serializers.ChoiceField(
        choices=[t.value for t in GoalTrend],
        help_text=f"Compared with the {FOLLOWUP_WINDOW_DAYS} days before: improving, steady, worsening, or "
        "unknown when either period has no data.",
    )
    trend_text = serializers.CharField(source="trend_label", help_text="The trend in the patient's words.")
    previous = serializers.SerializerMethodField(
        help_text=f"The value over the {FOLLOWUP_WINDOW_DAYS} days before, with its unit; null without data."
    )

    def get_status_text(self, goal: GoalWithTrend) -> str:
        return PATIENT_STATUS_WORDS[goal.progress.status]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_previous(self, goal: GoalWithTrend) -> str | None:
        previous = goal.previous
        if previous is None or previous.status is ProgressStatus.NO_DATA:
            return None
        return previous.current


GOALS_EXAMPLE = {
    "window_days": FOLLOWUP_WINDOW_DAYS,
    "results": [
        {
            "kind": "bp_target", "name": "Blood pressure", "goal": "Keep your blood pressure below 130/80",
            "target": "below 130/80 mmHg", "current": "83 % of readings in range", "status": "met",
            "status_text": "You are on track.", "progress": 0.83, "trend": "improving",
            "trend_text": "Better than the 4 weeks before", "previous": "61 % of readings in range",
        },
        {
            "kind": "sodium", "name": "Salt (sodium)", "goal": "Keep salt (sodium) to at most 1,500 mg a day",
            "target": "1,500 mg a day", "current": "1,800 mg a day", "status": "not_met",
            "status_text": "Not there yet; keep going.", "progress": 0.83, "trend": "unknown",
            "trend_text": "Not enough information to compare yet", "previous": None,
        },
    ],
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("Two goals", value=GOALS_EXAMPLE, response_only=True)])
class GoalListSerializer(serializers.Serializer[dict[str, Any]]):
    """The patient's shared goals with their progress: the blood-pressure target first, then each active lifestyle
    goal. Not paginated: at most five, one per kind."""

    window_days = serializers.IntegerField(help_text="The days each goal's progress is measured over.")
    results = GoalSerializer(many=True, help_text="The goals, the blood-pressure target first.")


# --- Notes ---------------------------------------------------------------------------------------------------


class NoteFilterSerializer(serializers.Serializer[dict[str, Any]]):
    since = serializers.DateField(
        required=False, help_text="Only notes written on this day or later (YYYY-MM-DD, the clinic's time zone)."
    )
    until = serializers.DateField(
        required=False, help_text="Only notes written on this day or earlier (YYYY-MM-DD, the clinic's time zone)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since: date | None = attrs.get("since")
        until: date | None = attrs.get("until")
        if since is not None and until is not None and since > until:
            raise serializers.ValidationError({"until": ["Choose a day on or after `since`."]})
        return attrs


class NoteAuthorSerializer(serializers.Serializer[Any]):
    name = serializers.SerializerMethodField(help_text="The author's name as printed; never a username or e-mail.")
    role = serializers.SerializerMethodField(help_text="The author's role, in words (for example 'Clinician').")

    def get_name(self, user: Any) -> str:
        return staff_display_name(user)

    def get_role(self, user: Any) -> str:
        return str(Role(user.role).label)


NOTE_EXAMPLE = {
    "id": 41,
    "written_at": "2026-11-20T09:12:00Z",
    "text": "Good progress on the walking. Keep the evening readings going until we speak next month.",
    "author": {"name": "Dr Amira Haddad", "role": "Clinician"},
}


@extend_schema_serializer(examples=[OpenApiExample("A note", value=NOTE_EXAMPLE, response_only=True)])
class NoteSerializer(serializers.ModelSerializer[CareNote]):
    """A note the care team wrote for the patient to read. Notes the team keeps to itself never appear."""

    text = serializers.CharField(source="body", help_text="The note, as the clinician wrote it.")
    author = NoteAuthorSerializer(help_text="Who wrote it.")

    class Meta:
        model = CareNote
        fields = ["id", "written_at", "text", "author"]
        extra_kwargs = {
            "id": {"help_text": "The note's id."},
            "written_at": {"help_text": "When it was written (UTC)."},
        }


# --- Follow-up -----------------------------------------------------------------------------------------------


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


FOLLOWUP_EXAMPLE = {
    "due_on": "2027-02-12",
    "overdue": False,
    "reason": "because your blood pressure has been steady",
    "text": "Your care team plans to review your care by 12 Feb 2027, because your blood pressure has been steady.",
    "set_by_care_team": False,
    "last_followup_on": "2026-11-20",
}


@extend_schema_serializer(examples=[OpenApiExample("Next review", value=FOLLOWUP_EXAMPLE, response_only=True)])
class FollowUpSerializer(serializers.Serializer[FollowUpStatus]):
    """When the care team plans to review the patient's care next, and why. The date is the adaptive rule's
    (clinaiops.partnership.followup) unless a clinician set one by hand; either way the reason is in plain words,
    without numbers or thresholds, and a clinician's own reason text stays with the care team."""

    due_on = serializers.DateField(help_text="The day the review is due by.")
    overdue = serializers.BooleanField(help_text="True once the day has passed and the review has not been held.")
    reason = serializers.CharField(source="patient_reason", help_text="Why this date, in plain words.")
    text = serializers.SerializerMethodField(help_text="One sentence for the app to show.")
    set_by_care_team = serializers.BooleanField(
        source="overridden", help_text="True when a clinician set the date by hand instead of the rule."
    )
    last_followup_on = serializers.DateField(
        allow_null=True, help_text="The last review the care team recorded; null if none yet."
    )

    def get_text(self, status: FollowUpStatus) -> str:
        if status.overdue:
            return f"Your care team will be in touch soon to review your care, {status.patient_reason}."
        return f"Your care team plans to review your care by {_day(status.due_on)}, {status.patient_reason}."


# --- The care team -------------------------------------------------------------------------------------------


class CareTeamMemberSerializer(serializers.Serializer[CareTeamMember]):
    name = serializers.CharField(help_text="The clinician's name as printed; never a username or e-mail.")
    role = serializers.CharField(help_text="Their role, in words ('Clinician', 'Care team lead').")
    is_lead = serializers.BooleanField(help_text="True for the team's lead.")


CARE_TEAM_EXAMPLE = {
    "name": "Hypertension clinic",
    "members": [
        {"name": "Dr Amira Haddad", "role": "Clinician", "is_lead": False},
        {"name": "Dr Tom Okafor", "role": "Care team lead", "is_lead": True},
    ],
    "contact_first": {"name": "Dr Amira Haddad", "role": "Clinician", "is_lead": False},
    "urgent_help": URGENT_HELP,
}


@extend_schema_serializer(examples=[OpenApiExample("A care team", value=CARE_TEAM_EXAMPLE, response_only=True)])
class CareTeamSerializer(serializers.Serializer[CareTeamForPatient]):
    """The patient's care team: the clinicians on it, with names and roles only."""

    name = serializers.CharField(help_text="The care team's name.")
    members = CareTeamMemberSerializer(many=True, help_text="Its active clinicians, in the order they joined.")
    contact_first = CareTeamMemberSerializer(
        allow_null=True,
        help_text="Who to contact first: the first person the patient's safety alerts go to (the team's escalation "
        "chain). Null if the team has no active clinician.",
    )
    urgent_help = serializers.SerializerMethodField(help_text="When not to wait for the care team, in plain words.")

    def get_urgent_help(self, team: CareTeamForPatient) -> str:
        return URGENT_HELP


# --- Alerts --------------------------------------------------------------------------------------------------

ALERT_STATUS_ALL = "all"
ALERT_STATUS_WORDS: dict[str, str] = {
    AlertStatus.OPEN: "Your care team has been alerted.",
    AlertStatus.ACKNOWLEDGED: "Your care team has seen this and is dealing with it.",
    AlertStatus.RESOLVED: "Closed by your care team.",
}


class AlertFilterSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(
        choices=[*AlertStatus.values, ALERT_STATUS_ALL],
        required=False,
        default=AlertStatus.OPEN,
        error_messages=CHOICE_MESSAGES,
        help_text="Which alerts: open (the default), acknowledged, resolved, or all.",
    )


ALERT_EXAMPLE = {
    "id": 7,
    "kind": "hypertensive_crisis",
    "title": "Very high blood pressure",
    "priority": "P0",
    "status": "open",
    "status_text": ALERT_STATUS_WORDS[AlertStatus.OPEN],
    "opened_at": "2026-11-21T07:31:02Z",
    "acknowledged_at": None,
    "guidance": "Your blood pressure is very high. Sit quietly, wait 5 minutes and measure again. …",
}


@extend_schema_serializer(examples=[OpenApiExample("An open crisis", value=ALERT_EXAMPLE, response_only=True)])
class PatientAlertSerializer(AlertOutSerializer):
    """A safety alert on the patient's own readings or symptoms, with what to do now. Alerts about staff access
    to the record (break-glass) are not listed here: the patient reads that access in /me/access-log/."""

    title = serializers.SerializerMethodField(help_text="The alert's name in the patient's words.")
    status_text = serializers.SerializerMethodField(help_text="Where the care team is with it, in plain words.")

    class Meta(AlertOutSerializer.Meta):
        model = Alert
        fields = [
            "id", "kind", "title", "priority", "status", "status_text", "opened_at", "acknowledged_at", "guidance",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The alert's id."},
            "kind": {"help_text": "hypertensive_crisis or sustained_hypotension."},
            "priority": {"help_text": "P0: the care team is told at once and the alert escalates until someone acts."},
            "status": {"help_text": "open, acknowledged (a clinician has it in hand) or resolved."},
            "opened_at": {"help_text": "When the alert was raised (UTC)."},
            "acknowledged_at": {"help_text": "When a clinician acknowledged it; null while open."},
        }

    def get_title(self, alert: Alert) -> str:
        return alert_title(alert.kind)

    def get_status_text(self, alert: Alert) -> str:
        return ALERT_STATUS_WORDS.get(alert.status, "")
