"""The antihypertensive regimen ladder that titration moves along, one step at a time.

A simplified stepped-care ladder in the spirit of ACC/AHA 2017 and NICE NG136: start one first-line agent,
raise to full dose, then add a second and third class. The demo's ladder is illustrative, not a protocol.
"""

from __future__ import annotations

REGIMEN_LADDER: tuple[str, ...] = (
    "Lifestyle measures only",
    "Amlodipine 5 mg daily",
    "Amlodipine 10 mg daily",
    "Amlodipine 10 mg + lisinopril 10 mg daily",
    "Amlodipine 10 mg + lisinopril 20 mg daily",
    "Amlodipine 10 mg + lisinopril 20 mg + indapamide 1.5 mg daily",
    "Amlodipine 10 mg + lisinopril 40 mg + indapamide 1.5 mg daily",
)
MIN_STEP = 0
MAX_STEP = len(REGIMEN_LADDER) - 1


def regimen_label(step: int) -> str:
    return REGIMEN_LADDER[step] if MIN_STEP <= step <= MAX_STEP else f"step {step}"
