"""The approval policy's tiering rule (DESIGN §2). Pure: no Django.

A proposal is *minor* (delivered at once) only if every condition holds; otherwise it is *major* and waits
for a clinician. The reasons list names each failed condition so the review queue can say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MINOR = "minor"
MAJOR = "major"
# DESIGN §2: a *maintain* with no safety reason is delivered to the patient as feedback; it never fills the review
# queue. It changes nothing, so confidence, the reading count and the autonomy switch (which govern *changes*) do
# not hold it back. An open safety alert, paused autonomy, a current step outside the bounds, or home blood
# pressure well above target do: "keep your medicine the same" while the week's cuff mean is 20/10 mmHg or more
# above target is left uncontrolled hypertension, which a clinician should see (measured with `manage.py simulate`:
# without this reason, the model's rare missed increases were delivered as feedback and nobody reviewed them).
FEEDBACK = "feedback"
UNCONTROLLED_SBP_EXCESS = 20.0
UNCONTROLLED_DBP_EXCESS = 10.0
SAFETY_REASONS = frozenset({"open_safety_alert", "autonomy_paused", "outside_step_range", "uncontrolled_bp"})


@dataclass(frozen=True)
class EffectiveBounds:
    max_step_change: int
    min_step: int
    max_step: int
    min_confidence: float
    min_readings: int
    autonomy_enabled: bool


# The limits of EffectiveBounds, which the policy (as ceilings and defaults) and each bounds version both carry.
BOUND_LIMITS = ("max_step_change", "min_step", "max_step", "min_confidence", "min_readings")


def bounds_of(limits: Mapping[str, int | float], *, autonomy_enabled: bool) -> EffectiveBounds:
    """The bounds named by BOUND_LIMITS, from the approval policy, a signed bounds version or a form's data."""
    return EffectiveBounds(
        max_step_change=int(limits["max_step_change"]),
        min_step=int(limits["min_step"]),
        max_step=int(limits["max_step"]),
        min_confidence=float(limits["min_confidence"]),
        min_readings=int(limits["min_readings"]),
        autonomy_enabled=autonomy_enabled,
    )


@dataclass(frozen=True)
class TierInput:
    from_step: int
    to_step: int
    confidence: float
    open_safety_alert: bool
    autonomy_paused: bool
    recent_readings: int
    # The 7-day home-cuff mean above the patient's target (features sbp_excess_7d, dbp_excess_7d), mmHg.
    sbp_excess: float = 0.0
    dbp_excess: float = 0.0


@dataclass(frozen=True)
class TierDecision:
    tier: str
    reasons: tuple[str, ...]


REASON_TEXT = {
    "step_change_exceeds_bound": "The step change is larger than this patient's autonomy bound.",
    "outside_step_range": "The proposed step is outside this patient's allowed range.",
    "low_confidence": "The model's confidence is below the policy minimum.",
    "open_safety_alert": "A safety alert is open for this patient.",
    "autonomy_disabled": "Autonomous delivery is turned off for this patient.",
    "autonomy_paused": "Autonomy is paused after a safety event.",
    "too_few_readings": "Too few recent readings to act without review.",
    "uncontrolled_bp": "No change is proposed, but the week's home blood pressure is well above target "
    f"({UNCONTROLLED_SBP_EXCESS:g}/{UNCONTROLLED_DBP_EXCESS:g} mmHg or more), so a clinician decides.",
    "no_model": "No model is serving; rules only, so every proposal needs review.",
    "decision_awaiting_response": "A signed decision is still waiting for the patient's response, so this newer "
    "proposal is held for review instead of replacing it.",
}


REASON_SHORT = {
    "step_change_exceeds_bound": "step change over bound",
    "outside_step_range": "outside step range",
    "low_confidence": "low confidence",
    "open_safety_alert": "open safety alert",
    "autonomy_disabled": "autonomy off",
    "autonomy_paused": "autonomy paused",
    "too_few_readings": "too few readings",
    "uncontrolled_bp": "no change while well above target",
    "no_model": "no model serving",
    "decision_awaiting_response": "signed decision unanswered",
}


def proposal_tier(proposal: TierInput, bounds: EffectiveBounds) -> TierDecision:
    reasons: list[str] = []
    if abs(proposal.to_step - proposal.from_step) > bounds.max_step_change:
        reasons.append("step_change_exceeds_bound")
    if not bounds.min_step <= proposal.to_step <= bounds.max_step:
        reasons.append("outside_step_range")
    if proposal.confidence < bounds.min_confidence:
        reasons.append("low_confidence")
    if proposal.open_safety_alert:
        reasons.append("open_safety_alert")
    if not bounds.autonomy_enabled:
        reasons.append("autonomy_disabled")
    if proposal.autonomy_paused:
        reasons.append("autonomy_paused")
    if proposal.recent_readings < bounds.min_readings:
        reasons.append("too_few_readings")
    if proposal.to_step == proposal.from_step:
        if proposal.sbp_excess >= UNCONTROLLED_SBP_EXCESS or proposal.dbp_excess >= UNCONTROLLED_DBP_EXCESS:
            reasons.append("uncontrolled_bp")
        if not SAFETY_REASONS.intersection(reasons):
            return TierDecision(tier=FEEDBACK, reasons=())
    return TierDecision(tier=MAJOR if reasons else MINOR, reasons=tuple(reasons))


def bounds_clamp(bounds: EffectiveBounds, ceiling: EffectiveBounds) -> EffectiveBounds:
    """`bounds`, narrowed wherever `ceiling` is stricter."""
    return EffectiveBounds(
        max_step_change=min(bounds.max_step_change, ceiling.max_step_change),
        min_step=max(bounds.min_step, ceiling.min_step),
        max_step=min(bounds.max_step, ceiling.max_step),
        min_confidence=max(bounds.min_confidence, ceiling.min_confidence),
        min_readings=max(bounds.min_readings, ceiling.min_readings),
        autonomy_enabled=bounds.autonomy_enabled and ceiling.autonomy_enabled,
    )


def bounds_in_force(signed: EffectiveBounds | None, ceiling: EffectiveBounds) -> EffectiveBounds:
    """The bounds that apply to a patient. The approval policy's limits are both the ceiling and the defaults
    (DESIGN §2: "default: at most 1 step …"): a patient without signed bounds gets the ceiling, and signed
    bounds are clamped to it again, in case the policy tightened after they were set."""
    return ceiling if signed is None else bounds_clamp(signed, ceiling)


def bounds_violations(requested: EffectiveBounds, ceiling: EffectiveBounds) -> dict[str, list[str]]:
    """Per-patient bounds may only be as permissive as the global policy, never more."""
    problems: dict[str, list[str]] = {}
    if requested.max_step_change > ceiling.max_step_change:
        problems["max_step_change"] = [f"The global policy allows at most {ceiling.max_step_change} step(s)."]
    if requested.min_step < ceiling.min_step:
        problems["min_step"] = [f"The global policy's lowest step is {ceiling.min_step}."]
    if requested.max_step > ceiling.max_step:
        problems["max_step"] = [f"The global policy's highest step is {ceiling.max_step}."]
    if requested.min_step > requested.max_step:
        problems.setdefault("min_step", []).append("The lowest step must not be above the highest step.")
    if requested.min_confidence < ceiling.min_confidence:
        problems["min_confidence"] = [f"The global policy requires a confidence of at least {ceiling.min_confidence}."]
    if requested.min_readings < ceiling.min_readings:
        problems["min_readings"] = [f"The global policy requires at least {ceiling.min_readings} recent readings."]
    if requested.max_step_change < 0:
        problems.setdefault("max_step_change", []).append("Must not be negative.")
    return problems
