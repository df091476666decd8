"""Sign-in for both surfaces: the authentication backend, the password hasher and the lock-out answer."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.utils import timezone

from clinaiops.core.errors import ApplicationError

# Set on the request by the backend when the password was right but the account is locked, so that the sign-in
# views can answer `account_locked` instead of "wrong password" without checking the password a second time.
LOCKED_UNTIL_ATTRIBUTE = "clinaiops_locked_until"


class AccountLocked(ApplicationError):
    """Sign-in refused while an account is locked: after repeated failed sign-ins from one address (django-axes)
    or repeated failed signatures (governance). 429 with Retry-After, distinct from a wrong password (401)."""

    code = "account_locked"
    status = 429

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "This account is locked after repeated failures; try again later or ask an administrator.",
        )
        self.retry_after = max(1, retry_after)


def seconds_until(moment: datetime) -> int:
    return math.ceil((moment - timezone.now()).total_seconds())


def sign_in_lock_retry_after(request: Any) -> int | None:
    """Seconds until sign-in may succeed again if `request`'s sign-in attempt was refused by a lock, else None.

    django-axes marks a request it locked out; its cool-off restarts with each attempt made during the lock-out
    (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the wait is the whole cool-off. A signature lock-out
    (User.locked_until) is reported only to someone who knew the password (LockoutAwareModelBackend)."""
    if getattr(request, "axes_locked_out", False):
        cool_off = get_cool_off(request)
        # Without a cool-off axes locks until an administrator resets the attempts; an hour is only a hint.
        return int(cool_off.total_seconds()) if cool_off else 3600
    locked_until = getattr(request, LOCKED_UNTIL_ATTRIBUTE, None)
    if isinstance(locked_until, datetime):
        return seconds_until(locked_until)
    return None


class LockoutAwareModelBackend(ModelBackend):
    """Refuses sign-in (portal sessions and API tokens alike) while an account is locked.

    A locked account with the right password is flagged on the request (LOCKED_UNTIL_ATTRIBUTE), so the answer
    can say "locked, retry after…"; with a wrong password the answer stays "wrong password", so the lock is no
    oracle for anyone who does not know the password. Existing portal sessions of a locked user end as well:
    `get_user` uses `user_can_authenticate`."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            # Hash anyway, so the answer takes as long as for a real account (Django's timing defence).
            user_model().set_password(password)
            return None
        if not user.check_password(password) or not user.is_active:
            return None
        if getattr(user, "is_locked", False):
            if request is not None:
                setattr(request, LOCKED_UNTIL_ATTRIBUTE, user.locked_until)
            return None
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and not getattr(user, "is_locked", False)


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id with the costs in settings (PASSWORD_ARGON2_*), so they can be raised without a code change;
    hashes made with other costs are upgraded at the next sign-in (Django's `must_update`).

    The default is OWASP's first recommended configuration (19 MiB, 2 passes, 1 lane): memory-hard, unlike
    PBKDF2, and about 25 ms per hash here against 250 ms for Django's PBKDF2 default, which lets the demo give
    each of its ~205 accounts a hash of its own and keeps a burst of sign-in attempts from occupying the CPU.
    The algorithm name stays "argon2", so hashes written by Django's own Argon2 hasher keep verifying."""

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_TIME_COST)

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_MEMORY_KIB)

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_PARALLELISM)
