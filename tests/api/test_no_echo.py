"""No echoes (issue 12): a value sent to the API never comes back in an error message, since messages end up in
client logs and crash reports, and a value may be PHI. Distinctive markers go into every field of every POST, as
every JSON type a client could send, and no response body may contain one."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation

# Per POST, its fields (and an unknown one, which must be refused without quoting its value).
POST_FIELDS: dict[str, list[str]] = {
    "/api/v1/readings/": ["taken_at", "systolic", "diastolic", "heart_rate", "source", "unit", "extra_field"],
    "/api/v1/symptoms/": ["kind", "reported_at", "extra_field"],
    "/api/v1/recommendations/{pk}/respond/": ["response", "extra_field"],
    "/api/v1/auth/token/": ["username", "password", "otp", "extra_field"],
    "/api/v1/auth/token/refresh/": ["refresh", "extra_field"],
    "/api/v1/auth/logout/": ["refresh", "extra_field"],
}
VALID: dict[str, dict[str, Any]] = {
    "/api/v1/readings/": {"taken_at": "2026-11-30T07:30:00Z", "systolic": 130, "diastolic": 80, "source": "cuff"},
    "/api/v1/symptoms/": {"kind": "headache"},
    "/api/v1/recommendations/{pk}/respond/": {"response": "acknowledge"},
    "/api/v1/auth/token/": {"username": "pat_one", "password": "wrong"},
    "/api/v1/auth/token/refresh/": {"refresh": "x"},
    "/api/v1/auth/logout/": {"refresh": "x"},
}


def _markers(field: str) -> list[tuple[Any, str]]:
    """(value sent, text that must not come back) for each JSON type."""
    tag = f"ZQXMARK{zlib.crc32(field.encode()) % 10**6:06d}"
    return [
        (tag, tag),
        (f"2026-11-30T07:30:00Z{tag}", tag),
        (f"<script>{tag}</script>", tag),
        ([tag], tag),
        ({tag: tag}, tag),
        (731_917_313, "731917313"),
        (7.31917313e300, "7.31917313"),
        ("9" * 40 + "7319", "99999999999999999999"),
    ]


@pytest.mark.parametrize("url", sorted(POST_FIELDS))
def test_no_response_quotes_a_submitted_value(
    url: str, patient: Patient, pending_recommendation: Recommendation, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    path = url.format(pk=pending_recommendation.pk)
    for field in POST_FIELDS[url]:
        for value, needle in _markers(field):
            response = client.post(path, {**VALID[url], field: value}, format="json")
            assert response.status_code < 500, (field, value, response.content)
            assert needle.encode() not in response.content, (path, field, response.content)


def test_a_wrong_type_for_the_whole_body_is_not_quoted(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    for body in (b'"ZQXMARKBODY"', b'["ZQXMARKBODY"]', b"7319173131"):
        response = client.post("/api/v1/readings/", data=body, content_type="application/json")
        assert response.status_code == 400
        assert b"ZQXMARKBODY" not in response.content and b"7319173131" not in response.content


def test_a_malformed_body_and_its_charset_are_not_quoted(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    response = client.post("/api/v1/readings/", data=b'{"ZQXMARKJSON', content_type="application/json")
    assert response.status_code == 400 and b"ZQXMARK" not in response.content
    response = client.post("/api/v1/readings/", data=b"{}", content_type="application/json; charset=zqxmarkcs")
    assert response.status_code == 400 and b"zqxmark" not in response.content.lower()
