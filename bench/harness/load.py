"""Load generators: wrk (Debian's package) for throughput at 16 connections, and a keep-alive loop of sequential
requests for per-request latency."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

WRK_SCRIPTS = Path(__file__).resolve().parents[1] / "wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_parse(output: str) -> WrkResult:
    """Read `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and total and p50 and p99):
        raise ValueError("wrk printed no result:\n" + output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make system-deps` installs Debian's wrk (as root)")
    return found


def wrk(
    url: str, *, script: str, env: dict[str, str], duration_s: int, connections: int = 16, threads: int = 2
) -> WrkResult:
    """Drive `url` with wrk for `duration_s` (the run is bounded in time and stops by itself)."""
    command = [
        wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "--latency",
        "-s", str(WRK_SCRIPTS / script), url,
    ]  # fmt: skip
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration_s + 60, check=True
    )
    return wrk_parse(done.stdout)


@dataclass(frozen=True)
class Sequential:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    n: int
    statuses: dict[int, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sequential(
    url: str, *, n: int, headers: dict[str, str], method: str = "GET", body: Callable[[int], bytes] | None = None,
    warmup: int = 3,
) -> Sequential:  # fmt: skip
    """`n` requests one after another on one keep-alive connection: the latency a single user sees."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    times: list[float] = []
    statuses: dict[int, int] = {}
    for i in range(-warmup, n):
        payload = body(i + warmup) if body else None
        started = time.perf_counter()
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 0:
            times.append(elapsed)
            statuses[response.status] = statuses.get(response.status, 0) + 1
    conn.close()
    times.sort()
    return Sequential(
        p50_ms=statistics.median(times),
        p95_ms=times[min(len(times) - 1, int(0.95 * len(times)))],
        mean_ms=statistics.fmean(times),
        n=n,
        statuses=statuses,
    )
