"""Sticky canary routing, and the arm and version every recommendation records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.errors import InvalidTransition, PermissionRefused
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from inference.models import ModelVersion
from inference.monitoring.models import PredictionLog
from inference.monitoring.routing import canary_bucket, routing_for_patient
from inference.monitoring.services.canary import canary_stage_advance
from tests.conftest import audit_actions, readings_add
from tests.monitoring.conftest import cohort, cohort_split, deploy, on_canary


@given(st.integers(min_value=1, max_value=10**12), st.text(max_size=20))
def test_canary_bucket_is_stable_and_in_range(patient_id: int, salt: str) -> None:
    bucket = canary_bucket(patient_id, salt)
    assert 0 <= bucket < 100
    assert canary_bucket(patient_id, salt) == bucket


def test_canary_buckets_spread_evenly_and_a_new_salt_samples_other_patients() -> None:
    buckets = [canary_bucket(patient_id, "salt-a") for patient_id in range(1, 20_001)]
    for percent in (5, 20, 50):
        share = sum(b < percent for b in buckets) / len(buckets)
        assert abs(share - percent / 100) < 0.01
    first = {i for i, b in enumerate(buckets) if b < 5}
    second = {i for i in range(20_000) if canary_bucket(i + 1, "salt-b") < 5}
    # Independent 5 % samples overlap in about 5 % of each other, not wholesale.
    assert len(first & second) < 0.15 * len(first)


@given(st.integers(min_value=1, max_value=10**9))
def test_raising_the_stage_only_adds_patients(patient_id: int) -> None:
    stages = [canary_bucket(patient_id, "s") < percent for percent in (5, 20, 50, 100)]
    # Once on the canary at a stage, on it at every later stage.
    assert stages == sorted(stages)
    assert stages[-1]


def test_without_a_canary_everyone_is_served_by_production(patient: Patient, deployed_model: ModelVersion) -> None:
    routing = routing_for_patient(patient.pk)
    assert (routing.arm, routing.version, routing.shadow) == ("production", deployed_model, None)


def test_each_recommendation_records_the_arm_and_version_that_served_it(
    care_team: CareTeam, deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    for _ in range(2):
        canary_stage_advance(actor=ml_engineer)  # 5 → 20 → 50 %
    on, off = cohort_split(care_team, candidate_model, 50, k=3)
    for patient in [*on, *off]:
        readings_add(patient, [(150, 92)] * 8)
        rec = evaluation_run(patient=patient)
        assert rec is not None
        canary = on_canary(patient, candidate_model, 50)
        expected = ("canary", candidate_model) if canary else ("production", deployed_model)
        assert (rec.arm, rec.model_version) == expected
        log = PredictionLog.objects.get(recommendation_id=rec.pk)
        assert (log.arm, log.model_version_id, log.proposed_step) == (rec.arm, rec.model_version_id, rec.to_step)
    assert sorted(PredictionLog.objects.values_list("arm", flat=True)) == ["canary"] * 3 + ["production"] * 3


def test_a_patient_stays_on_the_same_arm_across_evaluations(
    care_team: CareTeam, deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    canary_stage_advance(actor=ml_engineer)
    patients = cohort(care_team, 8)
    first = {p.pk: routing_for_patient(p.pk).arm for p in patients}
    canary_stage_advance(actor=ml_engineer)
    second = {p.pk: routing_for_patient(p.pk).arm for p in patients}
    assert all(second[pk] == "canary" for pk, arm in first.items() if arm == "canary")


def test_stages_advance_5_20_50_100_with_audit_and_then_stop(
    deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    stages = [canary_stage_advance(actor=ml_engineer).stage_percent for _ in range(3)]
    assert stages == [20, 50, 100]
    with pytest.raises(InvalidTransition, match="already serves every patient"):
        canary_stage_advance(actor=ml_engineer)
    advances = AuditEvent.objects.filter(object_type="canary_state", outcome="success").order_by("seq")
    assert [(e.action, e.actor_id) for e in advances] == [("canary.stage_advanced", ml_engineer.pk)] * 3
    assert [(e.payload_data["from_percent"], e.payload_data["to_percent"]) for e in advances] == [
        (5, 20), (20, 50), (50, 100),
    ]  # fmt: skip


@pytest.mark.parametrize("persona", ["clinician", "safety_officer", "compliance_officer"])
def test_only_an_ml_engineer_may_advance_a_canary(
    persona: str,
    request: pytest.FixtureRequest,
    deployed_model: ModelVersion,
    candidate_model: ModelVersion,
    ml_engineer: User,
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    with pytest.raises(PermissionRefused):
        canary_stage_advance(actor=request.getfixturevalue(persona))
    assert routing_for_patient(1).canary_percent == 5
    assert audit_actions(outcome="denied", object_type="canary_state") == ["canary.stage_advanced"]


def test_redeploying_a_canary_starts_again_at_the_first_stage(
    deployed_model: ModelVersion, candidate_model: ModelVersion, ml_engineer: User
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    canary_stage_advance(actor=ml_engineer)
    assert routing_for_patient(1).canary_percent == 20
    deploy("canary", candidate_model, ml_engineer)
    assert routing_for_patient(1).canary_percent == 5


def test_routing_adds_at_most_three_queries_to_the_recommendation_path(
    patient: Patient,
    deployed_model: ModelVersion,
    candidate_model: ModelVersion,
    ml_engineer: User,
    django_assert_num_queries: Any,
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    deploy("shadow", candidate_model, ml_engineer)
    # The pointers with their integrity holds, then the canary's stage: whatever the number of patients.
    with django_assert_num_queries(2):
        routing = routing_for_patient(patient.pk)
    assert routing.canary_percent == 5
