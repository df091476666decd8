"""A database outage answers 503 with Retry-After within the time limits: JSON in the one error shape for the API,
a plain page for the portal, never an HTML 500 or a hang (issue 8 §5). The database is made unreachable for real:
the connection is pointed at a port nobody listens on (refused), or at a listener that accepts and never speaks
(a stalled host). The probes keep their own answers. tests/faults/test_database_faults.py restarts and stalls a
real PostgreSQL under a live server."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connection, connections
from django.test import Client
from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.db_outage import database_outage
from clinaiops.core.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("an unreachable database server is a network condition; SQLite is a file")


@contextlib.contextmanager
def _database_at(port: int, monkeypatch: pytest.MonkeyPatch, connect_timeout: int = 1) -> Iterator[None]:
    """Point the default connection at 127.0.0.1:`port` for the duration (the next query reconnects)."""
    database = connections.settings["default"]
    connections["default"].close()
    with monkeypatch.context() as patch:
        patch.setitem(database, "HOST", "127.0.0.1")
        patch.setitem(database, "PORT", str(port))
        patch.setitem(database, "OPTIONS", {**database.get("OPTIONS", {}), "connect_timeout": connect_timeout})
        try:
            yield
        finally:
            connections["default"].close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_json_503(response: object) -> None:
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/json"  # type: ignore[index]
    assert int(response["Retry-After"]) > 0  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert body == {"code": "database_unavailable", "message": body["message"], "fields": {}}
    assert "127.0.0.1" not in body["message"] and "Traceback" not in body["message"]


def test_the_api_answers_json_503_with_retry_after_when_the_database_refuses(
    patient: Patient, api_client_for: Callable[[User], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api_client_for(patient.user)
    with _database_at(_closed_port(), monkeypatch):
        _assert_json_503(client.get("/api/v1/readings/"))
        body = {"taken_at": "2026-11-30T08:00:00Z", "systolic": 130, "diastolic": 80, "source": "cuff"}
        _assert_json_503(client.post("/api/v1/readings/", body, format="json"))
        _assert_json_503(APIClient().post("/api/v1/auth/token/", {"username": "pat_one", "password": PASSWORD}))
    # Back up: the same client goes on, and the reading it resends is stored.
    assert client.post("/api/v1/readings/", body, format="json").status_code == 201


def test_the_portal_answers_a_plain_503_page_when_the_database_refuses(
    clinician: User, portal_client_for: Callable[[User], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = portal_client_for(clinician)
    # What a browser gets: the test client would otherwise re-raise the exception Django handled.
    client.raise_request_exception = False
    with _database_at(_closed_port(), monkeypatch):
        for path in ("/queue/", "/patients/", "/login/"):
            page = client.get(path)
            assert page.status_code == 503, path
            assert page["Content-Type"].startswith("text/html")
            assert int(page["Retry-After"]) > 0
            html = page.content.decode()
            assert "Temporarily unavailable" in html
            assert "Traceback" not in html and "OperationalError" not in html and "Server Error" not in html
    assert client.get("/queue/").status_code == 200


def test_a_silent_database_host_answers_503_within_the_connect_timeout(
    patient: Patient, api_client_for: Callable[[User], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api_client_for(patient.user)
    # Accepts the TCP connection and never greets: a host that has stalled, or a path that drops the replies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with _database_at(silent.getsockname()[1], monkeypatch, connect_timeout=1):
            started = time.monotonic()
            response = client.get("/api/v1/readings/")
            elapsed = time.monotonic() - started
    _assert_json_503(response)
    assert elapsed < 4, elapsed


def test_the_probes_keep_their_answers_during_an_outage(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(settings.ARTIFACT_ROOT).mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
    with _database_at(_closed_port(), monkeypatch):
        assert Client().get("/healthz").status_code == 200
        ready = Client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "failed": ["database"]}


def test_every_connection_carries_the_server_side_time_limits(settings: object) -> None:
    with connection.cursor() as cursor:
        shown = {}
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    assert shown == {
        "statement_timeout": f"{settings.DATABASE_STATEMENT_TIMEOUT_MS // 1000}s",  # type: ignore[attr-defined]
        "lock_timeout": f"{settings.DATABASE_LOCK_TIMEOUT_MS // 1000}s",  # type: ignore[attr-defined]
        "idle_in_transaction_session_timeout": f"{settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS // 60_000}min",  # type: ignore[attr-defined]
    }
    assert connection.connection.info.get_parameters()["connect_timeout"] == "5"


def test_a_statement_over_the_limit_is_cancelled_and_counts_as_an_outage() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 200")
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            cursor.execute("SELECT pg_sleep(5)")
        cursor.execute("RESET statement_timeout")
    assert time.monotonic() - started < 2
    assert database_outage(raised.value)


def test_a_server_that_does_not_answer_in_time_is_given_up_on_the_client_side(settings: object) -> None:
    # The server-side limit is off for this statement, as it is for a server that has stopped running: only the
    # client-side limit ends the wait. The connection is closed, and the next query gets a fresh one.
    settings.DATABASE_CLIENT_TIMEOUT_SECONDS = 1  # type: ignore[attr-defined]
    connections["default"].close()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        started = time.monotonic()
        with pytest.raises(OperationalError, match="did not answer within 1 s") as raised:
            cursor.execute("SELECT pg_sleep(4)")
    assert time.monotonic() - started < 2
    assert database_outage(raised.value)
    connections["default"].close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    # The test database's flush after this test must not run on a connection limited to 1 s.
    settings.DATABASE_CLIENT_TIMEOUT_SECONDS = 0  # type: ignore[attr-defined]
    connections["default"].close()
