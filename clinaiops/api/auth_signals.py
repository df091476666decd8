"""A django-axes lock-out (repeated failed sign-ins from one address) revokes the user's API tokens.

Whoever is guessing a password may already hold a token obtained another way, or be racing the real user; a lock
means "this account is under attack", and every live token of it is revoked with it. It is recorded as
`account.locked` in the same transaction. axes announces a lock-out only through its `user_locked_out` signal,
sent again for every attempt made while locked out, so this acts on the attempt that reached the limit alone.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.db import transaction

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.core.models import User


def tokens_revoke_on_sign_in_lockout(sender: Any, request: Any, username: str | None, **kwargs: Any) -> None:
    if request is None or not username:
        return
    limit = get_failure_limit(request, getattr(request, "axes_credentials", None))
    if getattr(request, "axes_failures_since_start", None) != limit:
        return
    user = User.objects.filter(username=username).first()
    if user is None:
        return
    cool_off = get_cool_off(request)
    with transaction.atomic():
        user.tokens_revoke()
        audit_record(
            action=AuditAction.ACCOUNT_LOCKED,
            object_type="user",
            object_id=user.pk,
            system_reason="repeated_sign_in_failures",
            payload={
                "failures": limit,
                "minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
                "scope": "username_and_address",
                "tokens_revoked": True,
            },
        )
