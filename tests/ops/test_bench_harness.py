"""The bench harness's promises that matter outside the bench: it touches no database but its own, and it reads
wrk's figures right (bench/harness)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from harness import pg
from harness.load import wrk_parse

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:41234
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   115.20ms   40.11ms 400.00ms   70.00%
    Req/Sec    65.00     10.00    90.00     70.00%
  Latency Distribution
     50%  115.20ms
     75%  130.00ms
     90%  160.00ms
     99%    1.25s
  1040 requests in 8.01s, 500.00KB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:    129.84
Transfer/sec:     62.42KB
"""


@pytest.mark.parametrize("name", ["clinaiops_test", "clinaiops_ops", "postgres", "clinaiops_bench", "x; DROP"])
def test_the_bench_refuses_to_touch_a_database_that_is_not_its_own(name: str) -> None:
    for action in (pg.db_drop, pg.db_create, pg.db_exists, pg.db_url):
        with pytest.raises(pg.NotABenchDatabase):
            action(name)
    with pytest.raises(pg.NotABenchDatabase):
        pg.db_create("clinaiops_bench_copy", template=name)


def test_wrk_output_is_read_with_its_units() -> None:
    result = wrk_parse(WRK_OUTPUT)
    assert result.requests_per_s == 129.84
    assert result.p50_ms == pytest.approx(115.2)
    assert result.p99_ms == pytest.approx(1250.0)
    assert (result.requests, result.non_2xx, result.socket_errors) == (1040, 3, 3)


def test_wrk_output_without_figures_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="no result"):
        wrk_parse("unable to connect to 127.0.0.1:1 Connection refused\n")
