"""Safety rules that run on every reading before any model (DESIGN §2). Pure: no Django.

Thresholds follow ACC/AHA 2017: hypertensive crisis is SBP ≥ 180 or DBP ≥ 120 on any single reading.
Hypotension is SBP < 90 or DBP < 60; one low home reading is common and harmless, so the rule needs two
within the window, or one together with a reported dizziness or syncope symptom.
"""

from __future__ import annotations

from dataclasses import dataclass

CRISIS = "hypertensive_crisis"
HYPOTENSION = "sustained_hypotension"


@dataclass(frozen=True)
class SafetyThresholds:
    crisis_sbp: int = 180
    crisis_dbp: int = 120
    hypotension_sbp: int = 90
    hypotension_dbp: int = 60
    hypotension_min_readings: int = 2


def is_crisis(systolic: int, diastolic: int, t: SafetyThresholds) -> bool:
    return systolic >= t.crisis_sbp or diastolic >= t.crisis_dbp


def is_low(systolic: int, diastolic: int, t: SafetyThresholds) -> bool:
    return systolic < t.hypotension_sbp or diastolic < t.hypotension_dbp


def safety_findings(
    *, systolic: int, diastolic: int, low_readings_in_window: int, symptomatic: bool, t: SafetyThresholds
) -> list[str]:
    """Findings for a new reading. `low_readings_in_window` counts low readings in the window *including*
    this one; `symptomatic` is a dizziness or syncope report in the window."""
    findings: list[str] = []
    if is_crisis(systolic, diastolic, t):
        findings.append(CRISIS)
    if is_low(systolic, diastolic, t) and (low_readings_in_window >= t.hypotension_min_readings or symptomatic):
        findings.append(HYPOTENSION)
    return findings
