"""A real Celery worker process on RabbitMQ runs the evaluation task against the test database.

The eager mode the rest of the suite uses never serialises a message, never crosses a process boundary and
never commits. Here the task travels as JSON through RabbitMQ to a `celery -A clinaiops worker` subprocess,
which opens the same database and artifact store, scores the patient with the deployed ONNX model and
commits the recommendation, and does so only once per patient per day however often the task is delivered.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Patient
from clinaiops.loops.models import Recommendation, Trigger
from clinaiops.loops.tasks import evaluation_run_task
from inference.models import ModelVersion
from tests.conftest import readings_add
from tests.e2e.conftest import Worker

pytestmark = pytest.mark.slow

TASK_NAME = "clinaiops.loops.tasks.evaluation_run"
WAIT_SECONDS = 60


def _wait_for(predicate: Any, what: str, worker: Worker) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker.process.poll() is not None:
            pytest.fail(f"the worker died (exit {worker.process.returncode}) while waiting for {what}:\n{worker.log()}")
        time.sleep(0.25)
    skipped = list(AuditEvent.objects.filter(action="evaluation.skipped").values_list("payload", flat=True))
    pytest.fail(f"no {what} within {WAIT_SECONDS} s; evaluation.skipped: {skipped}\nworker log:\n{worker.log_tail()}")


def _task_result(worker: Worker, task_id: str) -> str | None:
    """The return value the worker logged for one task id; fails at once if the task raised."""
    log = worker.log()
    if f"{TASK_NAME}[{task_id}] raised" in log:
        pytest.fail(f"task {task_id} raised in the worker:\n{worker.log_tail()}")
    match = re.search(rf"{re.escape(TASK_NAME)}\[{task_id}\] succeeded in [0-9.e-]+s: (\S+)", log)
    return match.group(1) if match else None


def _clear_of_midnight() -> None:
    """Scheduled evaluations are unique per UTC day; do not straddle midnight between the runs."""
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(seconds=30):
        time.sleep((midnight - now).total_seconds() + 1)


def test_real_worker_evaluates_a_patient_once_per_day(
    patient: Patient, deployed_model: ModelVersion, celery_worker: Worker, celery_app_on_broker: Any
) -> None:
    readings_add(patient, [(150, 92), (148, 90), (152, 94), (149, 91), (151, 93), (147, 90), (150, 92)])
    _clear_of_midnight()
    assert not Recommendation.objects.filter(patient=patient).exists()

    first = evaluation_run_task.delay(patient.pk)
    rec = _wait_for(lambda: Recommendation.objects.filter(patient=patient).first(), "recommendation", celery_worker)

    # The worker scored with the version production points at, and the policy tiered it.
    assert rec.model_version_id == deployed_model.pk
    assert rec.trigger == Trigger.SCHEDULED
    assert rec.tier in {"minor", "major"}
    assert rec.status == ("delivered" if rec.tier == "minor" else "pending_review")
    assert rec.action in {"decrease", "maintain", "increase"}
    assert rec.top_factors, "the worker should have explained the proposal with SHAP"
    assert rec.evaluation_date == timezone.now().date()
    assert _wait_for(lambda: _task_result(celery_worker, first.id), "log of the first task", celery_worker) == str(
        rec.pk
    )
    # The worker's audit event names the model by the hash of its ONNX bytes.
    created = AuditEvent.objects.get(action="recommendation.created", object_id=str(rec.pk))
    assert deployed_model.sha256 in str(created.payload)

    # Delivered twice more (a redelivery after a lost ack, a second beat tick): still one for the day.
    again = [evaluation_run_task.delay(patient.pk), evaluation_run_task.delay(patient.pk, timezone.now().isoformat())]
    for result in again:
        returned = _wait_for(lambda r=result: _task_result(celery_worker, r.id), f"task {result.id}", celery_worker)
        assert returned == str(rec.pk)
    scheduled = Recommendation.objects.filter(
        patient=patient, trigger=Trigger.SCHEDULED, evaluation_date=rec.evaluation_date
    )
    assert scheduled.count() == 1
    assert Recommendation.objects.filter(patient=patient).count() == 1
    assert AuditEvent.objects.filter(action="recommendation.created").count() == 1

    # Events written by two processes form one unbroken hash chain.
    verification = ledger_verify()
    assert verification.ok, verification


@pytest.mark.parametrize("celery_worker", [2], indirect=True)
def test_simultaneous_deliveries_of_one_evaluation_both_succeed_with_one_recommendation(
    patient: Patient, deployed_model: ModelVersion, celery_worker: Worker, celery_app_on_broker: Any
) -> None:
    # Two pool processes take the two deliveries at the same moment; the loser of the insert race must
    # return the winner's row instead of failing the task.
    readings_add(patient, [(150, 92), (148, 90), (152, 94), (149, 91), (151, 93), (147, 90), (150, 92)])
    _clear_of_midnight()
    results = [evaluation_run_task.delay(patient.pk), evaluation_run_task.delay(patient.pk)]
    returned = [
        _wait_for(lambda r=result: _task_result(celery_worker, r.id), f"task {result.id}", celery_worker)
        for result in results
    ]
    rec = Recommendation.objects.get(patient=patient)
    assert returned == [str(rec.pk), str(rec.pk)]
    assert AuditEvent.objects.filter(action="recommendation.created").count() == 1
    assert ledger_verify().ok
