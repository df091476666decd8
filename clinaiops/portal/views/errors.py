"""The portal's error answers that need more than a template: the CSRF failure page (settings CSRF_FAILURE_VIEW),
which keeps what the user typed, and the favicon.

A form refused for its CSRF token is almost always the user's own: the session ended while they wrote a reason,
or the page was old. Losing a paragraph of clinical reasoning to that is what the page prevents, by showing what
was typed so it can be copied back. What it shows, and when, is deliberately narrow, because the request that
failed is by definition one the server could not tell apart from a forgery:

* only when the browser says the POST came from this site (its Origin, else its Referer). A forged cross-site
  POST gets the plain page: otherwise another site could make ours display text of its choosing, under our name;
* never a password, a one-time code, a token or key, the CSRF token itself, or a patient search term (the
  search page does not repeat its term either, clinaiops.portal.views.clinical.patient_list);
* as read-only text with no form around it: nothing on the page can be submitted, so a forged POST cannot be
  turned into a pre-filled form that a real user signs. "Back to the page" opens it afresh with a new token;
* a bounded amount (fields and characters), escaped by the template, and never cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme

# A field whose name matches is never shown back: secrets, and terms the portal keeps out of pages.
NEVER_ECHOED = re.compile(r"pass|secret|token|otp|code|key|csrf|^q$|^next$|^action$|^page$", re.IGNORECASE)
MAX_FIELDS = 12
MAX_CHARS = 4000


@dataclass(frozen=True)
class KeptField:
    label: str
    value: str


def _same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin") or ""
    if origin and origin != "null":
        return url_has_allowed_host_and_scheme(origin + "/", allowed_hosts={request.get_host()})
    referer = request.headers.get("Referer") or ""
    return bool(referer) and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()})


def kept_fields(request: HttpRequest) -> list[KeptField]:
    """What the user typed into the refused form, safe to show back (see the module docstring)."""
    if request.method != "POST" or not _same_origin(request):
        return []
    kept = []
    for name in request.POST:
        if NEVER_ECHOED.search(name):
            continue
        value = "\n".join(v for v in request.POST.getlist(name) if v.strip())[:MAX_CHARS]
        if value:
            kept.append(KeptField(label=name.replace("_", " ").capitalize(), value=value))
        if len(kept) == MAX_FIELDS:
            break
    return kept


def _back_to(request: HttpRequest) -> str:
    """The page that held the form (a same-site Referer's path), else the form's own address, else the start."""
    referer = request.headers.get("Referer") or ""
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
        parts = urlsplit(referer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.path if request.method == "GET" else reverse("portal:home")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a styled 403 that says nothing was saved, links back, and keeps what was typed."""
    back = _back_to(request)
    context = {
        "kept": kept_fields(request),
        "back": back,
        "login_url": f"{reverse('portal:login')}?{urlencode({'next': back})}",
        "signed_in": request.user.is_authenticated,
    }
    response = render(request, "403_csrf.html", context, status=403)
    add_never_cache_headers(response)  # it may hold a clinical reason the user typed
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin, JSON answers)."""
    return HttpResponseRedirect(static("portal/favicon.svg"))
