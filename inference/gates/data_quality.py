"""data_quality (hard): the snapshot's own quality gate (inference.quality) must have passed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from inference.gates.result import GateResult, JsonObject, StoredGate, common_fields, read_str, read_strs


@dataclass(frozen=True, kw_only=True)
class DataQualityGateResult(GateResult):
    name: str = "data_quality"
    label: ClassVar[str] = "Data quality"
    snapshot_sha256: str
    failed_checks: tuple[str, ...]

    @property
    def summary(self) -> str:
        failed = f"; failed: {', '.join(self.failed_checks)}" if self.failed_checks else ""
        return f"snapshot {self.snapshot_sha256[:12]}{failed}"

    def _failures(self) -> tuple[str, ...]:
        return tuple(f"data quality: the snapshot failed its {check} check" for check in self.failed_checks)

    def _numbers(self) -> JsonObject:
        return {"snapshot_sha256": self.snapshot_sha256, "failed_checks": list(self.failed_checks)}

    @classmethod
    def from_stored(cls, stored: StoredGate) -> DataQualityGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        return cls(
            hard=hard, passed=passed, bound=None, findings=findings, evaluated_at=evaluated_at,
            snapshot_sha256=read_str(stored, "snapshot_sha256"), failed_checks=read_strs(stored, "failed_checks"),
        )  # fmt: skip


def data_quality_gate(
    *, snapshot_sha256: str, quality_passed: bool, checks: Mapping[str, Mapping[str, object]]
) -> DataQualityGateResult:
    failed = tuple(name for name, check in checks.items() if check.get("passed") is not True)
    return DataQualityGateResult(
        hard=True, passed=quality_passed, bound=None, snapshot_sha256=snapshot_sha256, failed_checks=failed
    )
