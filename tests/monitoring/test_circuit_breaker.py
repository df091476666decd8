"""The circuit breaker rolls a canary back when clinicians override it, or its patients come to harm, more
often than production's by the configured margin (DESIGN §3), exercised with real signed decisions."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, Patient
from clinaiops.care.services import ReadingInput
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.loops.services.review import review_decide
from inference.models import ModelVersion, ServingPointerEvent
from inference.monitoring.contracts import ArmPerformance, BreakerThresholds
from inference.monitoring.models import CanaryState, CircuitBreakerEvent, MonitoringAlert, PredictionLog
from inference.monitoring.services.canary import breaker_reasons, canary_breaker_check, canary_stage_advance
from inference.monitoring.tasks import canary_breaker_check_task
from inference.selectors import serving_version
from tests.conftest import readings_add
from tests.monitoring.conftest import cohort_split, deploy, proposal_for_review

OnCommit = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture
def canary_at_half(deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User) -> ModelVersion:
    deploy("canary", candidate_model, ml_engineer)
    canary_stage_advance(actor=ml_engineer)
    canary_stage_advance(actor=ml_engineer)
    return candidate_model


def _decide(clinician: User, password: str, patient: Patient, outcome: str) -> None:
    rec = proposal_for_review(patient)
    to_step = None
    if outcome == "modified":
        to_step = rec.to_step + 1 if rec.to_step < 6 else rec.to_step - 1
    review_decide(
        actor=clinician, recommendation=rec, outcome=outcome, reason="Clinical judgement.", password=password,
        to_step=to_step,
    )  # fmt: skip


def test_canary_overridden_more_than_production_is_rolled_back_audited_and_alerted(
    settings: Any,
    care_team: CareTeam,
    clinician: User,
    password: str,
    deployed_model: ModelVersion,
    canary_at_half: ModelVersion,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    settings.CANARY_MIN_DECISIONS = 4
    on, off = cohort_split(care_team, canary_at_half, 50, k=5)
    with django_capture_on_commit_callbacks(execute=True):
        for patient in off[:4]:
            _decide(clinician, password, patient, "accepted")
        for patient, outcome in zip(on[:3], ("rejected", "modified", "rejected"), strict=True):
            _decide(clinician, password, patient, outcome)
    # Three canary decisions are below the minimum: nothing is judged yet.
    assert serving_version(arm="canary") == canary_at_half
    assert PredictionLog.objects.filter(arm="canary", overridden=True).count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        _decide(clinician, password, on[3], "rejected")

    assert serving_version(arm="canary") is None
    assert serving_version(arm="production") == deployed_model
    event = CircuitBreakerEvent.objects.get()
    assert event.model_version == canary_at_half
    assert "override_rate" in event.reasons
    assert event.metrics["canary"]["override_rate"] == 1.0
    assert event.metrics["production"]["override_rate"] == 0.0
    assert event.metrics["canary"]["decisions"] == 4
    assert CanaryState.objects.get().status == "rolled_back"
    pointer_event = ServingPointerEvent.objects.filter(arm="canary").latest("set_at")
    # A system rollback in the pointer history: a later "roll back" by a person cannot restore this canary.
    assert (pointer_event.model_version, pointer_event.set_by, pointer_event.is_rollback, pointer_event.note) == (
        None, None, True, "circuit_breaker",
    )  # fmt: skip
    alert = MonitoringAlert.objects.get(kind="canary_rolled_back")
    assert (alert.status, alert.breaker_event) == ("open", event)
    # The ledger says what happened: the breaker tripped, and (as its consequence) the canary pointer moved.
    tripped = AuditEvent.objects.get(action="canary.breaker_tripped")
    assert (tripped.object_type, tripped.object_id) == ("circuit_breaker_event", str(event.pk))
    assert tripped.payload_data["tripped_on"] == event.reasons and "override_rate" in event.reasons
    moved = AuditEvent.objects.filter(action="serving.pointer_set", payload__contains='"circuit_breaker"')
    assert list(moved.values_list("object_type", "object_id")) == [("serving_pointer", "canary")]
    assert all(e.actor_id is None and e.actor_role == "system" for e in [tripped, *moved])

    # The canary's patients are served by production again.
    readings_add(on[4], [(150, 92)] * 8)
    rec = evaluation_run(patient=on[4])
    assert rec is not None and (rec.arm, rec.model_version) == ("production", deployed_model)


def test_a_canary_that_does_as_well_as_production_keeps_serving(
    settings: Any,
    care_team: CareTeam,
    clinician: User,
    password: str,
    canary_at_half: ModelVersion,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    settings.CANARY_MIN_DECISIONS = 3
    on, off = cohort_split(care_team, canary_at_half, 50, k=4)
    with django_capture_on_commit_callbacks(execute=True):
        for patient in off:
            _decide(clinician, password, patient, "accepted")
        # One override in four: 25 % against 0 % is over a 10-point margin, so the margin is raised to 30.
        settings.CANARY_OVERRIDE_MARGIN_PP = 30
        settings.CANARY_ERROR_MARGIN_PP = 30
        for patient, outcome in zip(on, ("accepted", "rejected", "accepted", "accepted"), strict=True):
            _decide(clinician, password, patient, outcome)
    assert serving_version(arm="canary") == canary_at_half
    assert not CircuitBreakerEvent.objects.exists()


def test_safety_events_after_canary_advice_trip_the_breaker_on_error_rate(
    settings: Any, care_team: CareTeam, canary_at_half: ModelVersion
) -> None:
    settings.CANARY_MIN_DECISIONS = 3
    on, off = cohort_split(care_team, canary_at_half, 50, k=3)
    for patient in [*on, *off]:
        readings_add(patient, [(121, 77)] * 8)
        rec = evaluation_run(patient=patient)
        assert rec is not None and rec.status == "delivered"  # minor: the advice reached the patient at once
    assert canary_breaker_check() is None  # no decisions, no safety events: nothing to hold against it
    for patient in on:  # each canary patient then has a hypertensive crisis
        reading_ingest(actor=patient.user, patient=patient, data=ReadingInput(timezone.now(), 186, 112, 90, "cuff"))
    event = canary_breaker_check_task.delay().get()
    tripped = CircuitBreakerEvent.objects.get(pk=event)
    assert tripped.reasons == ["error_rate"]  # no clinician decisions, so the override rate is not compared
    assert (tripped.metrics["canary"]["adverse"], tripped.metrics["production"]["adverse"]) == (3, 0)
    assert serving_version(arm="canary") is None
    # Running the check again (a retried task) changes nothing.
    assert canary_breaker_check_task.delay().get() is None
    assert CircuitBreakerEvent.objects.count() == 1


def _arm(decisions: int, overridden: int, settled: int | None = None, adverse: int = 0) -> ArmPerformance:
    return ArmPerformance("x", decisions, decisions, overridden, decisions if settled is None else settled, adverse)


THRESHOLDS = BreakerThresholds(min_decisions=20, override_margin=0.10, error_margin=0.10, outcome_days=14)


@pytest.mark.parametrize(
    ("canary", "production", "expected"),
    [
        (_arm(20, 7), _arm(100, 20), ["override_rate", "error_rate"]),  # 35 % vs 20 %
        (_arm(20, 6), _arm(100, 20), []),  # 30 % vs 20 %: exactly the margin is not more than it
        (_arm(19, 19), _arm(100, 0), []),  # below the minimum: not judged
        (_arm(20, 0, settled=40, adverse=8), _arm(100, 0, settled=100, adverse=5), ["error_rate"]),  # 20 % vs 5 %
        (_arm(20, 0), _arm(19, 0), []),  # production itself below the minimum
    ],
)
def test_breaker_compares_rates_over_the_margin_once_both_arms_have_enough_decisions(
    canary: ArmPerformance, production: ArmPerformance, expected: list[str]
) -> None:
    assert breaker_reasons(canary, production, THRESHOLDS) == expected


def test_clinician_decisions_are_logged_against_the_arm_that_proposed(
    patient: Patient, deployed_model: ModelVersion, clinician: User, password: str
) -> None:
    rec = proposal_for_review(patient)
    log = PredictionLog.objects.get(recommendation_id=rec.pk)
    assert (log.decided_at, log.overridden, log.advice_delivered_at) == (None, None, None)
    review_decide(actor=clinician, recommendation=rec, outcome="rejected", reason="Not yet.", password=password)
    log.refresh_from_db()
    assert (log.decision_outcome, log.overridden, log.final_step) == ("rejected", True, rec.from_step)
    assert log.advice_delivered_at is None  # the model's advice did not reach the patient
