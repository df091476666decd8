"""Two middlewares, both first in MIDDLEWARE (clinaiops/settings/base.py):

- `OpsEndpointsMiddleware` answers /metrics, /healthz and /readyz before anything else runs. A scraper or a
  load-balancer probe addresses the pod or host by IP, which is not in ALLOWED_HOSTS, and Django's host check
  would answer 400; these answers build no URL from the Host header, so the check has nothing to protect. It
  also keeps probes out of the latency histograms and away from sessions.
- `RequestMetricsMiddleware` times every other request, from before the first middleware to the response, and
  counts it by route name and status class, then writes one access line (route name, method, status, time;
  never the raw path or query string, which can carry identifiers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from clinaiops.ops import metrics, views

access_logger = logging.getLogger("clinaiops.request")

OPS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/metrics": views.metrics,
    "/healthz": views.healthz,
    "/readyz": views.readyz,
}


class OpsEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPS_ENDPOINTS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


def view_label(request: HttpRequest) -> str:
    """The route name ("api:readings", "portal:patient"), never the path: ids and codes stay out of labels."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name:
        return str(match.view_name)
    static_url = "/" + str(settings.STATIC_URL).lstrip("/")
    if request.path_info.startswith(static_url):
        return "static"
    return "unmatched"  # a 404 before routing, or a middleware that answered first: one label for all


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        view = view_label(request)
        method = metrics.method_label(request.method)
        metrics.HTTP_REQUEST_DURATION.labels(view=view, method=method).observe(elapsed)
        metrics.HTTP_RESPONSES.labels(
            view=view, method=method, status_class=metrics.status_class(response.status_code)
        ).inc()
        access_logger.info(
            "request",
            extra={
                "view": view,
                "method": method,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                # Set by RequestContextMiddleware (inside this one), whose context has been reset by now.
                "request_id": response.get("X-Request-ID", ""),
            },
        )
        return response
