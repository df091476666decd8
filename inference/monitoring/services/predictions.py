"""The prediction log, shadow scores and clinician outcomes, written inside the loops' transactions."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from clinaiops.care.models import Patient
from inference.models import Arm, ModelVersion, ServingPointer
from inference.monitoring.models import PredictionLog, ShadowScore
from inference.monitoring.tasks import canary_breaker_check_task

# clinaiops.loops.models.DELIVERED_AT_ONCE: a minor or feedback proposal reaches the patient when it is made.
_DELIVERED_AT_ONCE = frozenset({"minor", "feedback"})


def prediction_log_record(
    *,
    recommendation_id: int,
    patient: Patient,
    arm: str,
    model_version: ModelVersion,
    feature_set_version: str,
    features: dict[str, float],
    probabilities: dict[str, float],
    action: str,
    from_step: int,
    proposed_step: int,
    tier: str,
    created_at: datetime,
) -> PredictionLog:
    """Log a model's proposal. The caller holds the recommendation's transaction, whose audit event records
    the same proposal."""
    return PredictionLog.objects.create(
        recommendation_id=recommendation_id,
        patient=patient,
        arm=arm,
        model_version=model_version,
        feature_set_version=feature_set_version,
        features=features,
        probabilities=probabilities,
        action=action,
        from_step=from_step,
        proposed_step=proposed_step,
        tier=tier,
        created_at=created_at,
        advice_delivered_at=created_at if tier in _DELIVERED_AT_ONCE else None,
    )


def shadow_score_record(
    *,
    recommendation_id: int,
    patient: Patient,
    shadow_version: ModelVersion,
    probabilities: dict[str, float],
    action: str,
    served_version: ModelVersion,
    served_arm: str,
    served_action: str,
    scored_at: datetime,
) -> ShadowScore:
    """Store what the shadow model would have proposed. The caller holds the recommendation's transaction."""
    return ShadowScore.objects.create(
        patient=patient,
        model_version=shadow_version,
        served_version=served_version,
        served_arm=served_arm,
        recommendation_id=recommendation_id,
        probabilities=probabilities,
        action=action,
        served_action=served_action,
        agreed=action == served_action,
        scored_at=scored_at,
    )


def decision_outcome_record(
    *, recommendation_id: int, outcome: str, overridden: bool, final_step: int, decided_at: datetime
) -> bool:
    """A clinician decided on a logged proposal (called by the loops' review service inside its transaction).

    Returns whether a model proposal was logged for it; rules-only recommendations have none. While a canary
    is deployed, the circuit breaker re-checks the arms once the decision commits.
    """
    updated = PredictionLog.objects.filter(recommendation_id=recommendation_id, decided_at__isnull=True).update(
        decided_at=decided_at,
        decision_outcome=outcome,
        overridden=overridden,
        final_step=final_step,
        advice_delivered_at=None if overridden else decided_at,
    )
    if updated and ServingPointer.objects.filter(arm=Arm.CANARY).exists():
        # robust: the decision is committed and signed by then; a failing check must not turn it into an error.
        transaction.on_commit(canary_breaker_check_task.delay, robust=True)
    return bool(updated)
