"""change_control (not hard): is the retrain inside its model line's change-control plan, the envelope a
clinical safety officer declared and e-signed (governance.change_control)? Outside it, or with no signed plan,
the version is not rejected: it needs a full review, which the safety sign-off acknowledges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from inference.gates.result import (
    GateResult,
    JsonObject,
    StoredGate,
    common_fields,
    fmt,
    read_int,
    read_object,
    read_str,
)

WITHIN_PLAN = "within plan"
OUTSIDE_PLAN = "needs full review"
NO_PLAN = "no change-control plan is declared for this model line"


@dataclass(frozen=True)
class ChangeControlTerms:
    """The newest plan of the model line, as the gate judges against it."""

    id: int
    model_line: str
    version: int
    allowed_families: tuple[str, ...]
    allowed_feature_set_versions: tuple[str, ...]
    performance_floor: float
    fairness_ceiling: float
    signed: bool


@dataclass(frozen=True)
class PlanReference:
    id: int
    model_line: str
    version: int

    def stored(self) -> JsonObject:
        return {"id": self.id, "model_line": self.model_line, "version": self.version}


@dataclass(frozen=True, kw_only=True)
class ChangeControlGateResult(GateResult):
    name: str = "change_control"
    label: ClassVar[str] = "Change-control plan"
    plan: PlanReference | None

    @property
    def outcome(self) -> str:
        return WITHIN_PLAN if self.passed else OUTSIDE_PLAN

    @property
    def summary(self) -> str:
        if self.plan is None:
            return "no plan declared"
        return f"plan {self.plan.model_line} v{self.plan.version}: {self.outcome}"

    def _failures(self) -> tuple[str, ...]:
        return self.findings

    def _numbers(self) -> JsonObject:
        if self.plan is None:
            return {"plan": None}
        return {"plan": self.plan.stored(), "outcome": self.outcome}

    @classmethod
    def from_stored(cls, stored: StoredGate) -> ChangeControlGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        plan = read_object(stored, "plan")
        return cls(
            hard=hard, passed=passed, bound=None, findings=findings, evaluated_at=evaluated_at,
            plan=None if plan is None else PlanReference(
                id=read_int(plan, "id"), model_line=read_str(plan, "model_line"), version=read_int(plan, "version")
            ),
        )  # fmt: skip


def change_control_gate(
    *,
    plan: ChangeControlTerms | None,
    family: str,
    feature_set_version: str,
    balanced_accuracy: float | None,
    max_equalized_odds_difference: float | None,
) -> ChangeControlGateResult:
    if plan is None:
        return ChangeControlGateResult(
            hard=False, passed=False, bound=None, findings=(f"change control: {NO_PLAN}",), plan=None
        )
    outside: list[str] = []
    if not plan.signed:
        # Declared before plans were e-signed: nobody signed it as the envelope, so it cannot waive the review.
        outside.append(f"plan {plan.model_line} v{plan.version} is not e-signed by a clinical safety officer")
    if family not in plan.allowed_families:
        outside.append(f"family {family} is not in the plan ({', '.join(plan.allowed_families)})")
    if feature_set_version not in plan.allowed_feature_set_versions:
        outside.append(f"feature set {feature_set_version} is not in the plan")
    if balanced_accuracy is None or balanced_accuracy < plan.performance_floor:
        outside.append(f"balanced accuracy {fmt(balanced_accuracy)} is below the plan's floor {plan.performance_floor}")
    if max_equalized_odds_difference is None:
        outside.append("fairness could not be measured against the plan's ceiling")
    elif max_equalized_odds_difference > plan.fairness_ceiling:
        outside.append(
            f"equalized-odds difference {max_equalized_odds_difference:.3f} is above the plan's ceiling "
            f"{plan.fairness_ceiling}"
        )
    return ChangeControlGateResult(
        hard=False,
        passed=not outside,
        bound=None,
        findings=tuple(f"change control: {reason}" for reason in outside),
        plan=PlanReference(id=plan.id, model_line=plan.model_line, version=plan.version),
    )
