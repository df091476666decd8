"""Plain-language wording for patients. Pure. Short sentences; no jargon; never a diagnosis."""

from __future__ import annotations

from typing import Any

from clinaiops.core.regimen import regimen_label

_ACTION = {
    "increase": "increase your blood-pressure medicine by one step",
    "decrease": "lower your blood-pressure medicine by one step",
    "maintain": "keep your blood-pressure medicine the same",
}

_FACTOR_PHRASES = {
    "sbp_mean_7d": "your average top number on your cuff this week",
    "sbp_excess_7d": "how far your top number is from your target",
    "dbp_mean_7d": "your average bottom number this week",
    "dbp_excess_7d": "how far your bottom number is from your target",
    "frac_above_target_14d": "how often your readings were above target",
    "frac_low_14d": "how often your readings were low",
    "sbp_slope_14d": "the direction your readings are moving",
    "adherence_14d": "how regularly you took your doses",
    "sbp_sd_14d": "how much your cuff readings vary",
    "wearable_sbp_mean_7d": "your wearable's estimates this week",
    "wearable_readings_7d": "how often your wearable took a reading",
    "current_step": "the medicine step you are on",
    "days_since_change": "the time since your last change",
}


def patient_reason(
    *, action: str, to_step: int, features: dict[str, float], target: tuple[int, int], factors: list[dict[str, Any]]
) -> str:
    sbp, dbp = round(features["sbp_mean_7d"]), round(features["dbp_mean_7d"])
    parts = [
        f"Your home cuff readings this week averaged {sbp}/{dbp}; your target is below {target[0]}/{target[1]}.",
        f"The suggestion is to {_ACTION[action]}" + (f" ({regimen_label(to_step)})." if action != "maintain" else "."),
    ]
    phrases = [
        _FACTOR_PHRASES[f["feature"]] for f in factors if f["feature"] in _FACTOR_PHRASES and f["contribution"] > 0
    ]
    if phrases:
        parts.append("This is mainly based on " + " and ".join(phrases[:2]) + ".")
    return " ".join(parts)


def decision_wording(*, outcome: str, from_step: int, final_step: int) -> str:
    if outcome == "rejected" or final_step == from_step:
        return "Your care team reviewed the suggestion and decided to keep your current medicine."
    direction = "increase" if final_step > from_step else "lower"
    return (
        f"Your care team reviewed your readings and asks you to {direction} your medicine to: "
        f"{regimen_label(final_step)}."
    )
