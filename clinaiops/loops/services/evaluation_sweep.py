"""Due evaluations that got no answer (issue 8 §5): the hourly schedule enqueues one evaluation per due patient, and
a message lost to a broker outage, or a task that gave up after its retries on a database outage, used to leave
the patient waiting for the next hourly tick. The evaluations sweep (Celery beat, every RECOVERY_SWEEP_SECONDS)
enqueues again each due patient whose evaluation has neither been answered nor enqueued within
EVALUATION_SWEEP_GRACE_SECONDS.

What "enqueued" and "answered" mean is kept in the shared cache (Redis in production, the database cache in the
demo), one short-lived entry per patient: it is a hint, not a record. Losing it costs one extra delivery, which
the evaluation absorbs (one scheduled evaluation per patient per day); it never costs an evaluation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from clinaiops.loops.services.evaluation import patients_due_for_evaluation

_ENQUEUED = "enqueued"
_ANSWERED = "answered"


def _key(patient_id: int) -> str:
    return f"evaluation-sweep:{patient_id}"


def _schedule_interval_seconds() -> int:
    """How long an answer (a recommendation, a recorded skip) stands: until the next hourly schedule re-asks."""
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE.get("evaluations-schedule", {})
    seconds: float = entry.get("schedule", 3600.0)
    return int(seconds)


def evaluations_enqueued_mark(patient_ids: list[int]) -> None:
    """The schedule or the sweep has just sent these patients' evaluations to the broker."""
    grace = int(settings.EVALUATION_SWEEP_GRACE_SECONDS)
    cache.set_many({_key(patient_id): _ENQUEUED for patient_id in patient_ids}, timeout=grace)


def evaluation_answered_mark(patient_id: int) -> None:
    """A worker finished this patient's scheduled evaluation: a recommendation, its repeat for the day, or a
    recorded skip (no model serving, no recent readings). The sweep leaves it to the next schedule."""
    cache.set(_key(patient_id), _ANSWERED, timeout=_schedule_interval_seconds())


def evaluations_unanswered(*, as_of: datetime) -> list[int]:
    """Patients due for evaluation whose evaluation was neither answered nor enqueued within the grace period."""
    due = patients_due_for_evaluation(as_of=as_of)
    marks = cache.get_many([_key(patient_id) for patient_id in due])
    return [patient_id for patient_id in due if _key(patient_id) not in marks]
