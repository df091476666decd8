"""`manage.py create_device_gateway --team <name> [--team <name>…] [--name <label>]`: a hospital's device gateway,
the service account that posts FHIR readings (/api/v1/fhir/) for the patients of its care teams.

It prints the client id and secret once. The secret is the account's password, so only its hash is stored and a
lost secret cannot be shown again: set a new one (`manage.py changepassword <client id>`), which also revokes the
gateway's tokens. The gateway signs in at /api/v1/auth/token/ with `grant_type: client_credentials`."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.models import CareTeam
from clinaiops.core.models import Role, User

SYSTEM_REASON = "device_gateway_created"


def device_gateway_create(*, teams: list[CareTeam], name: str = "") -> tuple[User, str]:
    """A new device gateway on `teams`, and its secret (shown once). Its role and each membership are audited
    (an administrator's command: the system acts, with a reason)."""
    client_id = f"gateway-{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        user = User(username=client_id, role=Role.DEVICE_GATEWAY, printed_name=name[:150])
        user.set_password(secret)
        user.save()
        audit_record(
            action=AuditAction.USER_ROLE_SET,
            object_type="user",
            object_id=user.pk,
            system_reason=SYSTEM_REASON,
            payload={"role": str(Role.DEVICE_GATEWAY)},
        )
        for team in teams:
            team.members.add(user)
            audit_record(
                action=AuditAction.CARE_TEAM_MEMBER_ADDED,
                object_type="care_team",
                object_id=team.pk,
                system_reason=SYSTEM_REASON,
                payload={"user_id": user.pk},
            )
    return user, secret


class Command(BaseCommand):
    help = "Create a device gateway (FHIR service account) on care teams; prints its client id and secret once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", action="append", required=True, help="care team name (repeat for several)")
        parser.add_argument("--name", default="", help="a label for the gateway, e.g. the hospital's system")

    def handle(self, *args: Any, team: list[str], name: str, **options: Any) -> None:
        names = sorted(set(team))
        teams = list(CareTeam.objects.filter(name__in=names).order_by("name"))
        if len(teams) != len(names):
            missing = sorted(set(names) - {t.name for t in teams})
            raise CommandError(f"No care team named: {', '.join(missing)}")
        user, secret = device_gateway_create(teams=teams, name=name)
        self.stdout.write(f"client_id: {user.username}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write("Keep the secret now: it is not shown again (only its hash is stored).")
