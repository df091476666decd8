"""Issue 8 §4: the sign-in throttle holds across processes and against a rotating X-Forwarded-For, and every user of
the client address (throttle, django-axes, the audit ledger) believes forwarded headers only from TRUSTED_PROXIES."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.client_address import client_address_from_meta
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token_rate(settings: Any) -> Iterator[int]:
    """A small sign-in rate for the test (the test settings allow 1000/min), and a clean cache around it."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "5/min"}}
    cache.clear()
    yield 5
    cache.clear()


def _attempt(**headers: str) -> Any:
    return APIClient().post(
        "/api/v1/auth/token/", {"username": "nobody", "password": "a wrong password"}, format="json", **headers
    )


def test_rotating_x_forwarded_for_gets_no_fresh_throttle_budget(db: None, token_rate: int) -> None:
    statuses = [_attempt(HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(token_rate + 3)]
    assert statuses == [401] * token_rate + [429] * 3
    refused = _attempt(HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_behind_a_trusted_proxy_each_client_has_its_own_budget_and_spoofed_hops_do_not_count(
    db: None, token_rate: int, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    # The proxy appends the real client (203.0.113.1) at the right; whatever the client wrote before it is ignored.
    spoofed = [_attempt(HTTP_X_FORWARDED_FOR=f"10.9.{i}.1, 203.0.113.1").status_code for i in range(token_rate + 1)]
    assert spoofed == [401] * token_rate + [429]
    # Another client behind the same proxy still has its own budget.
    assert _attempt(HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 401


def test_the_portal_sign_in_form_spends_the_same_budget(clinician: Any, token_rate: int) -> None:
    form = {"username": clinician.username, "password": "a wrong password"}
    statuses = [Client().post("/login/", form).status_code for _ in range(token_rate - 1)]
    statuses.append(_attempt().status_code)  # the API's endpoint, same address
    refused = Client().post("/login/", form, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert statuses == [200] * (token_rate - 1) + [401]
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in refused.content.decode()


def test_the_client_address_rule() -> None:
    trusted = {"REMOTE_ADDR": "10.0.0.5"}
    cases = [
        ({"REMOTE_ADDR": "192.0.2.9", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "192.0.2.9"),  # untrusted peer
        ({**trusted, "HTTP_X_FORWARDED_FOR": "1.2.3.4, 192.0.2.9"}, "192.0.2.9"),  # rightmost untrusted hop
        ({**trusted, "HTTP_X_FORWARDED_FOR": "192.0.2.9, 10.0.0.7"}, "192.0.2.9"),  # through two of our proxies
        ({**trusted, "HTTP_X_FORWARDED_FOR": "garbage, 10.0.0.7"}, "10.0.0.7"),  # nothing believable beyond
        ({**trusted}, "10.0.0.5"),
        ({"REMOTE_ADDR": "::ffff:10.0.0.5", "HTTP_X_FORWARDED_FOR": "192.0.2.9"}, "192.0.2.9"),  # IPv4-mapped
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(django_settings, "TRUSTED_PROXIES", ["10.0.0.0/24"])
        for meta, expected in cases:
            assert client_address_from_meta(meta) == expected, meta


def test_the_ledger_records_the_peer_not_a_forged_forwarded_address(
    patient: Patient, api_client_for: Any, settings: Any
) -> None:
    client = api_client_for(patient.user)
    now = timezone.now()
    body = {"taken_at": (now - timedelta(hours=2)).isoformat(), "systolic": 130, "diastolic": 82, "heart_rate": 70}
    body["source"] = "cuff"
    assert client.post("/api/v1/readings/", body, format="json", HTTP_X_FORWARDED_FOR="6.6.6.6").status_code == 201
    assert AuditEvent.objects.filter(action="reading.ingested").get().ip == "127.0.0.1"
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    body["taken_at"] = (now - timedelta(hours=1)).isoformat()
    forwarded = "6.6.6.6, 192.0.2.44"
    assert client.post("/api/v1/readings/", body, format="json", HTTP_X_FORWARDED_FOR=forwarded).status_code == 201
    assert AuditEvent.objects.filter(action="reading.ingested").order_by("-seq").first().ip == "192.0.2.44"


_PROCESS = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.test import override_settings
    from rest_framework.test import APIRequestFactory
    from clinaiops.core.sign_in_throttle import SignInRateThrottle

    address, attempts = sys.argv[1], int(sys.argv[2])
    rates = {"DEFAULT_THROTTLE_RATES": {"token": "10/min"}}
    allowed = 0
    with override_settings(REST_FRAMEWORK=rates):
        for _ in range(attempts):
            request = APIRequestFactory().post("/api/v1/auth/token/", REMOTE_ADDR=address)
            allowed += SignInRateThrottle().allow_request(request, None)
    print(json.dumps(allowed))
    """
)


def _two_processes(env: dict[str, str], address: str) -> list[int]:
    env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, address, "15"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    return [int(output.strip().splitlines()[-1]) for output in outputs]


def test_the_throttle_is_shared_by_two_processes_on_redis(db: None) -> None:
    """Production's cache: two workers together let through the rate, not twice it."""
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    try:
        allowed = _two_processes({"CACHE_URL": "redis://127.0.0.1:6379/0"}, address)
    finally:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"clinaiops:*:sign-in:token:{address}:*"):
            client.delete(key)
    assert sum(allowed) == 10, allowed


@pytest.mark.django_db(transaction=True)
def test_the_throttle_is_shared_by_two_processes_on_the_database_cache() -> None:
    """The demo's and the tests' cache: a table in the database, shared by gunicorn's workers."""
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database lives in this process's memory; no other process can open it")
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    cache.clear()
    allowed = _two_processes({"DATABASE_URL": url, "CACHE_URL": "db://clinaiops_cache"}, "198.18.0.1")
    cache.clear()
    assert sum(allowed) == 10, allowed


def test_django_axes_counts_failures_by_the_same_client_address_rule(patient: Patient, settings: Any) -> None:
    """Behind our proxy, a guesser who rotates the left part of X-Forwarded-For still builds up one lock-out
    counter (its real address, the proxy's hop), and a patient behind another address is not locked with it."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]

    def attempt(password: str, forwarded: str) -> Any:
        return APIClient().post(
            "/api/v1/auth/token/",
            {"username": patient.user.username, "password": password},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    statuses = [attempt("a wrong password", f"10.9.{i}.1, 203.0.113.1").status_code for i in range(3)]
    assert statuses == [401, 401, 429]
    locked = attempt(PASSWORD, "10.9.200.1, 203.0.113.1")
    assert (locked.status_code, locked.json()["code"]) == (429, "account_locked")
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.1"}
    assert attempt(PASSWORD, "203.0.113.2").status_code == 200
