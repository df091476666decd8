"""calibration (hard): top-label expected calibration error ≤ the bound (MODEL_GATE_MAX_ECE).

The approval policy delivers a proposal unreviewed on its confidence (DESIGN §2), so an overconfident model would
skip review it should not (inference.calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from inference.calibration import expected_calibration_error
from inference.gates.result import (
    GateResult,
    JsonObject,
    StoredGate,
    StoredGateInvalid,
    common_fields,
    read_int,
    read_required_number,
)

# (lower edge, mean confidence, accuracy, count) per non-empty bin: enough for a reliability chart.
CalibrationBin = tuple[float, float, float, int]
# DESIGN §2's default confidence bound: the summary says how often the model is right above it.
POLICY_CONFIDENCE_BOUND = 0.8


@dataclass(frozen=True, kw_only=True)
class CalibrationGateResult(GateResult):
    name: str = "calibration"
    label: ClassVar[str] = "Calibration"
    bound: float
    ece: float
    n: int
    bins: tuple[CalibrationBin, ...]

    def accuracy_above(self, bound: float) -> tuple[float | None, int]:
        """(accuracy, rows) over validation rows whose confidence is above `bound` (a bin edge: the bins are
        (lower, upper], so this is exactly the rows with confidence > bound). None when there are none."""
        selected = [b for b in self.bins if b[0] >= bound - 1e-9]
        rows = sum(b[3] for b in selected)
        return (sum(b[2] * b[3] for b in selected) / rows if rows else None), rows

    @property
    def summary(self) -> str:
        accuracy, rows = self.accuracy_above(POLICY_CONFIDENCE_BOUND)
        above = (
            f"; right {accuracy:.0%} of the time above confidence {POLICY_CONFIDENCE_BOUND:g} ({rows} rows)"
            if accuracy is not None
            else f"; no row above confidence {POLICY_CONFIDENCE_BOUND:g}"
        )
        return f"ECE {self.ece:.3f} ≤ {self.bound:g} over {self.n} rows{above}"

    def _failures(self) -> tuple[str, ...]:
        return (f"calibration: expected calibration error {self.ece:.3f} is above the bound {self.bound:g}",)

    def _numbers(self) -> JsonObject:
        return {"ece": self.ece, "bound": self.bound, "n": self.n, "bins": [list(b) for b in self.bins]}

    @classmethod
    def from_stored(cls, stored: StoredGate) -> CalibrationGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        return cls(
            hard=hard, passed=passed, findings=findings, evaluated_at=evaluated_at,
            bound=read_required_number(stored, "bound"), ece=read_required_number(stored, "ece"),
            n=read_int(stored, "n"), bins=_bins(stored.get("bins", [])),
        )  # fmt: skip


def _bins(value: object) -> tuple[CalibrationBin, ...]:
    if not isinstance(value, list):
        raise StoredGateInvalid(f"bins must be a list, not {value!r}")
    bins = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 4):
            raise StoredGateInvalid(f"a calibration bin has four numbers, not {item!r}")
        stored = dict(zip(("lower", "confidence", "accuracy", "count"), item, strict=True))
        bins.append(
            (
                read_required_number(stored, "lower"),
                read_required_number(stored, "confidence"),
                read_required_number(stored, "accuracy"),
                read_int(stored, "count"),
            )
        )
    return tuple(bins)


def calibration_gate(
    proba: npt.NDArray[np.float64], y: npt.NDArray[np.int64], *, max_ece: float
) -> CalibrationGateResult:
    result = expected_calibration_error(proba, y)
    return CalibrationGateResult(
        hard=True, passed=result.ece <= max_ece, bound=max_ece, ece=result.ece, n=result.n, bins=result.bins
    )
