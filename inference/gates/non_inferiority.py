"""non_inferiority (hard): balanced accuracy and macro AUROC no worse than production's by more than the margin.

Judged twice: against production's recorded validation metrics, and with production re-scored on the
candidate's held-out rows. Re-scoring uses only rows production was not trained on when there are enough of
them; otherwise all of the candidate's validation rows, which can only favour production (it may have seen
some), so the gate errs towards keeping the incumbent. No production model: passes with "no incumbent".
Artifacts that cannot be read fail the gate rather than wave the candidate through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from inference.calibration import NonInferiority, multiclass_metrics, non_inferiority
from inference.gates.result import (
    GateResult,
    JsonObject,
    JsonValue,
    StoredGate,
    StoredGateInvalid,
    common_fields,
    finite,
    fmt,
    read_bool,
    read_int,
    read_number,
    read_number_map,
    read_object,
    read_objects,
    read_optional_str,
    read_required_number,
    read_str,
)

NON_INFERIORITY_METRICS = ("balanced_accuracy", "macro_auroc")
NO_INCUMBENT = "no incumbent"


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    candidate: float | None
    incumbent: float | None
    margin: float
    passed: bool
    note: str

    @classmethod
    def of(cls, result: NonInferiority) -> MetricComparison:
        return cls(
            result.metric, finite(result.candidate), finite(result.baseline), result.margin, result.passed, result.note
        )

    @property
    def text(self) -> str:
        return f"{self.metric} {fmt(self.candidate)} vs {fmt(self.incumbent)}"

    def stored(self) -> JsonObject:
        return {
            "metric": self.metric, "candidate": self.candidate, "incumbent": self.incumbent, "margin": self.margin,
            "passed": self.passed, "note": self.note,
        }  # fmt: skip

    @classmethod
    def from_stored(cls, stored: StoredGate) -> MetricComparison:
        return cls(
            metric=read_str(stored, "metric"), candidate=read_number(stored, "candidate"),
            incumbent=read_number(stored, "incumbent"), margin=read_required_number(stored, "margin"),
            passed=read_bool(stored, "passed"), note=read_str(stored, "note", default=""),
        )  # fmt: skip


@dataclass(frozen=True)
class HeldOutRescore:
    """Both models scored on the same rows of the candidate's validation split."""

    rows: int
    held_out_from_both: bool
    note: str
    incumbent: dict[str, float | None]
    candidate: dict[str, float | None]
    comparisons: tuple[MetricComparison, ...]

    @property
    def passed(self) -> bool:
        return all(comparison.passed for comparison in self.comparisons)

    def stored(self) -> JsonObject:
        return {
            "rows": self.rows,
            "held_out_from_both": self.held_out_from_both,
            "note": self.note,
            "incumbent": _json_numbers(self.incumbent),
            "candidate": _json_numbers(self.candidate),
            "comparisons": [comparison.stored() for comparison in self.comparisons],
        }


@dataclass(frozen=True)
class RescoreFailed:
    """Production's artifacts or rows could not be read, so nothing trustworthy was compared."""

    error: str
    passed: ClassVar[bool] = False

    def stored(self) -> JsonObject:
        return {"error": self.error}


@dataclass(frozen=True, kw_only=True)
class NonInferiorityGateResult(GateResult):
    name: str = "non_inferiority"
    label: ClassVar[str] = "Non-inferiority"
    bound: float  # the margin
    incumbent_sha256: str | None
    candidate: dict[str, float | None]
    against_recorded_metrics: tuple[MetricComparison, ...]
    rescored: HeldOutRescore | RescoreFailed | None

    @property
    def margin(self) -> float:
        return self.bound

    @property
    def summary(self) -> str:
        if not self.incumbent_sha256:
            return f"{NO_INCUMBENT} (margin {self.margin:g})"
        recorded = ", ".join(comparison.text for comparison in self.against_recorded_metrics)
        text = f"vs production {self.incumbent_sha256[:12]}, margin {self.margin:g}: {recorded}"
        if isinstance(self.rescored, HeldOutRescore):
            same = ", ".join(comparison.text for comparison in self.rescored.comparisons)
            text += f"; same {self.rescored.rows} rows: {same}"
        elif isinstance(self.rescored, RescoreFailed):
            text += f"; re-scoring failed: {self.rescored.error}"
        return text

    def _failures(self) -> tuple[str, ...]:
        failures = [
            f"non-inferiority: {c.metric} {fmt(c.candidate)} is below production's recorded {fmt(c.incumbent)} "
            f"by more than {c.margin:g}" + (f" ({c.note})" if c.note else "")
            for c in self.against_recorded_metrics
            if not c.passed
        ]
        if isinstance(self.rescored, HeldOutRescore):
            failures.extend(
                f"non-inferiority: {c.metric} {fmt(c.candidate)} is below production's {fmt(c.incumbent)} on the "
                f"same {self.rescored.rows} rows by more than {c.margin:g}" + (f" ({c.note})" if c.note else "")
                for c in self.rescored.comparisons
                if not c.passed
            )
        elif isinstance(self.rescored, RescoreFailed):
            failures.append(f"non-inferiority: production could not be re-scored ({self.rescored.error})")
        return tuple(failures)

    def _numbers(self) -> JsonObject:
        numbers: JsonObject = {
            "margin": self.margin,
            "incumbent_sha256": self.incumbent_sha256,
            "candidate": _json_numbers(self.candidate),
            "against_recorded_metrics": [comparison.stored() for comparison in self.against_recorded_metrics],
            "rescored_on_held_out_rows": None if self.rescored is None else self.rescored.stored(),
        }
        if self.incumbent_sha256 is None:
            numbers["note"] = NO_INCUMBENT
        return numbers

    @classmethod
    def from_stored(cls, stored: StoredGate) -> NonInferiorityGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        return cls(
            hard=hard, passed=passed, findings=findings, evaluated_at=evaluated_at,
            bound=read_required_number(stored, "margin"),
            incumbent_sha256=read_optional_str(stored, "incumbent_sha256"),
            candidate=read_number_map(stored, "candidate"),
            against_recorded_metrics=tuple(
                MetricComparison.from_stored(c) for c in read_objects(stored, "against_recorded_metrics")
            ),
            rescored=_rescore_from_stored(read_object(stored, "rescored_on_held_out_rows")),
        )  # fmt: skip


def _json_numbers(values: Mapping[str, float | None]) -> dict[str, JsonValue]:
    return dict(values)


def _rescore_from_stored(stored: StoredGate | None) -> HeldOutRescore | RescoreFailed | None:
    if stored is None:
        return None
    if "error" in stored:
        return RescoreFailed(read_str(stored, "error"))
    if "comparisons" not in stored:
        raise StoredGateInvalid("a re-scoring record needs its comparisons or an error")
    return HeldOutRescore(
        rows=read_int(stored, "rows"),
        held_out_from_both=read_bool(stored, "held_out_from_both"),
        note=read_str(stored, "note", default=""),
        incumbent=read_number_map(stored, "incumbent"),
        candidate=read_number_map(stored, "candidate"),
        comparisons=tuple(MetricComparison.from_stored(c) for c in read_objects(stored, "comparisons")),
    )


def held_out_positions(
    *,
    validation_label_ids: Sequence[int],
    incumbent_training_label_ids: set[int],
    y_validation: npt.NDArray[np.int64],
    n_classes: int,
    minimum: int,
) -> tuple[npt.NDArray[np.intp], bool]:
    """Positions in the candidate's validation rows to score both models on, and whether they are unseen by
    production as well: those rows when there are at least `minimum` of them covering every class, otherwise all
    the validation rows."""
    held = np.asarray(
        [k for k, label_id in enumerate(validation_label_ids) if label_id not in incumbent_training_label_ids],
        dtype=np.intp,
    )
    held_out_from_both = len(held) >= minimum and np.unique(y_validation[held]).size == n_classes
    chosen = held if held_out_from_both else np.arange(len(validation_label_ids), dtype=np.intp)
    return chosen, bool(held_out_from_both)


def held_out_rescore(
    *,
    candidate_proba: npt.NDArray[np.float64],
    incumbent_proba: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    held_out_from_both: bool,
    minimum: int,
    margin: float,
) -> HeldOutRescore:
    """Compare both models' metrics on the same rows (the probabilities are for those rows, in order)."""
    incumbent_metrics = multiclass_metrics(incumbent_proba, y)
    candidate_metrics = multiclass_metrics(candidate_proba, y)
    comparisons = non_inferiority(candidate_metrics, incumbent_metrics, metrics=NON_INFERIORITY_METRICS, margin=margin)
    return HeldOutRescore(
        rows=len(y),
        held_out_from_both=held_out_from_both,
        note=""
        if held_out_from_both
        else f"fewer than {minimum} rows (or not every class) unseen by production; scored on all the candidate's "
        "validation rows, which can only favour production",
        incumbent={name: finite(value) for name, value in incumbent_metrics.items()},
        candidate={name: finite(value) for name, value in candidate_metrics.items()},
        comparisons=tuple(MetricComparison.of(comparison) for comparison in comparisons),
    )


def non_inferiority_gate(
    *,
    margin: float,
    candidate_metrics: Mapping[str, float],
    incumbent_sha256: str | None,
    incumbent_metrics: Mapping[str, float] | None,
    rescored: HeldOutRescore | RescoreFailed | None,
    findings: Sequence[str] = (),
) -> NonInferiorityGateResult:
    """`incumbent_sha256` None: no production model (or the candidate is production itself)."""
    recorded = non_inferiority(
        candidate_metrics, incumbent_metrics if incumbent_sha256 else None, metrics=NON_INFERIORITY_METRICS,
        margin=margin,
    )  # fmt: skip
    comparisons = tuple(MetricComparison.of(comparison) for comparison in recorded)
    passed = all(c.passed for c in comparisons) and (rescored is None or rescored.passed)
    return NonInferiorityGateResult(
        hard=True,
        passed=passed,
        bound=margin,
        findings=tuple(findings),
        incumbent_sha256=incumbent_sha256,
        candidate={name: finite(value) for name, value in candidate_metrics.items()},
        against_recorded_metrics=comparisons,
        rescored=rescored,
    )
