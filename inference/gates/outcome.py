"""All of a version's gates together: the verdict, the failures that reject it and the findings the safety
sign-off acknowledges, derived from the typed results. `gate_outcome_load` reads the JSON stored on a model
version back into those results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from inference.gates.calibration import CalibrationGateResult
from inference.gates.change_control import ChangeControlGateResult
from inference.gates.data_quality import DataQualityGateResult
from inference.gates.fairness import FairnessGateResult
from inference.gates.non_inferiority import NonInferiorityGateResult
from inference.gates.onnx_parity import OnnxParityGateResult
from inference.gates.result import GateResult, JsonObject, StoredGate, StoredGateInvalid, common_fields, json_object

R = TypeVar("R", bound=GateResult)

# The order gates are run, stored and shown in.
GATE_READERS: dict[str, Callable[[StoredGate], GateResult]] = {
    DataQualityGateResult.name: DataQualityGateResult.from_stored,
    OnnxParityGateResult.name: OnnxParityGateResult.from_stored,
    NonInferiorityGateResult.name: NonInferiorityGateResult.from_stored,
    CalibrationGateResult.name: CalibrationGateResult.from_stored,
    FairnessGateResult.name: FairnessGateResult.from_stored,
    ChangeControlGateResult.name: ChangeControlGateResult.from_stored,
}


@dataclass(frozen=True)
class GateOutcome:
    results: tuple[GateResult, ...]

    @property
    def failed(self) -> list[str]:
        """The hard gates that did not pass: each one rejects the version."""
        return [result.name for result in self.results if result.hard and not result.passed]

    @property
    def validated(self) -> bool:
        return not self.failed

    @property
    def rejections(self) -> list[str]:
        """Why the failed hard gates failed. A soft gate's failures are not here: they reach the sign-off as
        findings (an unenforced fairness gate repeats each failure as one)."""
        return [failure for result in self.results if result.hard for failure in result.failures]

    @property
    def findings(self) -> list[str]:
        """Everything the safety sign-off must acknowledge ("needs full review")."""
        return [finding for result in self.results for finding in result.findings]

    def get(self, result_type: type[R]) -> R | None:
        return next((result for result in self.results if isinstance(result, result_type)), None)

    def stored(self) -> dict[str, JsonObject]:
        """The JSON stored on the version and signed in its manifest."""
        return {result.name: result.stored() for result in self.results}


def gate_outcome_load(stored: Mapping[str, object]) -> GateOutcome:
    """The typed results of a version's stored gates. Raises StoredGateInvalid when a gate does not have its
    shape; a gate this code does not know (written by a later version) is kept with its verdict and findings."""
    results: list[GateResult] = []
    for name, gate in stored.items():
        if not isinstance(gate, dict):
            raise StoredGateInvalid(f"gate {name} is not an object")
        reader = GATE_READERS.get(name)
        try:
            results.append(reader(gate) if reader else UnknownGateResult.of(name, gate))
        except StoredGateInvalid as exc:
            raise StoredGateInvalid(f"gate {name}: {exc}") from exc
    return GateOutcome(tuple(results))


@dataclass(frozen=True, kw_only=True)
class UnknownGateResult(GateResult):
    """A stored gate whose name this code does not know: its verdict and findings still count."""

    body: JsonObject

    @classmethod
    def of(cls, name: str, stored: StoredGate) -> UnknownGateResult:
        hard, passed, findings, evaluated_at = common_fields(stored)
        return cls(
            hard=hard, passed=passed, bound=None, findings=findings, evaluated_at=evaluated_at, name=name,
            body=json_object(stored),
        )  # fmt: skip

    def stored(self) -> JsonObject:
        return dict(self.body)
