"""A care team's escalation chain (DESIGN §2): the ordered people an unacknowledged P0 alert goes to, one after
another, every ALERT_ESCALATION_MINUTES.

The chain is the team's configured members (EscalationChainMember, in position order) or, when none are
configured, the team's clinicians in the order they joined the team. The team lead always comes last, once. Only
active clinicians who are still on the team count: someone who left the team cannot see the patient, so an alert
sent to them would reach nobody who can act.
"""

from __future__ import annotations

from django.db import transaction

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.access import administrator_require
from clinaiops.care.models import CareTeam, EscalationChainMember
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import Role, User


def _team_clinicians(team: CareTeam) -> list[User]:
    """The team's active clinicians in the order they joined it (the membership row's id)."""
    through = CareTeam.members.through
    rows = (
        through.objects.filter(careteam_id=team.pk, user__role=Role.CLINICIAN, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    return [row.user for row in rows]


def escalation_chain_for(*, team: CareTeam) -> list[User]:
    """Who an alert of this team's patients goes to, first to last."""
    clinicians = _team_clinicians(team)
    on_team = {user.pk for user in clinicians}
    configured = [
        member.user
        for member in EscalationChainMember.objects.filter(team=team).select_related("user").order_by("position")
        if member.user_id in on_team
    ]
    chain = configured or clinicians
    lead = team.lead if team.lead_id is not None and team.lead_id in on_team else None
    if lead is not None:
        chain = [user for user in chain if user.pk != lead.pk] + [lead]
    return chain


def escalation_chain_set(*, actor: User | None, team: CareTeam, members: list[User], lead: User | None) -> None:
    """Set a team's escalation chain (in order) and its lead. An administrator does this, like membership: who
    is woken up for a crisis is part of who may see the patient. Every person must be a clinician on the team.
    An empty `members` means the default order (the team's clinicians as they joined)."""
    administrator_require(
        actor=actor, action=AuditAction.ESCALATION_CHAIN_SET, object_type="care_team", object_id=team.pk
    )
    on_team = {user.pk for user in _team_clinicians(team)}
    problems: dict[str, list[str]] = {}
    if any(user.pk not in on_team for user in members):
        problems["members"] = ["Everyone on the chain must be an active clinician on this care team."]
    if len({user.pk for user in members}) != len(members):
        problems.setdefault("members", []).append("Name each person once.")
    if lead is not None and lead.pk not in on_team:
        problems["lead"] = ["The lead must be an active clinician on this care team."]
    if problems:
        raise ValidationFailed("That escalation chain cannot be used.", fields=problems)
    with transaction.atomic():
        EscalationChainMember.objects.filter(team=team).delete()
        EscalationChainMember.objects.bulk_create(
            EscalationChainMember(team=team, user=user, position=position) for position, user in enumerate(members)
        )
        CareTeam.objects.filter(pk=team.pk).update(lead=lead)
        team.lead = lead
        audit_record(
            action=AuditAction.ESCALATION_CHAIN_SET,
            object_type="care_team",
            object_id=team.pk,
            actor=actor,
            system_reason="cohort_seed" if actor is None else "",
            payload={"member_ids": [user.pk for user in members], "lead_id": lead.pk if lead else None},
        )
