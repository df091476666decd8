from __future__ import annotations

from governance.policy import (
    FEEDBACK,
    MAJOR,
    MINOR,
    EffectiveBounds,
    TierInput,
    bounds_in_force,
    bounds_of,
    bounds_violations,
    proposal_tier,
)

DEFAULT = EffectiveBounds(
    max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
)


def _input(**overrides: object) -> TierInput:
    values: dict[str, object] = {
        "from_step": 2, "to_step": 3, "confidence": 0.9, "open_safety_alert": False,
        "autonomy_paused": False, "recent_readings": 10,
    }  # fmt: skip
    values.update(overrides)
    return TierInput(**values)  # type: ignore[arg-type]


def test_minor_increase_within_bounds_is_delivered_without_review() -> None:
    assert proposal_tier(_input(), DEFAULT) == proposal_tier(_input(), DEFAULT)
    assert proposal_tier(_input(), DEFAULT).tier == MINOR


def test_each_failed_condition_makes_the_proposal_major_and_is_named() -> None:
    cases = {
        "step_change_exceeds_bound": _input(to_step=4),
        "outside_step_range": _input(from_step=6, to_step=7),
        "low_confidence": _input(confidence=0.79),
        "open_safety_alert": _input(open_safety_alert=True),
        "autonomy_paused": _input(autonomy_paused=True),
        "too_few_readings": _input(recent_readings=5),
    }
    for reason, proposal in cases.items():
        decision = proposal_tier(proposal, DEFAULT)
        assert decision.tier == MAJOR, reason
        assert reason in decision.reasons
    disabled = EffectiveBounds(**{**DEFAULT.__dict__, "autonomy_enabled": False})
    assert proposal_tier(_input(), disabled).reasons == ("autonomy_disabled",)


def test_a_maintain_without_a_safety_reason_is_feedback_whatever_its_confidence_or_reading_count() -> None:
    # DESIGN §2: "Maintain with no safety reason is delivered as feedback; it never fills the review queue."
    for quiet in (_input(to_step=2), _input(to_step=2, confidence=0.41), _input(to_step=2, recent_readings=1)):
        assert proposal_tier(quiet, DEFAULT) == proposal_tier(quiet, DEFAULT)
        assert proposal_tier(quiet, DEFAULT).tier == FEEDBACK
        assert proposal_tier(quiet, DEFAULT).reasons == ()
    disabled = EffectiveBounds(**{**DEFAULT.__dict__, "autonomy_enabled": False})
    assert proposal_tier(_input(to_step=2), disabled).tier == FEEDBACK
    # Above target, but not well above: still feedback (the clinician's own rule titrates at +10 mmHg).
    assert proposal_tier(_input(to_step=2, sbp_excess=19.9, dbp_excess=9.9), DEFAULT).tier == FEEDBACK


def test_a_maintain_with_a_safety_reason_still_goes_to_a_clinician() -> None:
    narrowed = EffectiveBounds(**{**DEFAULT.__dict__, "max_step": 1})  # the current step 2 is now out of range
    cases = {
        "open_safety_alert": (_input(to_step=2, open_safety_alert=True), DEFAULT),
        "autonomy_paused": (_input(to_step=2, autonomy_paused=True), DEFAULT),
        "outside_step_range": (_input(to_step=2), narrowed),
        "uncontrolled_bp": (_input(to_step=2, sbp_excess=20.0), DEFAULT),
    }
    for reason, (proposal, bounds) in cases.items():
        decision = proposal_tier(proposal, bounds)
        assert decision.tier == MAJOR, reason
        assert reason in decision.reasons


def test_confidence_exactly_at_the_bound_is_enough() -> None:
    assert proposal_tier(_input(confidence=0.8), DEFAULT).tier == MINOR


def test_bounds_wider_than_the_policy_are_named_field_by_field() -> None:
    wide = EffectiveBounds(
        max_step_change=2, min_step=0, max_step=6, min_confidence=0.5, min_readings=3, autonomy_enabled=True
    )
    problems = bounds_violations(wide, DEFAULT)
    assert set(problems) == {"max_step_change", "min_confidence", "min_readings"}
    assert "at most 1" in problems["max_step_change"][0]
    assert bounds_violations(DEFAULT, DEFAULT) == {}


def test_a_patient_without_signed_bounds_gets_the_policys_limits_and_signed_ones_are_clamped_to_them() -> None:
    ceiling = bounds_of(
        {"max_step_change": 1, "min_step": 1, "max_step": 4, "min_confidence": 0.85, "min_readings": 6},
        autonomy_enabled=True,
    )
    assert bounds_in_force(None, ceiling) == ceiling
    # Signed when the policy was looser; the policy has tightened since: its stricter limits win, field by field.
    signed = EffectiveBounds(
        max_step_change=2, min_step=0, max_step=3, min_confidence=0.9, min_readings=4, autonomy_enabled=False
    )
    assert bounds_in_force(signed, ceiling) == EffectiveBounds(
        max_step_change=1, min_step=1, max_step=3, min_confidence=0.9, min_readings=6, autonomy_enabled=False
    )
