"""Request middleware of the kernel: the request context for the ledger, forwarded headers, portal session limits,
the second-factor gate and `Cache-Control: no-store`. Their order is set in clinaiops/settings/base.py."""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import Resolver404, resolve
from django.utils.cache import patch_cache_control

from clinaiops.core.client_address import client_address, peer_is_trusted_proxy
from clinaiops.core.mfa import mfa_required
from clinaiops.core.request_context import RequestContext, request_context_reset, request_context_set

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Portal session keys. Times are UNIX seconds.
SESSION_STARTED_KEY = "clinaiops_signed_in_at"
SESSION_ACTIVITY_KEY = "clinaiops_active_at"
# Set at sign-in when a second factor is still owed; cleared by the portal's verification (clinaiops.portal).
MFA_PENDING_KEY = "clinaiops_mfa_pending"
# Sent by the idle-warning script when it only asks how long the session has left: that is not activity.
SESSION_PROBE_HEADER = "X-Session-Probe"

_FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")

Middleware = Callable[[HttpRequest], HttpResponse]


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and records the client IP for the audit ledger."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        # X-Forwarded-For counts only as far as the configured proxies vouch for it (clinaiops.core.client_address).
        token = request_context_set(RequestContext(request_id=request_id, ip=client_address(request)))
        try:
            response = self.get_response(request)
        finally:
            request_context_reset(token)
        response["X-Request-ID"] = request_id
        return response


class ForwardedHeadersMiddleware:
    """Drops X-Forwarded-* (and Forwarded) from any peer that is not a trusted proxy, before Django reads them:
    SECURE_PROXY_SSL_HEADER would otherwise let any client claim HTTPS, and nothing downstream should see a
    forwarded address that the rule of clinaiops.core.client_address would not believe."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not peer_is_trusted_proxy(request.META):
            for header in _FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


def session_limits_start(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """On sign-in (`user_logged_in`): the absolute and idle clocks of the portal session start now."""
    session = getattr(request, "session", None)
    if session is not None:
        now = int(time.time())
        session[SESSION_STARTED_KEY] = now
        session[SESSION_ACTIVITY_KEY] = now


def session_seconds_left(request: HttpRequest) -> int:
    """Seconds before the portal session ends by either limit (idle or absolute), counted from now."""
    now = time.time()
    started = float(request.session.get(SESSION_STARTED_KEY, now))
    active = float(request.session.get(SESSION_ACTIVITY_KEY, now))
    idle_left = active + settings.SESSION_IDLE_TIMEOUT_SECONDS - now
    absolute_left = started + settings.SESSION_ABSOLUTE_SECONDS - now
    # Rounded up: 0 only once PortalSessionMiddleware would end the session, never a moment before.
    return max(0, math.ceil(min(idle_left, absolute_left)))


def session_limit_reached(request: HttpRequest, now: float) -> str | None:
    """Why the portal session must end at `now` (the message shown at the next sign-in), or None."""
    started = float(request.session.get(SESSION_STARTED_KEY, now))
    active = float(request.session.get(SESSION_ACTIVITY_KEY, now))
    if now - started >= settings.SESSION_ABSOLUTE_SECONDS:
        return f"Signed out: a session lasts at most {duration_words(settings.SESSION_ABSOLUTE_SECONDS)}."
    if now - active >= settings.SESSION_IDLE_TIMEOUT_SECONDS:
        return f"Signed out after {duration_words(settings.SESSION_IDLE_TIMEOUT_SECONDS)} without activity."
    return None


def session_end(request: HttpRequest, message: str) -> None:
    """Sign the session out; the request goes on as anonymous and the next page says why."""
    logout(request)
    messages.info(request, message)


class PortalSessionMiddleware:
    """Automatic logoff (HIPAA 164.312(a)(2)(iii)): a signed-in session ends after SESSION_IDLE_TIMEOUT_SECONDS
    without a request and SESSION_ABSOLUTE_SECONDS after sign-in, whatever the activity. The ended request goes
    on as anonymous, so a page answers with the sign-in form and a message says why.

    The time of the last activity is written at most every SESSION_ACTIVITY_RESOLUTION_SECONDS, so a page view
    does not cost a session write each time; the idle limit is therefore met up to that much early, never late.
    Requests carrying SESSION_PROBE_HEADER (the idle warning asking how long is left) are not activity."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            active = request.session.get(SESSION_ACTIVITY_KEY)
            if request.session.get(SESSION_STARTED_KEY) is None or active is None:
                # A session from before these limits existed: its clocks start now.
                request.session[SESSION_STARTED_KEY] = request.session[SESSION_ACTIVITY_KEY] = int(now)
            elif (reason := session_limit_reached(request, now)) is not None:
                session_end(request, reason)
            elif (
                SESSION_PROBE_HEADER not in request.headers
                and now - float(active) >= settings.SESSION_ACTIVITY_RESOLUTION_SECONDS
            ):
                request.session[SESSION_ACTIVITY_KEY] = int(now)
        return self.get_response(request)


def duration_words(seconds: int) -> str:
    """A session limit in words: "15 minutes", "12 hours", "90 seconds"."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class MfaGateMiddleware:
    """A portal session that still owes its second factor reaches only the pages that collect it.

    The sign-in view marks such a session (MFA_PENDING_KEY); a session of a role that requires MFA and is not
    verified by django-otp is held too, whatever way it was opened (the admin's own sign-in form included)."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if user.is_authenticated and hasattr(request, "session"):
            owed = bool(request.session.get(MFA_PENDING_KEY)) or (mfa_required(user) and not user.is_verified())
            if owed and not self._allowed(request):
                target = resolve_url(settings.MFA_VERIFY_URL)
                return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def _allowed(request: HttpRequest) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return match.view_name in settings.MFA_GATE_OPEN_VIEWS


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response to a signed-in user, so that no browser, proxy or shared
    computer keeps a page or an API answer with patient data; anonymous responses without a caching policy of
    their own get it too (sign-in pages, errors). Static files are served before this (WhiteNoise)."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or not response.has_header("Cache-Control"):
            if response.has_header("Cache-Control"):
                del response["Cache-Control"]
            patch_cache_control(response, no_store=True)
        return response
