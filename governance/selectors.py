"""Governance reads: the approval policy's history and each patient's autonomy bounds."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from clinaiops.care.models import Patient
from governance.models import ApprovalPolicy, AutonomyBounds
from governance.policy import BOUND_LIMITS, EffectiveBounds, bounds_in_force, bounds_of


def approval_policy_history(*, limit: int = 20) -> QuerySet[ApprovalPolicy]:
    return ApprovalPolicy.objects.select_related("signature").order_by("-version")[:limit]


def _bounds_of(record: ApprovalPolicy | AutonomyBounds, *, autonomy_enabled: bool) -> EffectiveBounds:
    return bounds_of({name: getattr(record, name) for name in BOUND_LIMITS}, autonomy_enabled=autonomy_enabled)


def policy_ceiling(policy: ApprovalPolicy) -> EffectiveBounds:
    """The widest bounds the policy allows, which are also its defaults (governance.policy.bounds_in_force)."""
    return _bounds_of(policy, autonomy_enabled=True)


def autonomy_bounds_values(bounds: AutonomyBounds) -> EffectiveBounds:
    """A signed bounds version as it was set, before any clamping."""
    return _bounds_of(bounds, autonomy_enabled=bounds.autonomy_enabled)


def autonomy_bounds_current(*, patient: Patient) -> AutonomyBounds | None:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature").order_by("-version").first()


def autonomy_bounds_history(*, patient: Patient, limit: int = 10) -> list[AutonomyBounds]:
    return list(
        AutonomyBounds.objects.filter(patient=patient)
        .select_related("signature", "set_by")
        .order_by("-version")[:limit]
    )


def effective_bounds_of(bounds: AutonomyBounds | None, policy: ApprovalPolicy) -> EffectiveBounds:
    """The bounds that apply to the patient under `policy` (governance.policy.bounds_in_force)."""
    return bounds_in_force(None if bounds is None else autonomy_bounds_values(bounds), policy_ceiling(policy))


@dataclass(frozen=True)
class PatientBounds:
    """A patient's bounds for the patient page, from one query: the signed versions (newest first), the bounds
    in force, and what a new version starts from (the current one as signed, or the policy's defaults)."""

    history: list[AutonomyBounds]
    effective: EffectiveBounds
    proposed: EffectiveBounds


def patient_bounds(*, patient: Patient, policy: ApprovalPolicy, limit: int = 10) -> PatientBounds:
    history = autonomy_bounds_history(patient=patient, limit=limit)
    current = history[0] if history else None
    return PatientBounds(
        history=history,
        effective=effective_bounds_of(current, policy),
        proposed=policy_ceiling(policy) if current is None else autonomy_bounds_values(current),
    )
