"""gunicorn configuration for the demo and production: `gunicorn -c python:clinaiops.gunicorn_config clinaiops.wsgi`.

It is clinaiops/ops/gunicorn.py (sync workers, metrics folder, no raw access log: see there) plus what the web
tier must not say about itself: gunicorn writes `Server: gunicorn` into every response, which tells a scanner
which server and so which advisories to try. That line is removed here; nothing else in the response changes.

gunicorn reads this module in the master before it forks, so the workers inherit the change. Command-line options
(`--bind`, `--workers`) still override the values here.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from gunicorn.http import wsgi as _gunicorn_wsgi

from clinaiops.ops.gunicorn import *  # noqa: F403 - bind, workers, worker_class, accesslog, timeout, hooks

# gunicorn turns X-Forwarded-Proto into the WSGI scheme for the peers it trusts (loopback by default); it trusts
# exactly the proxies the application does (TRUSTED_PROXIES, clinaiops/core/client_address.py), nobody when empty.
forwarded_allow_ips = ",".join(
    str(ipaddress.ip_network(item.strip(), strict=False))
    for item in os.environ.get("TRUSTED_PROXIES", "").split(",")
    if item.strip()
)

_default_headers = _gunicorn_wsgi.Response.default_headers


def _headers_without_server(self: Any) -> list[str]:
    headers: list[str] = _default_headers(self)
    return [line for line in headers if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _headers_without_server  # type: ignore[method-assign]
