"""Readiness: can this process reach the database, the broker and the artifact store right now?

Each check runs in its own thread with a deadline, so a database whose host has gone silent (no RST, the TCP
connect would hang for minutes) answers "not ready" within the deadline instead of tying up the worker. A check
still running from an earlier probe is not started again: it counts as failed, so a hung dependency cannot pile
up threads probe after probe.

The answer names only which checks failed. No error text, host names or versions: the probe is unauthenticated.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from kombu import Connection

from clinaiops.celery import app

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


def database_check() -> None:
    connection = connections["default"]
    try:
        # SET LOCAL, in a transaction of its own: through pgbouncer in transaction mode a session-level SET would stay
        # on the pooled server connection and time out the next client's statements (docs/scaling.md).
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL statement_timeout = 1000")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # The check runs in its own thread, whose connection nobody else would ever close.
        connection.close()


def broker_check() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # tasks run in-process: there is no broker to reach (the embedded default)

    with Connection(app.conf.broker_url, connect_timeout=CHECK_TIMEOUT_SECONDS / 2) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)


def artifacts_check() -> None:
    root = Path(settings.ARTIFACT_ROOT)
    # Web workers read artifacts and Celery workers write them; a store that is missing or unreadable (an
    # unmounted volume) means no model can load. Stat and access only: listing a large store would be slow.
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
        raise OSError("artifact store unreachable")


CHECKS: dict[str, Callable[[], None]] = {
    "database": database_check,
    "broker": broker_check,
    "artifacts": artifacts_check,
}
_running: dict[str, threading.Lock] = {name: threading.Lock() for name in CHECKS}


@dataclass(frozen=True)
class Readiness:
    failed: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.failed


def readiness_check(*, timeout: float = CHECK_TIMEOUT_SECONDS) -> Readiness:
    results: dict[str, bool] = {}
    threads: dict[str, threading.Thread] = {}

    def run(name: str, check: Callable[[], None], lock: threading.Lock) -> None:
        try:
            check()
            results[name] = True
        except Exception:  # any failure means "not ready"; its text stays out of the answer and the log
            logger.warning("readiness check failed", extra={"code_name": name})
            results[name] = False
        finally:
            lock.release()

    for name, check in CHECKS.items():
        lock = _running[name]
        if not lock.acquire(blocking=False):
            results[name] = False  # the previous probe's check is still hanging
            continue
        thread = threading.Thread(target=run, args=(name, check, lock), name=f"readyz-{name}", daemon=True)
        threads[name] = thread
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        # One deadline for all: the checks run in parallel, so the probe takes at most `timeout`.
        thread.join(max(0.0, deadline - time.monotonic()))
    failed = tuple(name for name in CHECKS if not results.get(name, False))
    return Readiness(failed=failed)
