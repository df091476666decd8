from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class LockoutAwareModelBackend(ModelBackend):
    """Refuses sign-in (portal sessions and API tokens alike) while an account is locked."""

    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and not getattr(user, "is_locked", False)
