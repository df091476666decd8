from __future__ import annotations

from django.db.models import QuerySet

from clinaiops.care.models import Patient
from governance.models import ApprovalPolicy, AutonomyBounds
from governance.policy import EffectiveBounds


def autonomy_bounds_current(*, patient: Patient) -> AutonomyBounds | None:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature").order_by("-version").first()


def autonomy_bounds_history(*, patient: Patient) -> QuerySet[AutonomyBounds]:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature", "set_by").order_by("-version")


def effective_bounds(*, patient: Patient, policy: ApprovalPolicy) -> EffectiveBounds:
    """The bounds that apply now: the patient's signed bounds, clamped again to the current policy in case
    the policy tightened after they were set; the policy defaults if none were set."""
    bounds = autonomy_bounds_current(patient=patient)
    if bounds is None:
        return EffectiveBounds(
            max_step_change=policy.max_step_change,
            min_step=policy.min_step,
            max_step=policy.max_step,
            min_confidence=policy.min_confidence,
            min_readings=policy.min_readings,
            autonomy_enabled=True,
        )
    return EffectiveBounds(
        max_step_change=min(bounds.max_step_change, policy.max_step_change),
        min_step=max(bounds.min_step, policy.min_step),
        max_step=min(bounds.max_step, policy.max_step),
        min_confidence=max(bounds.min_confidence, policy.min_confidence),
        min_readings=max(bounds.min_readings, policy.min_readings),
        autonomy_enabled=bounds.autonomy_enabled,
    )
