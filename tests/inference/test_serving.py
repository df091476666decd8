"""Serving pointers: which approval states may serve on which arm, rollback, and the pointer history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.core.errors import InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import User
from inference.models import ApprovalState, Arm, ModelVersion, ServingPointerEvent
from inference.selectors import serving_version, serving_version_at
from inference.services.registry import model_version_transition
from inference.services.serving import (
    model_version_promote,
    serving_pointer_set,
    serving_rollback,
    serving_rollback_automatic,
)
from inference.services.training import training_run_create, training_run_execute
from tests.conftest import audit_actions, model_approve


@pytest.fixture
def second_model(deployed_model: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """Another approved version of the same line (different regularisation: different ONNX bytes)."""
    run = training_run_create(
        actor=ml_engineer, snapshot=deployed_model.training_run.snapshot, params={"C": 0.95}, seed=11
    )
    version = ModelVersion.objects.get(sha256=training_run_execute(run_id=run.pk).model_sha256)
    assert version.approval_state == ApprovalState.VALIDATED, version.failed_gates
    return model_approve(version, ml_engineer, safety_officer)


def test_production_and_canary_refuse_a_validated_version_but_shadow_takes_it(
    trained_model: ModelVersion, ml_engineer: User
) -> None:
    for arm in (Arm.PRODUCTION, Arm.CANARY):
        with pytest.raises(InvalidTransition, match="needs two sign-offs"):
            model_version_promote(version=trained_model, arm=arm, actor=ml_engineer)
    model_version_promote(version=trained_model, arm=Arm.SHADOW, actor=ml_engineer)

    assert serving_version(arm=Arm.SHADOW) == trained_model
    assert serving_version() is None
    denied = audit_actions(object_type="serving_pointer", outcome="denied")
    assert denied == ["serving.pointer_set", "serving.pointer_set"]


def test_a_retired_or_rejected_version_serves_nowhere(deployed_model: ModelVersion, ml_engineer: User) -> None:
    model_version_transition(version=deployed_model, to_state=ApprovalState.RETIRED, actor=ml_engineer, reason="t")
    for arm in Arm.values:
        with pytest.raises(InvalidTransition, match="retired model cannot serve"):
            serving_pointer_set(arm=arm, version=deployed_model, actor=ml_engineer, reason="test")


def test_only_an_ml_engineer_promotes(deployed_model: ModelVersion, safety_officer: User, clinician: User) -> None:
    for actor in (safety_officer, clinician):
        with pytest.raises(PermissionRefused):
            model_version_promote(version=deployed_model, arm=Arm.CANARY, actor=actor)
    assert serving_version(arm=Arm.CANARY) is None


def test_rollback_restores_the_previous_version_and_history_answers_which_served_when(
    deployed_model: ModelVersion, second_model: ModelVersion, ml_engineer: User, safety_officer: User
) -> None:
    model_version_promote(version=second_model, arm=Arm.PRODUCTION, actor=ml_engineer)
    while_second_served = timezone.now()

    event = serving_rollback(arm=Arm.PRODUCTION, actor=safety_officer, reason="override rate doubled since Monday")

    assert serving_version() == deployed_model
    assert event.is_rollback and event.previous_version == second_model and event.model_version == deployed_model
    assert event.note == "override rate doubled since Monday"
    assert serving_version_at(arm=Arm.PRODUCTION, at=while_second_served) == second_model
    assert serving_version_at(arm=Arm.PRODUCTION, at=timezone.now()) == deployed_model
    assert serving_version_at(arm=Arm.PRODUCTION, at=event.set_at - timedelta(days=1)) is None

    audited = AuditEvent.objects.filter(object_type="serving_pointer").order_by("-seq").first()
    assert audited is not None and audited.actor == safety_officer
    assert audited.payload_data["rollback"] is True and audited.payload_data["to_sha256"] == deployed_model.sha256
    assert "override" not in audited.payload  # the operator's words stay out of the ledger, only a digest


def test_rolling_back_twice_goes_further_back_instead_of_flipping(
    deployed_model: ModelVersion, second_model: ModelVersion, ml_engineer: User
) -> None:
    model_version_promote(version=second_model, arm=Arm.PRODUCTION, actor=ml_engineer)
    serving_rollback(arm=Arm.PRODUCTION, actor=ml_engineer, reason="first")
    assert serving_version() == deployed_model

    last = serving_rollback(arm=Arm.PRODUCTION, actor=ml_engineer, reason="second")

    # Before the deployed model nothing served: rules only, every proposal to a clinician.
    assert last.model_version is None and serving_version() is None
    with pytest.raises(InvalidTransition, match="nothing to roll back"):
        serving_rollback(arm=Arm.PRODUCTION, actor=ml_engineer, reason="third")


def test_rollback_needs_a_reason_and_an_authorised_role(
    deployed_model: ModelVersion, clinician: User, compliance_officer: User, ml_engineer: User
) -> None:
    for actor in (clinician, compliance_officer):
        with pytest.raises(PermissionRefused):
            serving_rollback(arm=Arm.PRODUCTION, actor=actor, reason="because")
    with pytest.raises(ValidationFailed):
        serving_rollback(arm=Arm.PRODUCTION, actor=ml_engineer, reason="  ")
    assert serving_version() == deployed_model
    assert audit_actions(object_type="serving_pointer", outcome="denied") == ["serving.pointer_set"] * 2


def test_rollback_of_an_arm_that_never_served_is_refused(ml_engineer: User) -> None:
    with pytest.raises(InvalidTransition, match="nothing to roll back"):
        serving_rollback(arm=Arm.CANARY, actor=ml_engineer, reason="test")
    assert not ServingPointerEvent.objects.exists()


def test_rollback_refuses_a_target_that_has_since_been_retired(
    deployed_model: ModelVersion, second_model: ModelVersion, ml_engineer: User
) -> None:
    model_version_promote(version=second_model, arm=Arm.PRODUCTION, actor=ml_engineer)
    model_version_transition(version=deployed_model, to_state=ApprovalState.RETIRED, actor=ml_engineer, reason="t")
    with pytest.raises(InvalidTransition, match="retired"):
        serving_rollback(arm=Arm.PRODUCTION, actor=ml_engineer, reason="test")
    assert serving_version() == second_model


def test_the_circuit_breaker_rollback_is_recorded_as_a_system_rollback(
    deployed_model: ModelVersion, second_model: ModelVersion, ml_engineer: User
) -> None:
    model_version_promote(version=deployed_model, arm=Arm.CANARY, actor=ml_engineer)
    model_version_promote(version=second_model, arm=Arm.CANARY, actor=ml_engineer)

    event = serving_rollback_automatic(arm=Arm.CANARY, system_reason="circuit_breaker")

    assert event.is_rollback and event.set_by is None and event.model_version == deployed_model

    audited = AuditEvent.objects.filter(object_type="serving_pointer").order_by("-seq").first()
    assert audited is not None and audited.actor is None
    assert audited.payload_data["system_reason"] == "circuit_breaker"
    # A human rollback afterwards goes further back, never back to the version the breaker took down.
    serving_rollback(arm=Arm.CANARY, actor=ml_engineer, reason="clear the canary")
    assert serving_version(arm=Arm.CANARY) is None
