"""Thin Celery tasks: fetch by id, call a service (STYLE.md). All are safe to run twice."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.loops import services


@shared_task(acks_late=True, name="clinaiops.loops.tasks.evaluation_run")
def evaluation_run_task(patient_id: int, as_of_iso: str | None = None) -> int | None:
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        return None
    as_of = datetime.fromisoformat(as_of_iso) if as_of_iso else timezone.now()
    rec = services.evaluation_run(patient=patient, as_of=as_of)
    return rec.pk if rec else None


@shared_task(acks_late=True, name="clinaiops.loops.tasks.evaluations_schedule")
def evaluations_schedule() -> int:
    """Enqueue an evaluation for each patient who is due. Idempotent: evaluation_run keeps one per day."""
    now = timezone.now()
    due = services.patients_due_for_evaluation(as_of=now)
    for patient_id in due:
        transaction.on_commit(partial(evaluation_run_task.delay, patient_id, now.isoformat()))
    return len(due)


@shared_task(acks_late=True, name="clinaiops.loops.tasks.alerts_escalate")
def alerts_escalate() -> int:
    return services.alerts_escalate()
