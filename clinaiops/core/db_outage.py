"""Database outages (issue 8 §5): a request meets a database that is down or stalled, and answers 503 with
Retry-After within a bounded time, instead of an HTML 500 or a hang until gunicorn kills the worker.

Three parts:

- Time limits on every PostgreSQL connection (clinaiops/settings/base.py): connect_timeout, and statement_timeout,
  lock_timeout and idle_in_transaction_session_timeout sent as startup options. The server enforces those; a server
  that does not answer at all (a frozen host, a stopped process) cannot, so `client_deadline_install` also bounds
  every wait on the connection's socket on the client side (DATABASE_CLIENT_TIMEOUT_SECONDS). A wait that runs out
  closes the connection and raises OperationalError, like a dropped connection.
- `DatabaseOutageMiddleware` turns an OperationalError or InterfaceError, raised by a view or by any middleware
  inside it (the session and the signed-in user are loaded lazily, by middleware), into 503: the API's one JSON
  error shape under /api/, a plain page elsewhere. DRF views answer the same through clinaiops/api/errors.py.
- The probes keep their own answers: /healthz and /readyz are answered before this middleware runs
  (clinaiops/ops/middleware.py, clinaiops/ops/health.py).

Whether a request that met an outage had committed is unknown to the client (the answer to a commit can be lost):
clients resend, and the writes they resend are idempotent (a reading is stored once, a decision is signed once).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (OperationalError, InterfaceError)
OUTAGE_CODE = "database_unavailable"
OUTAGE_MESSAGE = "The database is not answering. Try again shortly; a resent reading is stored only once."
_MARK = "_clinaiops_database_outage"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable — ClinAIOps</title></head>
<body><main><h1>Temporarily unavailable</h1>
<p>The clinical database is not answering. Nothing is lost: try again in a few seconds.</p>
<p>A decision you were signing is either signed once or not at all; reload the page to see which.</p>
</main></body></html>
"""


def database_outage(exc: BaseException | None) -> bool:
    """True for the errors of a database that is unreachable, stalled or restarting (psycopg's OperationalError:
    refused, dropped, timed out, cancelled by statement_timeout or lock_timeout; InterfaceError: a closed
    connection). Integrity and programming errors are not outages."""
    return isinstance(exc, OUTAGE_ERRORS)


def retry_after_seconds() -> int:
    return int(settings.DATABASE_RETRY_AFTER_SECONDS)


def outage_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: JSON in the API's error shape under /api/, a plain page (no template, no database)
    elsewhere."""
    if request.path_info.startswith("/api/"):
        body = json.dumps({"code": OUTAGE_CODE, "message": OUTAGE_MESSAGE, "fields": {}})
        response = HttpResponse(body, status=503, content_type="application/json")
    else:
        response = HttpResponse(_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(retry_after_seconds())
    response["Cache-Control"] = "no-store"
    return response


def _request_goes_on_without_database(request: HttpRequest) -> None:
    # The rest of the request (NoStoreMiddleware, the session's response hook) asks for the signed-in user, which
    # would try the database again and wait out another timeout; the request goes on as anonymous.
    request.user = AnonymousUser()
    setattr(request, _MARK, True)


def outage_mark(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """`got_request_exception`: Django is turning an exception raised by a middleware into a 500. If it is an
    outage, mark the request, and DatabaseOutageMiddleware answers 503 instead."""
    if request is not None and database_outage(sys.exc_info()[1]):
        _request_goes_on_without_database(request)


class DatabaseOutageMiddleware:
    """Outside every middleware that may touch the database; inside the probes and the request metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _MARK, False) and response.status_code >= 500:
            return outage_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_outage(exception):
            return None
        logger.warning("database unavailable: %s", type(exception.__cause__ or exception).__name__)
        _request_goes_on_without_database(request)
        return outage_response(request)


class _DeadlinePassed(Exception):
    pass


def _bounded(gen: Generator[Any, Any, Any], deadline: float) -> Generator[Any, Any, Any]:
    """Drive psycopg's protocol generator `gen` unchanged, but stop once `deadline` (monotonic) has passed.
    psycopg's wait loop resumes the generator at least every `interval` (READY_NONE when nothing arrived), so the
    deadline is checked every 0.1 s even while the server says nothing."""
    try:
        state = next(gen)
    except StopIteration as done:  # nothing to wait for
        return done.value
    while True:
        ready = yield state
        if time.monotonic() > deadline:
            gen.close()
            raise _DeadlinePassed
        try:
            state = gen.send(ready)
        except StopIteration as done:
            return done.value


def client_deadline_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created`: bound every wait on this PostgreSQL connection's socket (a query, its results, a
    commit) by DATABASE_CLIENT_TIMEOUT_SECONDS. Every such wait goes through psycopg's `Connection.wait`; this
    connection's is wrapped. A wait that runs out leaves the connection mid-protocol, so it is closed, and the
    wait raises psycopg's OperationalError, which Django wraps as it wraps a dropped connection (and then
    discards the connection)."""
    seconds = settings.DATABASE_CLIENT_TIMEOUT_SECONDS
    if connection.vendor != "postgresql" or not seconds:
        return
    raw = connection.connection
    original = raw.wait

    def wait(gen: Generator[Any, Any, Any], interval: float | None = 0.1, **options: Any) -> Any:
        try:
            return original(_bounded(gen, time.monotonic() + seconds), interval=interval or 0.1, **options)
        except _DeadlinePassed:
            raw.pgconn.finish()
            raise psycopg.OperationalError(f"the database did not answer within {seconds} s") from None

    raw.wait = wait


def db_outage_connect() -> None:
    """Called from the core app's ready(): in web processes, workers and commands alike."""
    got_request_exception.connect(outage_mark, dispatch_uid="clinaiops.core.db_outage.outage_mark")
    connection_created.connect(client_deadline_install, dispatch_uid="clinaiops.core.db_outage.client_deadline")
