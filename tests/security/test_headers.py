"""Issue 8 §4: response headers. A Content-Security-Policy with no inline script that the pages actually keep to,
HTTPS and HSTS in production with a clean `check --deploy`, forwarded headers believed only from trusted proxies,
and no `Server: gunicorn`."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion

ROOT = Path(__file__).resolve().parents[2]
SEED = base64.b64encode(b"\x01" * 32).decode()
INDEX_SEED = base64.b64encode(b"\x02" * 32).decode()
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "clinaiops.settings.production",
    "SECRET_KEY": "Zq93jd82kdmsl2093jfmsk2Xq9aPo4Lw7Rt6Yu8Ei1Nb5Vc3Mx0",
    "AUDIT_SIGNING_KEY": SEED,
    "AUDIT_DIGEST_KEY": SEED,
    "MODEL_SIGNING_KEY": SEED,
    "EVIDENCE_SIGNING_KEY": SEED,
    "FIELD_ENCRYPTION_KEYS": f"k1:{SEED}",
    "BLIND_INDEX_KEYS": f"b1:{INDEX_SEED}",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "DATABASE_URL": "sqlite:////tmp/clinaiops-sess-deploy-check.sqlite3",
    "ALLOWED_HOSTS": "clinaiops.example.org",
}

_INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE),
    "event-handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def _production(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("SECURE_", "MFA_"))}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**inherited, **PRODUCTION, **extra},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _policy(response: Any) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {name: values for name, *values in directives}


def test_the_policy_allows_scripts_only_from_our_own_origin(clinician: User, portal_client_for: Any) -> None:
    policy = _policy(portal_client_for(clinician).get("/queue/"))
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in " ".join(v for values in policy.values() for v in values)


def test_no_portal_page_carries_inline_script_or_style_attributes(
    patient: Patient,
    clinician: User,
    ml_engineer: User,
    compliance_officer: User,
    safety_officer: User,
    pending_recommendation: Recommendation,
    deployed_model: ModelVersion,
    portal_client_for: Any,
) -> None:
    seq = AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first()
    pages = {
        clinician: [
            "/queue/", "/patients/", f"/patients/{patient.pk}/", f"/recommendations/{pending_recommendation.pk}/",
            "/alerts/", "/emergency-access/", "/account/", "/account/mfa/enrol/", "/account/password/",
        ],
        ml_engineer: ["/models/", f"/models/{deployed_model.pk}/", "/governance/policy/", "/monitoring/"],
        compliance_officer: [
            f"/audit/{seq}/", "/audit/", "/compliance/accounting/", reverse("compliance:exports"),
            reverse("compliance:decision", args=[pending_recommendation.pk]),
        ],
        safety_officer: ["/alerts/", "/governance/policy/"],
    }  # fmt: skip
    checked = 0
    for user, urls in pages.items():
        client = portal_client_for(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            for what, pattern in _INLINE.items():
                assert not pattern.search(html), f"{url} has an {what}: {pattern.search(html)}"
            nonces = set(re.findall(r"<style nonce=\"([^\"]+)\"", html))
            if nonces:
                # A <style> block is allowed only with this response's nonce.
                assert {f"'nonce-{nonce}'" for nonce in nonces} <= set(_policy(response)["style-src"]), url
            checked += 1
    assert checked == 20
    assert Client().get("/login/")["Content-Security-Policy"]


def test_check_deploy_is_clean_with_the_production_settings() -> None:
    result = _production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "W004" not in result.stderr and "W008" not in result.stderr


def test_production_defaults_require_mfa_for_signing_roles_and_a_shared_cache() -> None:
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.MFA_REQUIRED_FOR_SIGNING_ROLES, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CACHES['default']['BACKEND'].rsplit('.', 1)[-1])"
    )
    result = _production("-c", probe)
    assert result.stdout.split() == ["True", "True", "31536000", "True", "DatabaseCache"], result.stderr
    refused = _production("-c", "import django; django.setup()", CACHE_URL="locmem://")
    assert refused.returncode != 0 and "CACHE_URL must be shared" in refused.stderr


def test_plain_http_is_redirected_and_only_a_trusted_proxy_may_say_https(clinician: User, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = Client().get("/login/")
    assert (plain.status_code, plain["Location"]) == (301, "https://testserver/login/")
    # Anyone can send the header; from a peer that is not one of our proxies it is dropped.
    assert Client().get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    proxied = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000"
    # Probes are answered before the redirect, so a load balancer's plain-HTTP check still works.
    assert Client().get("/healthz").status_code == 200


def test_a_form_posted_after_its_token_expired_gets_a_page_that_says_so(db: None) -> None:
    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "someone", "password": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not _INLINE["inline script"].search(response.content.decode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_gunicorn_with_the_project_config_sends_no_server_header(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:clinaiops.gunicorn_config", "clinaiops.wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        headers = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/portal/portal.css", timeout=2) as reply:
                    headers = reply.headers
                    break
            except OSError:
                time.sleep(0.2)
        assert headers is not None, "gunicorn did not answer"
        assert headers.get("Server") is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as reply:
            assert reply.headers.get("Server") is None
            assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
    finally:
        server.terminate()
        server.wait(timeout=30)
