"""Plausibility rules for a home BP reading. Pure; returns field-level messages with no PHI."""

from __future__ import annotations

from datetime import datetime, timedelta

SBP_RANGE = (50, 300)
DBP_RANGE = (25, 200)
HR_RANGE = (25, 250)
# Device clocks drift; more than this in the future is a wrong clock or a wrong timezone.
MAX_FUTURE_SKEW = timedelta(minutes=5)


def reading_problems(
    *, taken_at: datetime, systolic: int, diastolic: int, heart_rate: int | None, now: datetime
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not SBP_RANGE[0] <= systolic <= SBP_RANGE[1]:
        problems.setdefault("systolic", []).append(f"Systolic must be between {SBP_RANGE[0]} and {SBP_RANGE[1]} mmHg.")
    if not DBP_RANGE[0] <= diastolic <= DBP_RANGE[1]:
        problems.setdefault("diastolic", []).append(
            f"Diastolic must be between {DBP_RANGE[0]} and {DBP_RANGE[1]} mmHg."
        )
    if diastolic >= systolic:
        problems.setdefault("diastolic", []).append("Diastolic must be lower than systolic.")
    if heart_rate is not None and not HR_RANGE[0] <= heart_rate <= HR_RANGE[1]:
        problems.setdefault("heart_rate", []).append(
            f"Heart rate must be between {HR_RANGE[0]} and {HR_RANGE[1]} beats per minute."
        )
    if taken_at.tzinfo is None:
        problems.setdefault("taken_at", []).append("Include a timezone offset, for example 2026-11-21T07:30:00Z.")
    elif taken_at > now + MAX_FUTURE_SKEW:
        problems.setdefault("taken_at", []).append("The reading time is in the future; check the device clock.")
    return problems


# Home BP targets a clinician may set. ACC/AHA 2017 aims below 130/80 for most adults; NICE NG136 below 135/85
# (home) and below 145/85 from age 80. Outside these ranges a target is a typing error, not a clinical choice.
TARGET_SBP_RANGE = (110, 160)
TARGET_DBP_RANGE = (60, 100)


def target_problems(*, target_sbp: int, target_dbp: int) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not TARGET_SBP_RANGE[0] <= target_sbp <= TARGET_SBP_RANGE[1]:
        problems["target_sbp"] = [
            f"A systolic target must be between {TARGET_SBP_RANGE[0]} and {TARGET_SBP_RANGE[1]} mmHg."
        ]
    if not TARGET_DBP_RANGE[0] <= target_dbp <= TARGET_DBP_RANGE[1]:
        problems["target_dbp"] = [
            f"A diastolic target must be between {TARGET_DBP_RANGE[0]} and {TARGET_DBP_RANGE[1]} mmHg."
        ]
    if target_dbp >= target_sbp:
        problems.setdefault("target_dbp", []).append("The diastolic target must be lower than the systolic target.")
    return problems
