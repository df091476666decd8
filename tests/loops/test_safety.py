from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clinaiops.loops.safety import CRISIS, HYPOTENSION, SafetyThresholds, safety_findings

T = SafetyThresholds()


def test_crisis_at_exactly_180_or_120() -> None:
    assert safety_findings(systolic=180, diastolic=100, low_readings_in_window=0, symptomatic=False, t=T) == [CRISIS]
    assert safety_findings(systolic=160, diastolic=120, low_readings_in_window=0, symptomatic=False, t=T) == [CRISIS]
    assert safety_findings(systolic=179, diastolic=119, low_readings_in_window=0, symptomatic=False, t=T) == []


def test_one_low_reading_is_not_sustained_hypotension_but_two_or_a_symptom_are() -> None:
    assert safety_findings(systolic=88, diastolic=58, low_readings_in_window=1, symptomatic=False, t=T) == []
    assert safety_findings(systolic=88, diastolic=58, low_readings_in_window=2, symptomatic=False, t=T) == [HYPOTENSION]
    assert safety_findings(systolic=88, diastolic=62, low_readings_in_window=1, symptomatic=True, t=T) == [HYPOTENSION]


@given(st.integers(50, 300), st.integers(25, 200), st.integers(0, 5), st.booleans())
def test_a_normal_reading_never_raises_an_alert(sbp: int, dbp: int, lows: int, symptomatic: bool) -> None:
    findings = safety_findings(systolic=sbp, diastolic=dbp, low_readings_in_window=lows, symptomatic=symptomatic, t=T)
    if 90 <= sbp < 180 and 60 <= dbp < 120:
        assert findings == []
    if sbp >= 180 or dbp >= 120:
        assert CRISIS in findings
