"""gunicorn settings for production: `gunicorn -c python:clinaiops.ops.gunicorn clinaiops.wsgi`.

Sync workers (DESIGN §10: gthread cuts DRF throughput sharply on 2 cores). Each worker is a process, so the
request counters use prometheus_client's multiprocess mode: every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR and any worker's /metrics adds them all up. The folder must be empty when the server
starts (old files would be added to the new counts) and is emptied here; give Celery workers a folder of their
own. Without the variable a fresh temporary folder is used.

This module is read by the gunicorn master before any worker imports prometheus_client, which picks its value
store once, at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

_ENV = "PROMETHEUS_MULTIPROC_DIR"

if not os.environ.get(_ENV):
    os.environ[_ENV] = tempfile.mkdtemp(prefix="clinaiops-metrics-")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
# The access line comes from clinaiops.request as JSON with the route name; gunicorn's own would log the raw path
# and query string, which can carry identifiers.
accesslog = None
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))


def on_starting(server: Any) -> None:
    folder = Path(os.environ[_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    # Drops the dead worker's live-gauge files; its counters and histograms stay and keep being added up.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
