"""Persistent database connections (issue 13): on by default in production, with health checks everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.test_settings import GOOD, ROOT

PRINT = (
    "import json, django; django.setup(); from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps([d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS']]))"
)


def _connection_settings(env: dict[str, str]) -> list[object]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "CONN_MAX_AGE"}
    done = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({}, [60, True]),  # production default: a connection lives a minute
        ({"CONN_MAX_AGE": "0"}, [0, True]),  # e.g. when pgbouncer should do all the pooling
        ({"CONN_MAX_AGE": "300"}, [300, True]),
        ({"DATABASE_URL": "postgres://app@db.internal:5432/clinaiops?conn_max_age=30"}, [30, True]),
        ({"DATABASE_URL": "postgres://app@db.internal:5432/clinaiops?conn_max_age=30", "CONN_MAX_AGE": "5"}, [5, True]),
    ],
)
def test_production_keeps_connections_with_health_checks(override: dict[str, str], expected: list[object]) -> None:
    assert _connection_settings({**GOOD, **override}) == expected


def test_development_and_tests_open_a_connection_per_request_by_default() -> None:
    assert _connection_settings({"DJANGO_SETTINGS_MODULE": "clinaiops.settings.base"}) == [0, True]
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
