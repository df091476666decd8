"""The adaptive follow-up rule, line by line of its table (clinaiops.partnership.followup)."""

from __future__ import annotations

from datetime import date

import pytest

from clinaiops.partnership.followup import (
    FollowUpCategory,
    bp_in_range,
    bp_window_stats,
    followup_due,
    followup_rule,
)

IN = (120, 75)  # below a 130/80 target
OUT = (142, 88)


def _stats(readings: list[tuple[int, int]]) -> object:
    return bp_window_stats(readings, target_sbp=130, target_dbp=80)


@pytest.mark.parametrize(
    ("readings", "alerts", "category", "weeks"),
    [
        # an alert decides, whatever the readings
        ([IN] * 20, 1, FollowUpCategory.ALERT, 1),
        ([OUT] * 20, 2, FollowUpCategory.ALERT, 1),
        # too few readings to judge
        ([], 0, FollowUpCategory.TOO_FEW_READINGS, 4),
        ([IN] * 5, 0, FollowUpCategory.TOO_FEW_READINGS, 4),
        # stable: at least 80 % in range
        ([IN] * 8 + [OUT] * 2, 0, FollowUpCategory.STABLE, 12),
        ([IN] * 20, 0, FollowUpCategory.STABLE, 12),
        # just under stable, not volatile: the default
        ([IN] * 79 + [(128, 85)] * 21, 0, FollowUpCategory.PARTLY_CONTROLLED, 4),
        ([IN] * 5 + [OUT] * 5, 0, FollowUpCategory.PARTLY_CONTROLLED, 4),
        # volatile: under half in range
        ([IN] * 4 + [OUT] * 6, 0, FollowUpCategory.VOLATILE, 2),
        # volatile: systolic SD ≥ 15 even with most readings in range
        ([(100, 70), (128, 78)] * 4 + [(165, 95)] * 2, 0, FollowUpCategory.VOLATILE, 2),
        # low readings are not "in range"
        ([(85, 55)] * 10, 0, FollowUpCategory.VOLATILE, 2),
    ],
)
def test_followup_rule_table(readings: list[tuple[int, int]], alerts: int, category: str, weeks: int) -> None:
    rule = followup_rule(bp_window_stats(readings, target_sbp=130, target_dbp=80), alerts=alerts)
    assert (rule.category, rule.interval_weeks) == (category, weeks)
    assert rule.reason.endswith(f"follow up in {weeks} week{'s' if weeks > 1 else ''}.")


def test_reading_at_the_target_is_not_below_it() -> None:
    assert not bp_in_range(130, 75, target_sbp=130, target_dbp=80)
    assert not bp_in_range(125, 80, target_sbp=130, target_dbp=80)
    assert bp_in_range(129, 79, target_sbp=130, target_dbp=80)


def test_reason_names_the_numbers_it_used() -> None:
    rule = followup_rule(bp_window_stats([IN] * 9 + [OUT], target_sbp=130, target_dbp=80), alerts=0)
    assert "90 % of 10 readings in range" in rule.reason
    volatile = followup_rule(bp_window_stats([(100, 70), (160, 95)] * 5, target_sbp=130, target_dbp=80), alerts=0)
    assert "systolic varies by 32 mmHg" in volatile.reason


def test_due_date_counts_the_interval_from_the_anchor() -> None:
    rule = followup_rule(bp_window_stats([IN] * 10, target_sbp=130, target_dbp=80), alerts=0)
    assert followup_due(date(2026, 1, 1), rule) == date(2026, 3, 26)
