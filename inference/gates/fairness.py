"""fairness (hard unless MODEL_GATE_FAIRNESS_ENFORCED is off): inference.fairness on the validation rows'
sensitive attributes, judged by its own bounds (equalized-odds and demographic-parity differences,
group/reference ratios).

An attribute with fewer than two groups large enough to judge proves nothing either way: it does not fail the
gate, it needs full review. Measured on the demo cohort (1,113 labels, 223 validation rows), the same recipe's
equalized-odds difference swings from 0.07 to 0.62 between split seeds: at that size much of what the gate sees
is sampling noise, and more labelled rows, not looser bounds, are the fix. (Out-of-fold predictions over all rows
show a stable, real part too: fewer increases for patients over 75 and for skin tones 4 and 6.)

When the gate is not enforced (a policy switch, e.g. for the synthetic demo) the failures are still measured and
stored, and become findings the safety sign-off must acknowledge instead of a rejection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from inference.fairness import FairnessBounds, fairness_report
from inference.gates.result import (
    GateResult,
    JsonObject,
    StoredGate,
    StoredGateInvalid,
    common_fields,
    finite,
    fmt,
    json_object,
    read_bool,
    read_number,
    read_object,
    read_required_number,
    read_strs,
)

SENSITIVE_ATTRIBUTES = ("sex", "age_band", "race_ethnicity", "skin_tone")


@dataclass(frozen=True, kw_only=True)
class FairnessGateResult(GateResult):
    name: str = "fairness"
    label: ClassVar[str] = "Fairness"
    bound: float  # the largest equalized-odds difference allowed
    enforced: bool
    min_group_ratio: float
    # What fairness measured as failing (also when the gate is not enforced and they are findings instead).
    measured_failures: tuple[str, ...]
    max_equalized_odds_difference: float | None
    report: JsonObject  # inference.fairness.FairnessReport.to_dict(), kept whole for the fairness report pages

    @property
    def summary(self) -> str:
        return (
            f"max equalized-odds difference {fmt(self.max_equalized_odds_difference)} "
            f"(bound {self.bound:g}, ratios ≥ {self.min_group_ratio:g}); {len(self.measured_failures)} failure(s)"
        )

    def _failures(self) -> tuple[str, ...]:
        return self.measured_failures

    def _numbers(self) -> JsonObject:
        return {
            "enforced": self.enforced,
            "failures": list(self.measured_failures),
            "max_equalized_odds_difference": self.max_equalized_odds_difference,
            "report": self.report,
        }

    @classmethod
    def from_stored(cls, stored: StoredGate) -> FairnessGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        report = json_object(stored.get("report"))
        bounds = read_object(report, "bounds")
        if bounds is None:
            raise StoredGateInvalid("the fairness report keeps its bounds")
        return cls(
            hard=hard, passed=passed, findings=findings, evaluated_at=evaluated_at,
            bound=read_required_number(bounds, "max_equalized_odds_difference"),
            min_group_ratio=read_required_number(bounds, "min_group_ratio"),
            enforced=read_bool(stored, "enforced"), measured_failures=read_strs(stored, "failures"),
            max_equalized_odds_difference=read_number(stored, "max_equalized_odds_difference"), report=report,
        )  # fmt: skip


def fairness_gate(
    *,
    y_true: Sequence[str],
    y_pred: Sequence[str],
    sensitive: Mapping[str, Sequence[str]],
    positive_classes: Sequence[str],
    bounds: FairnessBounds,
    enforced: bool,
) -> FairnessGateResult:
    """Judge the validation rows' predictions. Only attributes with two groups large enough to compare are
    judged; the others are findings."""
    report = fairness_report(y_true, y_pred, sensitive, positive_classes=tuple(positive_classes), bounds=bounds)
    judged = [a for a in report.attributes if a.equalized_odds_difference is not None]
    failures = tuple(failure for a in judged for failure in a.failures)
    findings = [
        f"fairness: {a.attribute} could not be judged for {a.positive_class!r} (fewer than two groups with "
        f"at least {bounds.min_group_size} validation rows)"
        for a in report.attributes
        if a.equalized_odds_difference is None
    ]
    if not enforced:
        findings = [f"fairness (not enforced): {failure}" for failure in failures] + findings
    max_eod = max(
        (a.equalized_odds_difference for a in judged if a.equalized_odds_difference is not None), default=None
    )
    return FairnessGateResult(
        hard=enforced,
        passed=not failures,
        bound=bounds.max_equalized_odds_difference,
        findings=tuple(findings),
        enforced=enforced,
        min_group_ratio=bounds.min_group_ratio,
        measured_failures=failures,
        max_equalized_odds_difference=finite(max_eod),
        report=json_object(report.to_dict()),
    )
