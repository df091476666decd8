"""Event-driven evaluation (issue 13): the reading that makes a patient due enqueues their evaluation on commit,
once per patient and day; the hourly schedule stays as the safety net. Eager mode, as in the demo."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.test import APIClient

from clinaiops.care.models import Patient, Reading
from clinaiops.core.models import User
from clinaiops.loops import tasks
from clinaiops.loops.models import Recommendation, Trigger
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.evaluation_trigger import evaluation_if_due
from governance.services import approval_policy_current
from inference.models import ModelVersion
from tests.conftest import readings_add


@pytest.fixture(autouse=True)
def _on(settings: Any, db: None) -> Iterator[None]:
    settings.EVALUATION_ON_READING = True
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The patient of every evaluation message sent; each still runs, eagerly, as it would without the count."""
    sent: list[int] = []
    real = tasks.evaluation_run_task.delay

    def delay(patient_id: int, *args: Any) -> Any:
        sent.append(patient_id)
        return real(patient_id, *args)

    monkeypatch.setattr(tasks.evaluation_run_task, "delay", delay)
    return sent


def _reading(minutes_ago: int, systolic: int = 150, diastolic: int = 92) -> dict[str, object]:
    taken_at = (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()
    return {"taken_at": taken_at, "systolic": systolic, "diastolic": diastolic, "heart_rate": 70, "source": "cuff"}


def _one_short(patient: Patient) -> None:
    """Readings over the last days, one fewer than the policy needs before an evaluation."""
    needed = approval_policy_current().min_readings
    readings_add(patient, [(150, 92)] * (needed - 1), end=timezone.now() - timedelta(hours=2))


def _post(client: APIClient, body: dict[str, object], capture: Callable[..., Any]) -> None:
    with capture(execute=True):
        response = client.post("/api/v1/readings/", body, format="json")
    assert response.status_code == 201, response.content


def test_the_reading_that_makes_a_patient_due_leads_to_exactly_one_evaluation(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    sends: list[int],
) -> None:
    _one_short(patient)
    client = api_client_for(patient.user)
    assert not Recommendation.objects.filter(patient=patient).exists()

    _post(client, _reading(30), django_capture_on_commit_callbacks)

    (rec,) = Recommendation.objects.filter(patient=patient)
    assert rec.trigger == Trigger.SCHEDULED
    assert rec.evaluation_date == timezone.now().date()
    assert rec.model_version_id == deployed_model.pk
    assert sends == [patient.pk]

    # A second reading the same day enqueues nothing more.
    _post(client, _reading(10), django_capture_on_commit_callbacks)

    assert sends == [patient.pk]
    assert Recommendation.objects.filter(patient=patient).count() == 1


def test_too_few_readings_enqueue_nothing_and_the_next_reading_asks_again(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    sends: list[int],
) -> None:
    needed = approval_policy_current().min_readings
    readings_add(patient, [(150, 92)] * (needed - 2), end=timezone.now() - timedelta(hours=2))
    client = api_client_for(patient.user)

    _post(client, _reading(30), django_capture_on_commit_callbacks)
    assert sends == []
    assert not Recommendation.objects.filter(patient=patient).exists()

    _post(client, _reading(20), django_capture_on_commit_callbacks)  # the one that makes it enough
    assert sends == [patient.pk]
    assert Recommendation.objects.filter(patient=patient, trigger=Trigger.SCHEDULED).count() == 1


def test_a_patient_evaluated_within_the_interval_is_not_due(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    sends: list[int],
) -> None:
    _one_short(patient)
    earlier = evaluation_run(patient=patient, as_of=timezone.now() - timedelta(days=2))
    assert earlier is not None
    client = api_client_for(patient.user)

    _post(client, _reading(30), django_capture_on_commit_callbacks)

    assert sends == []
    assert list(Recommendation.objects.filter(patient=patient)) == [earlier]


def test_an_evaluation_older_than_the_interval_makes_the_patient_due_again(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    sends: list[int],
    settings: Any,
) -> None:
    old = evaluation_run(patient=patient, as_of=timezone.now() - timedelta(days=settings.EVALUATION_INTERVAL_DAYS + 1))
    assert old is None or old.trigger == Trigger.SCHEDULED  # None: no readings back then, the skip is audited
    _one_short(patient)

    _post(api_client_for(patient.user), _reading(30), django_capture_on_commit_callbacks)

    assert sends == [patient.pk]
    assert Recommendation.objects.filter(patient=patient, evaluation_date=timezone.now().date()).count() == 1


def test_nothing_is_enqueued_before_the_commit_or_when_switched_off(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    sends: list[int],
    settings: Any,
) -> None:
    _one_short(patient)
    client = api_client_for(patient.user)
    settings.EVALUATION_ON_READING = False
    _post(client, _reading(30), django_capture_on_commit_callbacks)
    assert sends == []
    assert not Recommendation.objects.filter(patient=patient).exists()

    settings.EVALUATION_ON_READING = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post("/api/v1/readings/", _reading(20), format="json").status_code == 201
    assert sends == []  # waiting for the commit: nothing sent yet
    for callback in callbacks:
        callback()
    assert sends == [patient.pk]
    assert Recommendation.objects.filter(patient=patient).count() == 1


def test_a_refused_message_leaves_the_reading_stored_and_the_patient_to_the_schedule(
    patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: Any) -> None:
        raise BrokerError("connection refused")

    monkeypatch.setattr(tasks.evaluation_run_task, "delay", refused)
    _one_short(patient)

    _post(api_client_for(patient.user), _reading(30), django_capture_on_commit_callbacks)

    assert Reading.objects.filter(patient=patient).count() == approval_policy_current().min_readings
    assert not Recommendation.objects.filter(patient=patient).exists()
    # Not remembered as enqueued for the day: a later reading, the sweep or the schedule sends it.
    monkeypatch.undo()
    cache.delete(f"evaluation-sweep:{patient.pk}")
    assert tasks.evaluations_schedule() >= 1
    assert Recommendation.objects.filter(patient=patient, trigger=Trigger.SCHEDULED).count() == 1


def test_after_the_first_of_the_day_a_reading_costs_one_cache_read(
    patient: Patient, deployed_model: ModelVersion
) -> None:
    _one_short(patient)
    policy = approval_policy_current()
    now = timezone.now()
    assert evaluation_if_due(patient=patient, now=now, min_readings=policy.min_readings - 1, window_days=7)

    with CaptureQueriesContext(connection) as queries:
        assert not evaluation_if_due(patient=patient, now=now, min_readings=policy.min_readings - 1, window_days=7)
    assert len(queries) == 1, [q["sql"] for q in queries]  # the database cache's read; Redis in production
