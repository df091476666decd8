"""Sign-in, sign-out and the account pages: the second factor (verify at sign-in, enrol, remove), the password
and the session clock that the idle warning asks (static/portal/portal.js).

Sign-in happens in two steps when a second factor applies (clinaiops.core.mfa): the password opens a session
marked as owing its code, which MfaGateMiddleware confines to these pages until the code is given; the code
then verifies the session through django-otp. A lock-out answers 429 with Retry-After and says so, whether
django-axes or a signature lock-out refused the attempt.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.core.auth import sign_in_lock_retry_after
from clinaiops.core.errors import ApplicationError
from clinaiops.core.mfa import mfa_applies, mfa_code_verify, mfa_device, mfa_required, mfa_retry_after
from clinaiops.core.middleware import (
    MFA_PENDING_KEY,
    SESSION_ACTIVITY_KEY,
    duration_words,
    session_end,
    session_limit_reached,
    session_seconds_left,
)
from clinaiops.core.sign_in_throttle import SignInRateThrottle
from clinaiops.portal.access import request_user
from clinaiops.portal.account_services import (
    account_password_change,
    mfa_enrol_confirm,
    mfa_remove,
    totp_config_uri,
    totp_key_base32,
    totp_key_new,
)

# The secret of an enrolment in progress lives in the session until a code confirms it, so an abandoned
# enrolment leaves no device behind.
ENROL_KEY_SESSION_KEY = "clinaiops_mfa_enrol_key"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class MfaRemoveForm(CodeForm):
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


def _locked(request: HttpRequest, retry_after: int, form: AuthenticationForm | None = None) -> HttpResponse:
    # The lock-out page keeps the username typed (never the password); the attempt passed the CSRF check.
    context = {
        "username": str(request.POST.get("username") or "")[:150],
        "next": _next_url(request, ""),
        "locked_minutes": max(1, -(-retry_after // 60)),
    }
    response = render(request, "portal/locked.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """django-axes' answer to a locked-out attempt (AXES_LOCKOUT_CALLABLE): the sign-in page saying so."""
    return _locked(request, sign_in_lock_retry_after(request) or 60)


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}"


class SignInView(LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The API's per-address budget of sign-in attempts (TOKEN_THROTTLE_RATE) covers this form too, so spraying
        # passwords over many usernames is no cheaper here than on the token endpoint.
        throttle = SignInRateThrottle()
        if not throttle.allow_request(request, self):
            response = render(request, "portal/login.html", {"form": AuthenticationForm(request), "throttled": True})
            response.status_code = 429
            response["Retry-After"] = str(int(throttle.wait() or 60))
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)  # signs in: a new session key, the session clocks start
        user = form.get_user()
        if not mfa_applies(user):
            return response
        self.request.session[MFA_PENDING_KEY] = True
        step = "portal:mfa-verify" if mfa_device(user) is not None else "portal:mfa-enrol"
        return HttpResponseRedirect(_with_next(reverse(step), self.get_success_url()))

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        retry_after = sign_in_lock_retry_after(self.request)
        if retry_after is not None:
            return _locked(self.request, retry_after, form)
        return super().form_invalid(form)


@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in: the authenticator's current code."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    user = request_user(request)
    done = _next_url(request, reverse("portal:home"))
    device = mfa_device(user)
    if device is None:
        return redirect(_with_next(reverse("portal:mfa-enrol"), done)) if mfa_required(user) else redirect(done)
    form = CodeForm(request.POST or None)
    wait = None
    if request.method == "POST" and form.is_valid():
        if mfa_code_verify(device, form.cleaned_data["code"]):
            otp_login(request, device)
            request.session.pop(MFA_PENDING_KEY, None)
            return redirect(done)
        audit_record_denied(
            action=AuditAction.MFA_REFUSED, object_type="user", object_id=user.pk, actor=user, reason="bad_code"
        )
        wait = mfa_retry_after(device)
        form.add_error("code", "That code was not accepted. Codes change every 30 seconds and work once.")
    return render(request, "portal/mfa_verify.html", {"form": form, "next": done, "wait": wait})


@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the secret), then confirm with a code."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    user = request_user(request)
    done = _next_url(request, reverse("portal:account"))
    if mfa_device(user) is not None:
        if request.session.get(MFA_PENDING_KEY):
            # Enrolled already: the code is owed on the verification page, never by enrolling another device.
            return redirect(_with_next(reverse("portal:mfa-verify"), done))
        messages.info(request, "An authenticator app is already enrolled.")
        return redirect("portal:account")
    key = request.session.get(ENROL_KEY_SESSION_KEY) or totp_key_new()
    request.session[ENROL_KEY_SESSION_KEY] = key
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = mfa_enrol_confirm(user=user, key_hex=key, code=form.cleaned_data["code"])
        except ApplicationError as exc:
            form.add_error("code", exc.message)
        else:
            otp_login(request, device)
            request.session.pop(MFA_PENDING_KEY, None)
            request.session.pop(ENROL_KEY_SESSION_KEY, None)
            messages.success(request, "Authenticator app enrolled: sign-in now asks for its code.")
            return redirect(done)
    uri = totp_config_uri(user=user, key_hex=key)
    context = {
        "form": form,
        "next": done,
        "otpauth_uri": uri,
        "secret": totp_key_base32(key),
        "qr_svg": segno.make(uri, error="m").svg_inline(scale=4, border=2, title="QR code for your authenticator app"),
        "required": mfa_required(user),
    }
    return render(request, "portal/mfa_enrol.html", context)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    context = {
        "device": mfa_device(user),
        "required": mfa_required(user),
        "remove_form": MfaRemoveForm(),
        "idle_limit": duration_words(settings.SESSION_IDLE_TIMEOUT_SECONDS),
        "absolute_limit": duration_words(settings.SESSION_ABSOLUTE_SECONDS),
    }
    return render(request, "portal/account.html", context)


@login_required
@require_POST
def mfa_remove_view(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = MfaRemoveForm(request.POST)
    if form.is_valid():
        try:
            mfa_remove(user=user, password=form.cleaned_data["password"], code=form.cleaned_data["code"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Authenticator app removed.")
    else:
        messages.error(request, "Enter your password and a current code to remove the app.")
    return redirect("portal:account")


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = PasswordChangeForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        account_password_change(user=user, new_password=form.cleaned_data["new_password1"])
        # This session stays signed in; the user's other sessions end (their session hash no longer matches).
        update_session_auth_hash(request, user)
        messages.success(request, "Password changed. Your other sessions and the mobile app's sign-ins have ended.")
        return redirect("portal:account")
    return render(request, "portal/password_change.html", {"form": form})


@require_http_methods(["GET", "POST"])
def session_status(request: HttpRequest) -> HttpResponseBase:
    """How long the portal session has left (GET, sent with the probe header, is not activity); POST is the "stay
    signed in" of the idle warning."""
    if not request.user.is_authenticated:
        return JsonResponse({"seconds_left": 0}, status=401)
    if request.method == "POST":
        request.session[SESSION_ACTIVITY_KEY] = int(time.time())
    left = session_seconds_left(request)
    if left <= 0:
        # The limit fell between the middleware's check and this one: end it here, so that "0 left" is never
        # answered for a session that would still open a page.
        session_end(request, session_limit_reached(request, time.time() + 1) or "Signed out.")
        return JsonResponse({"seconds_left": 0}, status=401)
    return JsonResponse({"seconds_left": left, "warning_seconds": settings.SESSION_IDLE_WARNING_SECONDS})
