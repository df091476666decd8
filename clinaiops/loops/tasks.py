"""Thin Celery tasks: fetch by id, call a service (STYLE.md). All are safe to run twice, and all retry with
backoff on a transient database error (clinaiops.core.task_retry) instead of being acked as failed."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.care.notifications import notifications_redeliver
from clinaiops.core.task_retry import durable_task
from clinaiops.loops.services.escalation import alerts_escalate
from clinaiops.loops.services.evaluation import evaluation_run, patients_due_for_evaluation
from clinaiops.loops.services.evaluation_sweep import (
    evaluation_answered_mark,
    evaluations_enqueued_mark,
    evaluations_unanswered,
)


@durable_task(name="clinaiops.loops.tasks.evaluation_run")
def evaluation_run_task(patient_id: int, as_of_iso: str | None = None) -> int | None:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        return None
    as_of = datetime.fromisoformat(as_of_iso) if as_of_iso else timezone.now()
    rec = evaluation_run(patient=patient, as_of=as_of)
    evaluation_answered_mark(patient_id)
    return rec.pk if rec else None


def _evaluations_enqueue(patient_ids: list[int], as_of: datetime) -> None:
    # Not inside a transaction (a beat task runs in autocommit), so each message leaves as it is made; one the
    # broker refuses raises here and the rest wait for the sweep. Marked only once sent.
    for patient_id in patient_ids:
        evaluation_run_task.delay(patient_id, as_of.isoformat())
        evaluations_enqueued_mark([patient_id])


@durable_task(name="clinaiops.loops.tasks.evaluations_schedule")
def evaluations_schedule() -> int:
    """Hourly (beat): enqueue an evaluation for each patient who is due. Idempotent: evaluation_run keeps one per
    day."""
    now = timezone.now()
    due = patients_due_for_evaluation(as_of=now)
    _evaluations_enqueue(due, now)
    return len(due)


@durable_task(name="clinaiops.loops.tasks.evaluations_sweep")
def evaluations_sweep() -> int:
    """Every few minutes (beat): enqueue again each due evaluation that got no answer (its message was lost to a
    broker outage, or its task gave up on a database outage)."""
    now = timezone.now()
    unanswered = evaluations_unanswered(as_of=now)
    _evaluations_enqueue(unanswered, now)
    return len(unanswered)


@durable_task(name="clinaiops.loops.tasks.alerts_escalate")
def alerts_escalate_task() -> int:
    """Every ALERT_ESCALATION_SWEEP_SECONDS (beat): take the due escalation steps, then send again the notices a
    lost message or a failed channel left undelivered."""
    escalated = alerts_escalate()
    notifications_redeliver()
    return escalated
