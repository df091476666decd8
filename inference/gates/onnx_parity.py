"""onnx_parity (hard): max |p_sklearn − p_onnx| ≤ 1e-5 over every snapshot row (DESIGN §3), recomputed from the
stored artifacts rather than trusted from the training process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from inference.gates.result import (
    GateResult,
    JsonObject,
    StoredGate,
    common_fields,
    read_int,
    read_required_number,
)


@dataclass(frozen=True, kw_only=True)
class OnnxParityGateResult(GateResult):
    name: str = "onnx_parity"
    label: ClassVar[str] = "ONNX parity"
    bound: float
    max_abs_diff: float
    rows: int

    @property
    def summary(self) -> str:
        return f"max |p_sklearn − p_onnx| {self.max_abs_diff:.1e} ≤ {self.bound:g} over {self.rows} rows"

    def _failures(self) -> tuple[str, ...]:
        return (f"ONNX parity: max |p_sklearn − p_onnx| {self.max_abs_diff:.1e} is above {self.bound:g}",)

    def _numbers(self) -> JsonObject:
        return {"max_abs_diff": self.max_abs_diff, "bound": self.bound, "rows": self.rows}

    @classmethod
    def from_stored(cls, stored: StoredGate) -> OnnxParityGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        return cls(
            hard=hard, passed=passed, findings=findings, evaluated_at=evaluated_at,
            bound=read_required_number(stored, "bound"), max_abs_diff=read_required_number(stored, "max_abs_diff"),
            rows=read_int(stored, "rows"),
        )  # fmt: skip


def onnx_parity_gate(*, max_abs_diff: float, tolerance: float, rows: int) -> OnnxParityGateResult:
    return OnnxParityGateResult(
        hard=True, passed=max_abs_diff <= tolerance, bound=tolerance, max_abs_diff=max_abs_diff, rows=rows
    )
