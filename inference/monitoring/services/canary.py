"""Canary stages (5 → 20 → 50 → 100 %) and the circuit breaker that rolls a worse canary back."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import InvalidTransition, PermissionRefused
from clinaiops.core.models import Role, User
from inference.models import Arm, ServingPointer
from inference.monitoring.contracts import ArmPerformance, BreakerThresholds
from inference.monitoring.models import (
    CANARY_STAGE_TRANSITIONS,
    CanaryState,
    CanaryStatus,
    CircuitBreakerEvent,
    MonitoringAlertKind,
)
from inference.monitoring.selectors import arm_performance, breaker_thresholds
from inference.monitoring.services.alerts import alert_raise
from inference.services.serving import serving_pointer_set, serving_rollback_automatic


def canary_state_locked(pointer: ServingPointer, now: datetime) -> CanaryState:
    """The deployment's state row, created at the first stage if nothing has changed it yet, and locked.
    Callers lock the canary pointer first, so two writers cannot create it twice."""
    state, _ = CanaryState.objects.get_or_create(
        model_version_id=pointer.model_version_id, started_at=pointer.since, defaults={"updated_at": now}
    )
    return CanaryState.objects.select_for_update().select_related("model_version").get(pk=state.pk)


def canary_stage_advance(*, actor: User) -> CanaryState:
    """Serve the canary to the next share of patients (5 → 20 → 50 → 100 %). ML engineers only."""
    if actor.role != Role.ML_ENGINEER:
        audit_record_denied(
            action=AuditAction.CANARY_STAGE_ADVANCED,
            object_type="canary_state",
            object_id="",
            actor=actor,
            reason="wrong_role",
        )
        raise PermissionRefused("Only ML engineers can advance a canary.")
    with transaction.atomic():
        pointer = ServingPointer.objects.select_for_update().filter(arm=Arm.CANARY).first()
        if pointer is None:
            raise InvalidTransition("No canary is deployed.", code="no_canary")
        now = timezone.now()
        state = canary_state_locked(pointer, now)
        if state.status != CanaryStatus.ACTIVE:
            raise InvalidTransition("This canary was rolled back and cannot advance.")
        to_percent = CANARY_STAGE_TRANSITIONS.get(state.stage_percent)
        if to_percent is None:
            raise InvalidTransition(
                "The canary already serves every patient; promote it to production to finish the rollout.",
                code="canary_at_full_stage",
            )
        from_percent = state.stage_percent
        CanaryState.objects.filter(pk=state.pk).update(stage_percent=to_percent, updated_at=now)
        audit_record(
            action=AuditAction.CANARY_STAGE_ADVANCED,
            object_type="canary_state",
            object_id=state.pk,
            actor=actor,
            payload={
                "model_sha256": state.model_version.sha256,
                "from_percent": from_percent,
                "to_percent": to_percent,
            },
        )
    state.refresh_from_db()
    return state


def breaker_reasons(canary: ArmPerformance, production: ArmPerformance, thresholds: BreakerThresholds) -> list[str]:
    """Which rates trip the breaker: the canary's exceeds production's by more than the margin, each rate
    compared only once both arms have the minimum number of decisions behind it."""
    reasons = []
    if (
        min(canary.decisions, production.decisions) >= thresholds.min_decisions
        and canary.override_rate is not None
        and production.override_rate is not None
        and canary.override_rate - production.override_rate > thresholds.override_margin
    ):
        reasons.append("override_rate")
    if (
        min(canary.settled, production.settled) >= thresholds.min_decisions
        and canary.error_rate is not None
        and production.error_rate is not None
        and canary.error_rate - production.error_rate > thresholds.error_margin
    ):
        reasons.append("error_rate")
    return reasons


def canary_breaker_check(*, now: datetime | None = None) -> CircuitBreakerEvent | None:
    """Compare the canary with production since the canary started; roll it back if it does worse by more
    than the configured margin. Safe to run twice: a deployment trips at most once."""
    now = now or timezone.now()
    pointer = ServingPointer.objects.select_related("model_version").filter(arm=Arm.CANARY).first()
    if pointer is None:
        return None
    thresholds = breaker_thresholds()
    canary = arm_performance(
        arm=Arm.CANARY,
        since=pointer.since,
        until=now,
        outcome_days=thresholds.outcome_days,
        model_version_id=pointer.model_version_id,
    )
    production = arm_performance(
        arm=Arm.PRODUCTION, since=pointer.since, until=now, outcome_days=thresholds.outcome_days
    )
    reasons = breaker_reasons(canary, production, thresholds)
    if not reasons:
        return None
    with transaction.atomic():
        locked = (
            ServingPointer.objects.select_for_update()
            .filter(arm=Arm.CANARY, model_version_id=pointer.model_version_id, since=pointer.since)
            .first()
        )
        if locked is None:  # someone moved the pointer since we measured
            return None
        state = canary_state_locked(locked, now)
        if state.status != CanaryStatus.ACTIVE:
            return None
        metrics = {"canary": canary.as_dict(), "production": production.as_dict()}
        event = CircuitBreakerEvent.objects.create(
            canary=state,
            model_version_id=state.model_version_id,
            tripped_at=now,
            reasons=reasons,
            metrics=metrics,
            thresholds=thresholds.as_dict(),
        )
        canary_roll_back(state=state, reason="circuit_breaker", now=now)
        audit_record(
            action=AuditAction.CIRCUIT_BREAKER_TRIPPED,
            object_type="circuit_breaker_event",
            object_id=event.pk,
            system_reason="circuit_breaker",
            payload={
                "model_sha256": state.model_version.sha256,
                "stage_percent": state.stage_percent,
                "tripped_on": reasons,
                "metrics": metrics,
                "thresholds": thresholds.as_dict(),
            },
        )
        alert_raise(
            kind=MonitoringAlertKind.CANARY_ROLLED_BACK,
            dedup_key=f"canary_rolled_back:{state.pk}",
            system_reason="circuit_breaker",
            details={"model_sha256": state.model_version.sha256, "tripped_on": reasons, "breaker_event_id": event.pk},
            model_version=state.model_version,
            breaker_event=event,
            now=now,
        )
    return event


def canary_roll_back(*, state: CanaryState, reason: str, now: datetime) -> None:
    """Take the canary down and end the deployment. Caller holds the transaction and the state's lock.

    It is a system rollback in the pointer history, so a later person's "roll back" cannot put the version the
    breaker took down back on the arm. The arm returns to whatever canary served before (usually nothing).
    If that earlier version may no longer serve, the arm is cleared instead: taking the failing canary down
    must never fail.
    """
    try:
        with transaction.atomic():  # savepoint: a refused rollback leaves nothing half-done
            serving_rollback_automatic(arm=Arm.CANARY, system_reason=reason)
    except InvalidTransition:
        serving_pointer_set(arm=Arm.CANARY, version=None, actor=None, reason=reason)
    CanaryState.objects.filter(pk=state.pk).update(status=CanaryStatus.ROLLED_BACK, updated_at=now)
    state.status = CanaryStatus.ROLLED_BACK
