"""What every gate returns, and how a stored gate is read back (shared by the gate modules).

A gate's result is a frozen dataclass: its name, whether it is hard, whether it passed, its bound, its
findings (what the safety sign-off must acknowledge) and its own numbers. Its status, failures and one-line
summary are derived here and in the gate's own class, nowhere else: the registry, the model page, the
commands and the sign-off check all read them from the result.

Results are stored as JSON on the model version, inside its signed manifest. `stored()` writes the shape that
versions registered before results were typed already carry (the manifest of an old version must keep
verifying, and every version must read back the same way), and each class's `from_stored` reads it back. The
readers below accept only the JSON types they expect, so a damaged record fails loudly instead of being shown
as a passing gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]
# What json.loads gives back for a stored gate, before the readers below check each field's type.
StoredGate = Mapping[str, object]


class StoredGateInvalid(ValueError):
    """A stored gate does not have the shape its gate writes."""


class GateStatus(StrEnum):
    """The values stored in each gate's "status" field."""

    PASSED = "pass"
    FAILED = "fail"
    NEEDS_FULL_REVIEW = "needs full review"

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    GateStatus.PASSED: "passed",
    GateStatus.FAILED: "failed",
    GateStatus.NEEDS_FULL_REVIEW: "needs full review",
}


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """The fields every gate shares. Subclasses add their numbers, `failures`, `summary` and the stored form."""

    name: str = ""
    label: ClassVar[str] = ""
    hard: bool
    passed: bool
    bound: float | None
    # "Needs full review" findings: they do not reject the version, the safety sign-off acknowledges each one.
    findings: tuple[str, ...] = ()
    evaluated_at: str = ""

    @property
    def status(self) -> GateStatus:
        """The one rule: a hard gate that did not pass fails; a gate with findings, or a soft gate that did not
        pass, needs a full review; anything else passes."""
        if self.hard and not self.passed:
            return GateStatus.FAILED
        if self.findings or not self.passed:
            return GateStatus.NEEDS_FULL_REVIEW
        return GateStatus.PASSED

    @property
    def failures(self) -> tuple[str, ...]:
        """Why the gate did not pass, one line each; empty when it passed."""
        if self.passed:
            return ()
        return self._failures() or (f"{self.label or self.name}: did not pass",)

    @property
    def summary(self) -> str:
        """The gate's numbers in one line (commands, the model page, lineage)."""
        return ""

    def _failures(self) -> tuple[str, ...]:
        return ()

    def _numbers(self) -> JsonObject:
        return {}

    def stored(self) -> JsonObject:
        body: JsonObject = {
            "hard": self.hard,
            "passed": self.passed,
            "status": str(self.status),
            "review_reasons": list(self.findings),
        }
        if self.evaluated_at:
            body["evaluated_at"] = self.evaluated_at
        body.update(self._numbers())
        return body


def common_fields(stored: StoredGate) -> tuple[bool, bool, tuple[str, ...], str]:
    """(hard, passed, findings, evaluated_at) of a stored gate."""
    return (
        read_bool(stored, "hard"),
        read_bool(stored, "passed"),
        read_strs(stored, "review_reasons"),
        read_str(stored, "evaluated_at", default=""),
    )


def finite(value: float | None) -> float | None:
    """Canonical JSON refuses NaN; a number that does not exist is stored as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def read_bool(stored: StoredGate, key: str) -> bool:
    value = stored.get(key)
    if not isinstance(value, bool):
        raise StoredGateInvalid(f"{key} must be true or false, not {value!r}")
    return value


def read_number(stored: StoredGate, key: str) -> float | None:
    value = stored.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StoredGateInvalid(f"{key} must be a number, not {value!r}")
    return float(value)


def read_required_number(stored: StoredGate, key: str) -> float:
    value = read_number(stored, key)
    if value is None:
        raise StoredGateInvalid(f"{key} is missing")
    return value


def read_int(stored: StoredGate, key: str) -> int:
    value = stored.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise StoredGateInvalid(f"{key} must be a whole number, not {value!r}")
    return value


def read_str(stored: StoredGate, key: str, *, default: str | None = None) -> str:
    value = stored.get(key, default)
    if not isinstance(value, str):
        raise StoredGateInvalid(f"{key} must be text, not {value!r}")
    return value


def read_optional_str(stored: StoredGate, key: str) -> str | None:
    value = stored.get(key)
    return None if value is None else read_str(stored, key)


def read_strs(stored: StoredGate, key: str) -> tuple[str, ...]:
    value = stored.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoredGateInvalid(f"{key} must be a list of texts, not {value!r}")
    return tuple(value)


def read_object(stored: StoredGate, key: str) -> StoredGate | None:
    value = stored.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StoredGateInvalid(f"{key} must be an object, not {value!r}")
    return value


def read_objects(stored: StoredGate, key: str) -> tuple[StoredGate, ...]:
    value = stored.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise StoredGateInvalid(f"{key} must be a list of objects, not {value!r}")
    return tuple(value)


def read_number_map(stored: StoredGate, key: str) -> dict[str, float | None]:
    value = read_object(stored, key) or {}
    return {str(name): read_number(value, str(name)) for name in value}


def json_value(value: object) -> JsonValue:
    """`value` if it is JSON (checked all the way down), for the parts of a gate kept as a whole report."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: json_value(item) for key, item in value.items()}
    raise StoredGateInvalid(f"not JSON: {value!r}")


def json_object(value: object) -> JsonObject:
    checked = json_value(value)
    if not isinstance(checked, dict):
        raise StoredGateInvalid(f"not a JSON object: {value!r}")
    return checked
