"""Frozen dataclasses that monitoring hands to the surfaces (portal, commands)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from inference.models import CLASS_ORDER, ModelVersion
from inference.monitoring.models import CanaryState, CircuitBreakerEvent


@dataclass(frozen=True)
class ArmPerformance:
    """How one arm's proposals fared over a period.

    * ``decisions``: proposals a clinician reviewed; ``overridden`` of them were modified or rejected.
    * ``settled``: proposals whose fate is known: reviewed ones, and minor ones (delivered at once).
    * ``adverse``: settled proposals whose own advice reached the patient and were followed, within the
      outcome window, by a P0 safety alert for that patient.
    * error rate = (overridden + adverse) / settled: a clinician judged the advice wrong, or acting on it
      preceded a safety event.
    """

    arm: str
    predictions: int
    decisions: int
    overridden: int
    settled: int
    adverse: int

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.decisions if self.decisions else None

    @property
    def errors(self) -> int:
        return self.overridden + self.adverse

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.settled if self.settled else None

    @property
    def override_pct(self) -> float | None:
        return None if self.override_rate is None else 100 * self.override_rate

    @property
    def error_pct(self) -> float | None:
        return None if self.error_rate is None else 100 * self.error_rate

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "override_rate": self.override_rate, "error_rate": self.error_rate}


@dataclass(frozen=True)
class BreakerThresholds:
    min_decisions: int
    override_margin: float  # a fraction: 0.10 is ten percentage points
    error_margin: float
    outcome_days: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CanaryOverview:
    version: ModelVersion | None
    started_at: datetime | None
    stage_percent: int
    state: CanaryState | None
    canary: ArmPerformance | None
    production: ArmPerformance | None
    thresholds: BreakerThresholds
    next_stage: int | None
    recent_trips: list[CircuitBreakerEvent] = field(default_factory=list)


@dataclass(frozen=True)
class ShadowAgreement:
    """How often one shadow version proposed what the served arm proposed, with the cross-tabulation."""

    version: ModelVersion
    served_arm: str
    scored: int
    agreed: int
    # (served action, shadow action) → count
    pairs: dict[tuple[str, str], int]

    @property
    def agreement_rate(self) -> float | None:
        return self.agreed / self.scored if self.scored else None

    @property
    def agreement_pct(self) -> float | None:
        return None if self.agreement_rate is None else 100 * self.agreement_rate

    @property
    def matrix(self) -> list[tuple[str, list[int]]]:
        """Rows: the served action; columns: the shadow's action, both in CLASS_ORDER."""
        return [(served, [self.pairs.get((served, shadow), 0) for shadow in CLASS_ORDER]) for served in CLASS_ORDER]


@dataclass(frozen=True)
class SubgroupRow:
    attribute: str  # "sex" or "skin_tone"
    group: str
    n: int
    # Below the report's minimum a group is counted but not compared: no accuracy is given for it.
    compared: bool
    accuracy: float | None

    @property
    def accuracy_pct(self) -> float | None:
        return None if self.accuracy is None else 100 * self.accuracy


@dataclass(frozen=True)
class SubgroupAccuracy:
    """A drift report's accuracy against clinician decisions, overall and by sex and skin-tone band."""

    n: int
    accuracy: float | None
    min_rows: int
    rows: tuple[SubgroupRow, ...]
    max_gap: dict[str, float | None]  # attribute → largest gap between compared groups

    @property
    def accuracy_pct(self) -> float | None:
        return None if self.accuracy is None else 100 * self.accuracy

    @property
    def too_small(self) -> tuple[SubgroupRow, ...]:
        return tuple(row for row in self.rows if not row.compared)


SUBGROUP_ATTRIBUTES = ("sex", "skin_tone")


def subgroup_accuracy(subgroups: dict[str, Any]) -> SubgroupAccuracy:
    """Read DriftReport.subgroups. Reports stored before groups carried "compared" are read by the same rule,
    so a small group never shows an accuracy, whenever its report was computed."""
    min_rows = int(subgroups.get("min_rows", 0))
    overall = subgroups.get("overall", {})
    rows = []
    gaps: dict[str, float | None] = {}
    for attribute in SUBGROUP_ATTRIBUTES:
        section = subgroups.get(attribute, {})
        gaps[attribute] = section.get("max_gap")
        for group in section.get("groups", []):
            n = int(group["n"])
            compared = bool(group.get("compared", n >= min_rows))
            rows.append(
                SubgroupRow(
                    attribute=attribute,
                    group=str(group["group"]),
                    n=n,
                    compared=compared,
                    accuracy=(int(group["correct"]) / n if n else None) if compared else None,
                )
            )
    return SubgroupAccuracy(
        n=int(overall.get("n", 0)),
        accuracy=overall.get("accuracy"),
        min_rows=min_rows,
        rows=tuple(rows),
        max_gap=gaps,
    )
