"""Clinician–AI loop: a P0 alert nobody acknowledged in time is escalated along its care team's chain (DESIGN §2).

An alert opens owned by the first person of the chain (clinaiops/care/escalation_chain.py), who is notified at
once (clinaiops.care.services.alert_open). Every ALERT_ESCALATION_MINUTES after the last step with no
acknowledgement, the sweep makes the next person of the chain the owner and notifies them; the lead is last. When
the chain is spent, the whole care team is notified once and the alert stops escalating (it stays open, at the top
of every team member's worklist, until someone acknowledges it).

Each step is one transaction: a conditional UPDATE (still open, still at the step this sweep saw) whose count must
be 1, then the notifications and the audit event. Two sweeps running at once, or a sweep racing an
acknowledgement, therefore make each step at most once: the loser's UPDATE matches no row and it moves on.
Break-glass alerts (P1, security, for the safety officer) do not escalate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.escalation_chain import escalation_chain_for
from clinaiops.care.models import Alert, AlertPriority, AlertStatus, CareTeam, NotificationKind
from clinaiops.care.notifications import alert_notify
from clinaiops.core.models import Role, User


def _due(now: datetime) -> list[tuple[int, int, int]]:
    """(alert id, its step, its patient's care team id) of every open P0 whose last step is older than the timeout."""
    cutoff = now - timedelta(minutes=settings.ALERT_ESCALATION_MINUTES)
    return list(
        Alert.objects.filter(status=AlertStatus.OPEN, priority=AlertPriority.P0, escalation_done=False)
        .filter(Q(escalated_at__isnull=True, opened_at__lte=cutoff) | Q(escalated_at__lte=cutoff))
        .order_by("opened_at", "pk")
        .values_list("pk", "escalation_step", "patient__care_team_id")
    )


def _team_members(team: CareTeam) -> list[User]:
    return list(team.members.filter(role=Role.CLINICIAN, is_active=True).order_by("pk"))


def alert_escalate_step(*, alert_id: int, seen_step: int, team: CareTeam, chain: list[User], now: datetime) -> bool:
    """Take one escalation step of one alert, if it is still open at `seen_step`. Returns whether this call took it."""
    with transaction.atomic():
        still = Alert.objects.filter(
            pk=alert_id, status=AlertStatus.OPEN, escalation_step=seen_step, escalation_done=False
        )
        if seen_step < len(chain):
            recipient = chain[seen_step]
            if still.update(owner=recipient, escalation_step=seen_step + 1, escalated_at=now) != 1:
                return False
            recipients, kind, reason = [recipient], NotificationKind.ALERT_ESCALATED, "unacknowledged_timeout"
            to_user_id: int | None = recipient.pk
        else:
            if still.update(escalation_done=True, escalated_at=now) != 1:
                return False
            recipients, kind, reason = _team_members(team), NotificationKind.ALERT_TEAM, "escalation_chain_spent"
            to_user_id = None
        alert = Alert.objects.select_related("patient").get(pk=alert_id)
        alert_notify(recipients=recipients, kind=kind, alert=alert)
        audit_record(
            action=AuditAction.ALERT_ESCALATED,
            object_type="alert",
            object_id=alert_id,
            system_reason=reason,
            payload={
                "patient_id": alert.patient_id,
                "step": seen_step + 1,
                "to_user_id": to_user_id,
                "recipient_ids": sorted({user.pk for user in recipients}),
            },
        )
    return True


def alerts_escalate(*, now: datetime | None = None) -> int:
    """Take the due escalation step of every P0 alert nobody acknowledged within ALERT_ESCALATION_MINUTES of its
    last step; return how many steps were taken. Safe to run twice and concurrently (see the module docstring)."""
    now = now or timezone.now()
    due = _due(now)
    teams = {team.pk: team for team in CareTeam.objects.filter(pk__in={team_id for _, _, team_id in due})}
    chains = {team_id: escalation_chain_for(team=team) for team_id, team in teams.items()}
    return sum(
        alert_escalate_step(alert_id=alert_id, seen_step=step, team=teams[team_id], chain=chains[team_id], now=now)
        for alert_id, step, team_id in due
    )
