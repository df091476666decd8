"""One way to declare a Celery task that survives a database blip (issue 8 §5).

A task that meets a transient database error (the server restarting, a dropped connection, a statement or lock
timeout, a deadlock) used to fail and be acked, and its work waited for the next beat tick: up to an hour for an
evaluation. `durable_task` retries it instead, with exponential backoff and full jitter, so a restart of a few
seconds to a few minutes costs a short delay and nothing else. Every task declared this way must be safe to run
twice (STYLE.md): a retry re-runs the whole task body.

Only OperationalError and InterfaceError are transient. An IntegrityError or a ProgrammingError is a bug or a
race that a retry cannot fix, so it still fails the task at once.

The backoff is fixed here rather than read from settings, because Celery reads it when the task is declared, at
import time: base 2 s, doubling, at most 120 s between attempts, 10 retries. With full jitter a retry waits a
random time up to that bound, so the retries span about 5 to 10 minutes in all. A task that is still failing
after that gives up (and is acked); the due-work sweepers (`evaluations_sweep`, `exports_sweep`,
`training_runs_sweep`, the scheduled audit checkpoint) pick its work up once the database is back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, connections

TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
RETRY_BACKOFF_SECONDS = 2
RETRY_BACKOFF_MAX_SECONDS = 120
RETRY_MAX = 10

P = ParamSpec("P")
R = TypeVar("R")


def unusable_connections_close() -> None:
    """Close every database connection that a transient error left unusable, so the next attempt opens a fresh
    one. A worker's Django fixup does the same before each task; an eager retry (tests, the demo) runs in the same
    call and needs it here. A connection inside an atomic block belongs to a caller's transaction: left alone."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def durable_task(*, name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """`@durable_task(name=...)`: a shared task, acked after it ran (a worker killed mid-task leaves the message for
    another), retried with backoff on transient database errors."""

    def declare(fun: Callable[P, R]) -> Task[P, R]:
        @functools.wraps(fun)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fun(*args, **kwargs)
            except TRANSIENT_DATABASE_ERRORS:
                unusable_connections_close()
                raise

        return shared_task(
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=TRANSIENT_DATABASE_ERRORS,
            retry_backoff=RETRY_BACKOFF_SECONDS,
            retry_backoff_max=RETRY_BACKOFF_MAX_SECONDS,
            retry_jitter=True,
            max_retries=RETRY_MAX,
        )(run)

    return declare
