"""/metrics, /healthz and /readyz. None uses a session or a login: a scraper and a load balancer have neither.

/metrics: with METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` is answered (compared in constant
time). With no token configured, only loopback clients are answered, and not through a proxy: a reverse proxy
on the same host makes every client look like 127.0.0.1, so a request carrying forwarding headers is refused.

/healthz and /readyz reveal nothing: no versions, host names or error text, only which check failed.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from clinaiops.ops.exposition import metrics_render
from clinaiops.ops.health import readiness_check

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_access(request: HttpRequest) -> int:
    """200 when this request may read the metrics, else the status to refuse it with (401 or 403)."""
    token: str = settings.METRICS_TOKEN
    if token:
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), token.encode())
        return 200 if valid else 401
    if _loopback(request.META.get("REMOTE_ADDR")) and not any(h in request.META for h in FORWARDING_HEADERS):
        return 200
    return 403


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    status = metrics_access(request)
    if status != 200:
        refused = HttpResponse(b"", status=status)
        if status == 401:
            refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and answering; nothing else is checked (a restart would not fix a database)."""
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    readiness = readiness_check()
    if readiness.ready:
        return JsonResponse({"status": "ready"})
    return JsonResponse({"status": "unavailable", "failed": list(readiness.failed)}, status=503)
