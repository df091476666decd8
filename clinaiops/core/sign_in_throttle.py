"""The sign-in throttle, shared by the API's token endpoint and the portal's sign-in form (issue 8 §4)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from rest_framework.settings import api_settings as drf_settings
from rest_framework.throttling import BaseThrottle

from clinaiops.core.client_address import client_address


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int


def _rate(scope: str) -> Rate:
    # Read at each request rather than at import (DRF's throttles bind the rates when their class is defined).
    raw = str(drf_settings.DEFAULT_THROTTLE_RATES[scope])
    count, _, period = raw.partition("/")
    return Rate(int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]])


class SignInRateThrottle(BaseThrottle):
    """At most N sign-in attempts per client address in any sliding window, counted in the shared cache.

    Each allowed attempt claims one of N slots with the cache's atomic `add` (SET NX on Redis, an insert on the
    database cache), and a slot frees itself when its timeout, the window, runs out. The count is therefore exact
    across every worker process and host, and needs no lock: two requests can never claim one slot. The address
    is the client's by the trusted-proxy rule (clinaiops.core.client_address), so rotating X-Forwarded-For gains
    nothing."""

    scope = "token"

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        rate = _rate(self.scope)
        base = f"sign-in:{self.scope}:{client_address(request) or 'unknown'}"
        keys = [f"{base}:{slot}" for slot in range(rate.requests)]
        now = time.time()
        claimed = cache.get_many(keys)
        for key in keys:
            if key not in claimed and cache.add(key, now, timeout=rate.seconds):
                return True
        claimed = cache.get_many(keys)
        oldest = min((float(value) for value in claimed.values()), default=now)
        self._wait = max(1.0, oldest + rate.seconds - now)
        return False

    def wait(self) -> float | None:
        return self._wait
