"""State read at scrape time: the clinical queues and alerts, the ledger, the models, the Celery queues.

Every query here is bounded by the size of what is *open* (pending reviews, open alerts) or reads one end of a
unique index (ledger head, newest checkpoint, newest drift report), so a scrape costs the same at 20k readings as
at 2M (docs/operations.md lists each query and its cost; bench/history_bench.py measures the scrape at both).
Nothing here counts history: counts of things that happened are process counters (clinaiops/ops/metrics.py).

A database that does not answer makes `clinaiops_metrics_database_up` 0 instead of failing the scrape, so the
process counters still arrive and the alert says what is wrong.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from amqp.exceptions import NotFound as AmqpNotFound
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import ChannelError
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.care.models import Alert, AlertPriority, AlertStatus
from clinaiops.celery import app
from clinaiops.loops.models import Recommendation, RecommendationStatus, Tier
from clinaiops.ops.partitions import partitions_summary
from inference.models import ServingPointer
from inference.monitoring.models import DriftReport, DriftSeverity, MonitoringAlert, MonitoringAlertStatus

logger = logging.getLogger(__name__)

# A scrape must never hold a database connection for long; Prometheus' own default scrape timeout is 10 s.
SCRAPE_STATEMENT_TIMEOUT_MS = 2000
REVIEW_AGE_BANDS = (("under_1h", timedelta(hours=1)), ("1h_to_24h", timedelta(hours=24)), ("over_24h", None))


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class ClinicalStateCollector:
    """Reviews, alerts, the audit ledger, drift, integrity and serving, read from the database."""

    def collect(self) -> Iterator[Metric]:
        up = _gauge("clinaiops_metrics_database_up", "1 when the scrape could read the database, else 0.")
        try:
            families = self.state(timezone.now())
        except DatabaseError:
            # No error text: it can quote a row. The log line says which scrape failed, by logger name.
            logger.warning("metrics scrape could not read the database")
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def state(self, now: datetime) -> list[Metric]:
        """The families as of `now`; raises DatabaseError when the database does not answer."""
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {SCRAPE_STATEMENT_TIMEOUT_MS}")
            return [
                *self._reviews(now), *self._alerts(now), *self._ledger(now), *self._models(now),
                *self._partitions(now),
            ]  # fmt: skip

    def _reviews(self, now: datetime) -> list[Metric]:
        # The (status, tier) index: rows read = reviews pending, whatever the history.
        counts: dict[str, Any] = {"oldest": Min("created_at")}
        lower = now
        for band, span in REVIEW_AGE_BANDS:
            if span is None:
                counts[band] = Count("pk", filter=Q(created_at__lte=lower))
            else:
                counts[band] = Count("pk", filter=Q(created_at__lte=lower, created_at__gt=now - span))
                lower = now - span
        row = Recommendation.objects.filter(status=RecommendationStatus.PENDING_REVIEW, tier=Tier.MAJOR).aggregate(
            **counts
        )
        pending = _gauge("clinaiops_reviews_pending", "Major proposals waiting for clinician review, by age.", ["age"])
        for band, _ in REVIEW_AGE_BANDS:
            pending.add_metric([band], float(row[band] or 0))
        oldest = _gauge(
            "clinaiops_review_oldest_pending_age_seconds", "Age of the oldest proposal in the review queue (0: empty)."
        )
        oldest.add_metric([], _age(now, row["oldest"]))
        return [pending, oldest]

    def _alerts(self, now: datetime) -> list[Metric]:
        # status='open' matches the partial unique index alert_one_open_per_kind: rows read = open alerts.
        cutoff = now - timedelta(minutes=settings.ALERT_ESCALATION_MINUTES)
        rows = (
            Alert.objects.filter(status=AlertStatus.OPEN)
            .values("priority", "kind")
            .annotate(
                n=Count("pk"),
                escalated=Count("pk", filter=Q(escalated_at__isnull=False)),
                past=Count("pk", filter=Q(opened_at__lte=cutoff)),
                overdue=Count("pk", filter=Q(opened_at__lte=cutoff, escalated_at__isnull=True)),
                oldest=Min("opened_at"),
            )
            .order_by()
        )
        open_ = _gauge("clinaiops_alerts_open", "Care-team safety alerts not yet acknowledged.", ["priority", "kind"])
        escalated = _gauge(
            "clinaiops_alerts_open_escalated", "Open alerts already escalated along the chain.", ["priority"]
        )
        past = _gauge(
            "clinaiops_alerts_open_past_escalation",
            "Open alerts older than ALERT_ESCALATION_MINUTES: nobody acknowledged them in time.",
            ["priority"],
        )
        overdue = _gauge(
            "clinaiops_alerts_escalation_overdue",
            "Open alerts past ALERT_ESCALATION_MINUTES that were not escalated (is the escalation task running?).",
            ["priority"],
        )
        oldest = _gauge("clinaiops_alert_oldest_open_age_seconds", "Age of the oldest open alert.", ["priority"])
        per_priority: dict[str, dict[str, Any]] = {
            p: {"escalated": 0, "past": 0, "overdue": 0, "oldest": None} for p in AlertPriority.values
        }
        for row in rows:
            open_.add_metric([row["priority"], row["kind"]], float(row["n"]))
            total = per_priority.setdefault(row["priority"], {"escalated": 0, "past": 0, "overdue": 0, "oldest": None})
            for key in ("escalated", "past", "overdue"):
                total[key] += row[key]
            if total["oldest"] is None or row["oldest"] < total["oldest"]:
                total["oldest"] = row["oldest"]
        for priority, total in per_priority.items():
            escalated.add_metric([priority], float(total["escalated"]))
            past.add_metric([priority], float(total["past"]))
            # Only P0 alerts escalate (DESIGN §2); a P1 past the cutoff is late, not overdue for escalation.
            overdue.add_metric([priority], float(total["overdue"]) if priority == AlertPriority.P0 else 0.0)
            oldest.add_metric([priority], _age(now, total["oldest"]))
        return [open_, escalated, past, overdue, oldest]

    def _partitions(self, now: datetime) -> list[Metric]:
        # The catalog (one row per month) and one EXISTS per DEFAULT partition: the same cost at any size. No
        # samples on SQLite, which has no partitions.
        ahead = _gauge(
            "clinaiops_partition_months_ahead",
            "Month partitions made beyond the current month (0: the next month's rows would go to DEFAULT).",
            ["table"],
        )
        default = _gauge(
            "clinaiops_partition_default_has_rows",
            "1 when the table's DEFAULT partition holds rows (`manage.py partitions --split-default`).",
            ["table"],
        )
        for summary in partitions_summary(now):
            ahead.add_metric([summary.table], float(summary.months_ahead))
            default.add_metric([summary.table], 1.0 if summary.default_has_rows else 0.0)
        return [ahead, default]

    def _ledger(self, now: datetime) -> list[Metric]:
        # Both ends read through the unique index on seq: one index probe each, at any ledger size.
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        checkpoint = AuditCheckpoint.objects.order_by("-seq").values_list("seq", "created_at").first()
        checkpoint_seq = checkpoint[0] if checkpoint else 0
        # The checkpoint's own "checkpoint created" event always follows it; it does not need witnessing by a later
        # checkpoint, or an idle ledger would look unwitnessed forever. Rows read: the events since the checkpoint
        # up to the first other one (usually one or two).
        first_unwitnessed = (
            AuditEvent.objects.filter(seq__gt=checkpoint_seq)
            .exclude(action=AuditAction.CHECKPOINT_CREATED)
            .order_by("seq")
            .values_list("recorded_at", flat=True)
            .first()
        )
        families: list[Metric] = []
        head_g = _gauge("clinaiops_audit_head_seq", "Sequence number of the newest audit ledger event.")
        head_g.add_metric([], float(head))
        cp_seq = _gauge("clinaiops_audit_checkpoint_seq", "Ledger seq covered by the newest signed checkpoint.")
        cp_seq.add_metric([], float(checkpoint_seq))
        unwitnessed = _gauge(
            "clinaiops_audit_oldest_unwitnessed_age_seconds",
            "Age of the oldest ledger event no signed checkpoint covers yet (0: all covered).",
        )
        unwitnessed.add_metric([], _age(now, first_unwitnessed))
        families += [head_g, cp_seq, unwitnessed]
        if checkpoint is not None:
            # Until the external checkpoint witness lands, the newest AuditCheckpoint row stands for it.
            age = _gauge(
                "clinaiops_audit_checkpoint_age_seconds",
                "Age of the newest signed checkpoint (read from the AuditCheckpoint table until the witness lands).",
            )
            age.add_metric([], _age(now, checkpoint[1]))
            families.append(age)
        interval = _checkpoint_interval_seconds()
        if interval is not None:
            configured = _gauge(
                "clinaiops_audit_checkpoint_interval_seconds", "How often beat schedules a checkpoint (configured)."
            )
            configured.add_metric([], interval)
            families.append(configured)
        return families

    def _models(self, now: datetime) -> list[Metric]:
        # Deduplicated alerts (one open per key) and a handful of pointers: small tables.
        monitoring = (
            MonitoringAlert.objects.filter(status=MonitoringAlertStatus.OPEN)
            .values("kind")
            .annotate(n=Count("pk"), occurrences=Sum("occurrences"))
            .order_by()
        )
        open_ = _gauge("clinaiops_monitoring_alerts_open", "Open alerts for ML engineers, by kind.", ["kind"])
        integrity = _gauge(
            "clinaiops_model_integrity_failures",
            "Refused model loads (artifact or manifest failed verification) counted on open integrity alerts.",
        )
        failures = 0
        for row in monitoring:
            open_.add_metric([row["kind"]], float(row["n"]))
            if row["kind"] == "model_integrity":
                failures += int(row["occurrences"] or 0)
        integrity.add_metric([], float(failures))
        families: list[Metric] = [open_, integrity]

        # The newest report by primary key (its index), without the per-feature JSON.
        latest = DriftReport.objects.order_by("-pk").values("created_at", "severity", "drifted").first()
        if latest is not None:
            severity = _gauge(
                "clinaiops_drift_severity", "Severity of the newest drift report: 1 for its severity.", ["severity"]
            )
            for value in DriftSeverity.values:
                severity.add_metric([value], 1.0 if latest["severity"] == value else 0.0)
            age = _gauge("clinaiops_drift_report_age_seconds", "Age of the newest drift report.")
            age.add_metric([], _age(now, latest["created_at"]))
            severe = _gauge(
                "clinaiops_drift_features_severe", "Features (and prediction) the newest report calls severe."
            )
            severe.add_metric([], float(len(latest["drifted"] or [])))
            families += [severity, age, severe]

        serving = _gauge(
            "clinaiops_serving_model_info", "Which model version serves each arm (value 1).", ["arm", "version"]
        )
        for arm, version_id in ServingPointer.objects.values_list("arm", "model_version_id"):
            serving.add_metric([arm, str(version_id)], 1.0)
        families.append(serving)
        return families


def _checkpoint_interval_seconds() -> float | None:
    entry = settings.CELERY_BEAT_SCHEDULE.get("audit-checkpoint", {})
    schedule = entry.get("schedule")
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    return None  # a crontab: no single interval to export


# --- Celery queues ----------------------------------------------------------------------------------------

QUEUE_CACHE_SECONDS = 10.0
BROKER_TIMEOUT_SECONDS = 1.0

_queue_lock = threading.Lock()
_queue_cache: tuple[float, list[Metric]] | None = None


def celery_queue_names() -> list[str]:
    """The queues workers consume, from Celery's configuration: task_queues when set, the queues named in
    task_routes, and the default queue. Queues per kind of work need no change here."""
    names: list[str] = []
    queues = app.conf.task_queues or ()
    for queue in queues.values() if isinstance(queues, dict) else queues:
        name = getattr(queue, "name", queue)
        if isinstance(name, str):
            names.append(name)
    routes = app.conf.task_routes or {}
    # task_routes is a dict, or a list of dicts and router functions (functions cannot be read ahead of time).
    for router in [routes] if isinstance(routes, dict) else list(routes):
        if not isinstance(router, dict):
            continue
        for route in router.values():
            queue = route.get("queue") if isinstance(route, dict) else route
            name = getattr(queue, "name", queue)
            if isinstance(name, str):
                names.append(name)
    names.append(app.conf.task_default_queue or "celery")
    return sorted(set(names))


def queue_depths(names: list[str], *, timeout: float = BROKER_TIMEOUT_SECONDS) -> dict[str, int]:
    """Messages ready in each queue, by a passive declare (it creates nothing). A queue the broker does not know
    (RabbitMQ: not declared yet; Redis: an empty list does not exist) has 0. Raises when the broker is down."""
    options = {
        **(app.conf.broker_transport_options or {}),
        # Read by the Redis transport, and by py-amqp through kombu; each ignores the other's.
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "read_timeout": timeout,
        "write_timeout": timeout,
    }
    depths: dict[str, int] = {}
    with Connection(app.conf.broker_url, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=math.ceil(timeout))
        for name in names:
            # A fresh channel per queue: RabbitMQ closes the channel that asked about an unknown queue.
            channel: Any = conn.channel()
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except (ChannelError, AmqpNotFound):
                depths[name] = 0
            finally:
                with contextlib.suppress(Exception):  # a channel the broker already closed
                    channel.close()
    return depths


class QueueDepthCollector:
    """Celery queue depth per configured queue. The broker answers in milliseconds; when it does not, the scrape
    waits at most BROKER_TIMEOUT_SECONDS, and the answer is kept QUEUE_CACHE_SECONDS per process so a dead broker
    does not slow every scrape by the timeout."""

    def collect(self) -> Iterator[Metric]:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return  # no broker: tasks run in-process (the embedded default)
        global _queue_cache
        with _queue_lock:
            now = time.monotonic()
            if _queue_cache is None or now - _queue_cache[0] > QUEUE_CACHE_SECONDS:
                _queue_cache = (now, self._read())
            families = _queue_cache[1]
        yield from families

    def _read(self) -> list[Metric]:
        up = _gauge("clinaiops_celery_broker_up", "1 when the scrape could read queue depths from the broker.")
        depth = _gauge("clinaiops_celery_queue_depth", "Messages waiting in a Celery queue.", ["queue"])
        try:
            depths = queue_depths(celery_queue_names())
        except Exception:  # any transport error: the broker is what is down, and the gauge says so
            logger.warning("metrics scrape could not read the broker")
            up.add_metric([], 0.0)
            return [up]
        up.add_metric([], 1.0)
        for name, count in depths.items():
            depth.add_metric([name], float(count))
        return [up, depth]


def queue_cache_clear() -> None:
    global _queue_cache
    with _queue_lock:
        _queue_cache = None
