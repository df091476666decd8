"""Helpers for the session, token and MFA tests: API sign-in the way the mobile app does it, and TOTP codes
computed here from RFC 6238 itself, independently of django-otp, so a broken verifier cannot agree with itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from clinaiops.core.models import User
from tests.factories import PASSWORD


def totp(key_hex: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1, dynamic truncation of RFC 4226 §5.3) of a hex key at time `at`."""
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(bytes.fromhex(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp_from_base32(secret: str, *, at: float | None = None) -> str:
    padded = secret + "=" * (-len(secret) % 8)
    return totp(base64.b32decode(padded).hex(), at=at)


@pytest.fixture
def sign_in() -> Callable[..., dict[str, Any]]:
    """POST /api/v1/auth/token/ as `user`; returns the JSON body (with `status` added)."""

    def post(user: User, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        response = APIClient().post(
            "/api/v1/auth/token/", {"username": user.username, "password": password, **extra}, format="json"
        )
        body: dict[str, Any] = response.json()
        body["status"] = response.status_code
        body["retry_after"] = response.get("Retry-After")
        return body

    return post


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client
