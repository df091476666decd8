"""/healthz and /readyz: unauthenticated, quick, and revealing nothing but which check failed."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client


def test_healthz_says_only_that_the_process_answers(db: None) -> None:
    response = Client(REMOTE_ADDR="10.9.8.7").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_readyz_is_ready_when_database_broker_and_artifacts_answer(db: None, settings: object, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path  # type: ignore[attr-defined]
    response = Client(REMOTE_ADDR="10.9.8.7").get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_names_a_missing_artifact_store_and_nothing_else(db: None, settings: object, tmp_path: Path) -> None:
    settings.ARTIFACT_ROOT = tmp_path / "not-mounted"  # type: ignore[attr-defined]
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failed": ["artifacts"]}
    assert b"not-mounted" not in response.content


def test_readyz_names_an_unreachable_broker_within_its_deadline(db: None, settings: object, tmp_path: Path) -> None:
    from clinaiops.celery import app

    settings.ARTIFACT_ROOT = tmp_path  # type: ignore[attr-defined]
    settings.CELERY_TASK_ALWAYS_EAGER = False  # type: ignore[attr-defined]
    saved = app.conf.broker_url
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        app.conf.broker_url = f"amqp://guest:guest@127.0.0.1:{closed.getsockname()[1]}//"
        try:
            started = time.monotonic()
            response = Client().get("/readyz")
            elapsed = time.monotonic() - started
        finally:
            app.conf.broker_url = saved
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failed": ["broker"]}
    assert b"127.0.0.1" not in response.content and b"amqp" not in response.content
    assert elapsed < 3


@pytest.mark.django_db(transaction=True)
def test_readyz_answers_503_in_time_when_the_database_host_hangs(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connections["default"].vendor != "postgresql":
        pytest.skip("a hanging database host is a network condition; SQLite is a file")
    settings.ARTIFACT_ROOT = tmp_path  # type: ignore[attr-defined]
    # A listener that never accepts: the TCP connect succeeds, PostgreSQL's greeting never comes, exactly what a
    # database behind a dead network path looks like.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        database = connections.settings["default"]
        monkeypatch.setitem(database, "HOST", "127.0.0.1")
        monkeypatch.setitem(database, "PORT", str(silent.getsockname()[1]))
        monkeypatch.setitem(database, "OPTIONS", {**database.get("OPTIONS", {}), "connect_timeout": 30})
        started = time.monotonic()
        response = Client().get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert json.loads(response.content) == {"status": "unavailable", "failed": ["database"]}
        assert elapsed < 3.5
        # The hung check is still running: the next probe does not start a second one, and still answers.
        again = Client().get("/readyz")
        assert again.status_code == 503
        assert again.json()["failed"] == ["database"]
