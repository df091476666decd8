"""The stop-switch banner on every portal page (portal/base.html): while the AI is stopped, all staff see it."""

from __future__ import annotations

from typing import Any

from django import template

from clinaiops.core.models import Role, User
from governance.stop import ai_stops_in_force

register = template.Library()


@register.inclusion_tag("portal/_ai_stop_banner.html", takes_context=True)
def ai_stop_banner(context: template.Context) -> dict[str, Any]:
    user = context.get("user")
    # Staff only (patients have no portal); one query per page, and none for anonymous pages such as sign-in.
    staff = isinstance(user, User) and user.is_authenticated and user.role != Role.PATIENT
    return {"stops": ai_stops_in_force() if staff else [], "user": user}
