"""Where the process-local counters are fed from: Celery task signals and the creation of readings and
recommendations.

Why signals and not calls in the services: the services are the loops' business and are being reorganised; a
post-save hook counts every reading and recommendation whichever service wrote it, and never blocks or fails it.
The counters are bumped on commit, so a rolled-back ingest is not counted. A bulk insert (bench seeding, the
synthetic cohort's SQL) sends no signal and is rightly not counted as ingestion; tests/ops pin that a reading
POSTed through the API is counted, so a service that stops sending post_save is caught.
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import partial
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_ready
from django.db import transaction
from django.db.models.signals import post_save
from prometheus_client import start_http_server

from clinaiops.env import env_int, env_str
from clinaiops.ops import metrics
from clinaiops.ops.exposition import process_registry
from clinaiops.ops.logs import task_id_reset, task_id_set

logger = logging.getLogger(__name__)

# The beat task that escalates overdue P0 alerts returns how many it escalated (clinaiops.loops.tasks).
ESCALATION_TASK = "clinaiops.loops.tasks.alerts_escalate"

_started: dict[str, tuple[float, Any]] = {}


def _reading_saved(sender: type[Any], instance: Any, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        transaction.on_commit(partial(metrics.READINGS_INGESTED.labels(source=str(instance.source)).inc))


def _recommendation_saved(sender: type[Any], instance: Any, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        counter = metrics.EVALUATIONS.labels(tier=str(instance.tier), arm=str(instance.arm))
        transaction.on_commit(partial(counter.inc))


def _task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    _started[task_id] = (time.perf_counter(), task_id_set(task_id))


def _task_finished(
    task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    if task_id is None:
        return
    started = _started.pop(task_id, None)
    name = getattr(task, "name", None) or "unknown"
    if started is not None:
        began, token = started
        metrics.CELERY_TASK_DURATION.labels(task=name, state=state or "unknown").observe(time.perf_counter() - began)
        # A reset from another context (a task that hopped threads) fails; the next task overwrites the id anyway.
        with contextlib.suppress(ValueError):
            task_id_reset(token)
    if name == ESCALATION_TASK and isinstance(retval, int) and retval > 0:
        metrics.ALERT_ESCALATIONS.inc(retval)


def _worker_metrics_serve(**kwargs: Any) -> None:
    """A Celery worker has no web server, so with METRICS_WORKER_PORT it serves its own /metrics (task durations
    and the counters its processes bumped), on METRICS_WORKER_ADDR (default loopback: this port has no token)."""
    port = env_int("METRICS_WORKER_PORT", 0)
    if not port:
        return

    addr = env_str("METRICS_WORKER_ADDR", "127.0.0.1")
    start_http_server(port, addr=addr, registry=process_registry())
    logger.info("worker metrics served", extra={"port": port})


def connect() -> None:
    # Imported here: connect() runs in AppConfig.ready(), the first moment models can be imported.
    from clinaiops.care.models import Reading
    from clinaiops.loops.models import Recommendation

    post_save.connect(_reading_saved, sender=Reading, dispatch_uid="ops.readings_ingested")
    post_save.connect(_recommendation_saved, sender=Recommendation, dispatch_uid="ops.evaluations")
    task_prerun.connect(_task_started, dispatch_uid="ops.task_started", weak=False)
    task_postrun.connect(_task_finished, dispatch_uid="ops.task_finished", weak=False)
    worker_ready.connect(_worker_metrics_serve, dispatch_uid="ops.worker_metrics", weak=False)
