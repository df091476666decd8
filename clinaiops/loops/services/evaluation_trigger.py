"""Event-driven evaluation (issue 13): the reading that makes a patient due enqueues the patient's evaluation.

Before, a reading never triggered an evaluation: beat's hourly schedule did, so new readings waited up to an hour
plus the interval. Now, once a reading's transaction has committed, the patient is checked: due when their last
scheduled evaluation is at least EVALUATION_INTERVAL_DAYS old (or there is none), as for the schedule
(`patients_due_for_evaluation`), and when they have enough readings for the model to be trusted with them (the
policy's `min_readings` within `min_readings_window_days`, the bound the tiering applies). A due patient's
evaluation is enqueued as a *scheduled* one, so the rule that keeps one scheduled evaluation per patient per day
(`recommendation_one_scheduled_per_day`) makes any duplicate delivery a repeat that stores nothing.

Deduplication per patient and day is a cache entry (`evaluation-event:<patient>:<date>`, taken with an atomic
`add`), so the readings after the first of a due day cost one cache read and no query; a patient evaluated lately
is remembered as not due until the earlier of their due time and midnight. The cache is a hint, as for the
sweep (`evaluation_sweep`): losing it costs one extra delivery, never an evaluation. The hourly schedule stays as
the safety net, and a message the broker refuses is left to it and to the sweep (the reading itself is stored,
and its answer is not an error).

All of it runs after the commit, outside the reading's transaction: the ingest's own queries are unchanged, and a
rolled-back reading triggers nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Subquery

from clinaiops.care.models import Patient
from clinaiops.care.selectors import readings_recent
from clinaiops.loops.models import Recommendation, Trigger
from clinaiops.loops.services.evaluation_sweep import evaluations_enqueued_mark

logger = logging.getLogger(__name__)

_ENQUEUED = "enqueued"
_NOT_DUE = "not_due"


def _key(patient_id: int, day: datetime) -> str:
    return f"evaluation-event:{patient_id}:{day.date().isoformat()}"


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()))


def patient_due_state(
    *, patient: Patient, now: datetime, min_readings: int, window_days: int
) -> tuple[bool, datetime | None]:
    """(due, last scheduled evaluation within the interval) for one patient, in one query."""
    interval = timedelta(days=settings.EVALUATION_INTERVAL_DAYS)
    last_scheduled = (
        Recommendation.objects.filter(
            patient_id=patient.pk, trigger=Trigger.SCHEDULED, created_at__gt=now - interval, created_at__lte=now
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    readings = (
        readings_recent(patient=patient, end=now, window=timedelta(days=window_days))
        .order_by()
        .values("patient_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        Patient.objects.filter(pk=patient.pk)
        .annotate(last_scheduled=Subquery(last_scheduled), recent_readings=Subquery(readings))
        .values_list("last_scheduled", "recent_readings")
        .first()
    )
    if row is None:
        return False, None
    last, count = row
    return last is None and (count or 0) >= min_readings, last


def evaluation_if_due_on_commit(*, patient: Patient, now: datetime, min_readings: int, window_days: int) -> None:
    """After the current transaction commits, enqueue the patient's evaluation if this reading made them due."""
    transaction.on_commit(
        lambda: evaluation_if_due(patient=patient, now=now, min_readings=min_readings, window_days=window_days),
        robust=True,  # the reading is stored whatever happens here: a failure is logged, and the schedule retries
    )


def evaluation_if_due(*, patient: Patient, now: datetime, min_readings: int, window_days: int) -> bool:
    """Enqueue the patient's scheduled evaluation if they are due and none was enqueued for them today by a
    reading. True when this call enqueued it."""
    key = _key(patient.pk, now)
    if cache.get(key) is not None:
        return False
    due, last = patient_due_state(patient=patient, now=now, min_readings=min_readings, window_days=window_days)
    end_of_day = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    if not due:
        if last is not None:  # evaluated lately: not due again before its interval has passed
            due_at = last + timedelta(days=settings.EVALUATION_INTERVAL_DAYS)
            cache.set(key, _NOT_DUE, timeout=_seconds_until(min(due_at, end_of_day), now))
        return False  # too few readings yet: the next reading asks again
    if not cache.add(key, _ENQUEUED, timeout=_seconds_until(end_of_day, now)):
        return False  # a concurrent reading of the same patient got there first
    # clinaiops.loops.tasks imports the evaluation services; imported here, when a task is sent.
    from clinaiops.loops.tasks import evaluation_run_task

    # Marked before sending, as the sweep understands it: an eager run marks its answer, which must win.
    evaluations_enqueued_mark([patient.pk])
    try:
        evaluation_run_task.delay(patient.pk, now.isoformat())
    except Exception:
        # The broker refused the message (or an eager run failed): the sweep, once the grace period is over, and
        # the hourly schedule pick the patient up; a later reading today may try again.
        cache.delete(key)
        logger.exception("evaluation of a due patient not enqueued; the sweep and the schedule will retry")
        return False
    return True
