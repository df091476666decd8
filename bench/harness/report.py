"""Figures with their baseline from the same run, printed as a table and written as JSON under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass
class Figure:
    """One measured figure. `ratio` is value / baseline; `better` says which way is good ("higher" for
    throughput, "lower" for latency and memory); `goal` is the issue's target, as text, when there is one."""

    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    better: str = "higher"
    goal: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}

    def line(self) -> str:
        value = f"{self.value:,.1f} {self.unit}"
        if self.baseline is None:
            return f"  {self.name:<52} {value:>16}"
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else "n/a"
        goal = f"  goal {self.goal}" if self.goal else ""
        return (
            f"  {self.name:<52} {value:>16}   vs {self.baseline_name} {self.baseline:,.1f} {self.unit} = {ratio}{goal}"
        )


def figures_print(title: str, figures: list[Figure]) -> None:
    print(f"\n{title}")
    for figure in figures:
        print(figure.line())


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cores": os.cpu_count(),
        "load_average": load,
        "python": platform.python_version(),
        "commit": commit,
        "time": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }


def results_write(name: str, payload: dict[str, Any]) -> Path:
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def figures_load(path: Path) -> list[Figure]:
    data = json.loads(path.read_text())
    return [Figure(**{k: v for k, v in f.items() if k != "ratio"}) for f in data.get("figures", [])]
