"""What this process counts, as Prometheus instruments (prometheus_client).

Two kinds of metrics leave /metrics, and they are kept apart on purpose:

- **Events counted in the process that saw them** (this module): request latency and responses, readings
  ingested, evaluations, escalations, Celery task durations. gunicorn runs several worker processes and a scrape
  reaches one of them, so these use prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set
  (clinaiops/ops/gunicorn.py sets it up): each process writes its values to memory-mapped files in that folder and
  the scrape adds them up. Without it (runserver, tests, eager Celery) they live in the process's own registry.
- **State read from the database at scrape time** (clinaiops/ops/collectors.py): reviews pending, open alerts,
  the ledger head, checkpoint age, drift, integrity failures, queue depth. Every worker computes the same value
  from the same tables, so they need no multiprocess bookkeeping and cannot drift between workers.

Labels carry route names, enums and task names only: never a raw path, an id or anything typed by a person, so a
label can neither leak PHI nor grow without bound.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Bucket edges sit on the SLO thresholds (50 ms serving P99, 100 ms P95, 500 ms P99), so the alert rules' ratios
# of requests under a threshold are exact rather than interpolated.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

HTTP_REQUEST_DURATION = Histogram(
    "clinaiops_http_request_duration_seconds",
    "Time from the first middleware to the response, per Django route name.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_RESPONSES = Counter(
    "clinaiops_http_responses",
    "Responses per route name and status class (2xx, 3xx, 4xx, 5xx).",
    ["view", "method", "status_class"],
)
READINGS_INGESTED = Counter(
    "clinaiops_readings_ingested",
    "Blood-pressure readings stored (duplicates a device resends are not counted), by source.",
    ["source"],
)
EVALUATIONS = Counter(
    "clinaiops_evaluations",
    "Recommendations created by an evaluation, by approval tier and deployment arm.",
    ["tier", "arm"],
)
ALERT_ESCALATIONS = Counter(
    "clinaiops_alert_escalations",
    "Unacknowledged P0 alerts escalated along the care team's chain.",
)
CELERY_TASK_DURATION = Histogram(
    "clinaiops_celery_task_duration_seconds",
    "Celery task run time in the worker, by task name and final state.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def method_label(method: str | None) -> str:
    # Anything else a client can type would be a new label value each time.
    return method if method in KNOWN_METHODS else "other"
