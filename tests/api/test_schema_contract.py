"""The OpenAPI schema as a contract (issue 12, "The schema"): it validates as OpenAPI 3, every operation documents its
error responses in the one error shape (FHIR: OperationOutcome), no operation leaves its answer undocumented, the
error codes it lists are the ones the code raises, real refusals validate against it, every GET answers
`Cache-Control: no-store`, and the docs page at /api/v1/docs/ is served from our own files under the site's CSP."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from clinaiops.api.auth import TokenRefusal
from clinaiops.api.schema import ERROR_COMPONENT, OUTCOME_COMPONENT, error_codes
from clinaiops.care.models import Patient
from clinaiops.core.db_outage import OUTAGE_CODE
from clinaiops.core.models import User

REPO = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _error_schema_refs(response: dict[str, Any]) -> set[str]:
    refs: set[str] = set()
    for media in response.get("content", {}).values():
        part = media["schema"]
        for option in part.get("oneOf", [part]):
            refs.add(option.get("$ref", "").rsplit("/", 1)[-1])
    return refs


def test_the_schema_validates_as_openapi_3(schema: dict[str, Any]) -> None:
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_every_operation_documents_500_and_503_and_its_4xx_in_the_one_error_shape(schema: dict[str, Any]) -> None:
    missing: list[str] = []
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"500", "503"}
        if any(requirement for requirement in operation.get("security", [])):
            expected |= {"401", "403", "404"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if "{" in path:
            expected.add("404")
        if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
            expected |= {"409", "422"}
        if path.startswith("/api/v1/auth/"):
            expected.add("401")
        if path == "/api/v1/auth/token/":
            expected.add("429")
        for status in sorted(expected - set(responses)):
            missing.append(f"{method.upper()} {path}: no {status}")
        for status, response in responses.items():
            if int(status) < 400 or status == "414":  # gunicorn's own HTML answer to a URL too long
                continue
            refs = _error_schema_refs(response)
            fhir = path.startswith("/api/v1/fhir/")
            wanted = {OUTCOME_COMPONENT} if fhir and int(status) < 500 else {ERROR_COMPONENT}
            if not wanted <= refs:
                missing.append(f"{method.upper()} {path} {status}: {refs or 'no body'} instead of {wanted}")
    assert missing == []


def test_the_sign_in_endpoint_documents_its_lock_out_and_throttle(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


def test_no_operation_answers_without_a_documented_body(schema: dict[str, Any]) -> None:
    bodiless = [
        f"{method.upper()} {path} {status}"
        for path, method, operation in _operations(schema)
        for status, response in operation["responses"].items()
        if status != "204" and "content" not in response
    ]
    assert bodiless == []


def test_the_error_codes_are_the_ones_the_code_raises(schema: dict[str, Any]) -> None:
    listed = set(schema["components"]["schemas"]["ErrorCode"]["enum"])
    assert {refusal.value for refusal in TokenRefusal} <= listed
    assert OUTAGE_CODE in listed
    assert {"validation_failed", "json_too_deep", "idempotency_key_reused", "account_locked", "throttled"} <= listed
    # Every literal code in clinaiops/api/ (code="…", code = "…", default_code = "…", error_body("…")).
    literal = re.compile(r"""(?:\bcode\s*=\s*|default_code\s*=\s*|error_body\(\s*)["']([a-z_]+)["']""")
    in_source = {
        code
        for source in (REPO / "clinaiops" / "api").rglob("*.py")
        if "migrations" not in source.parts
        for code in literal.findall(source.read_text())
    }
    # FHIR answers OperationOutcomes, whose issue codes are FHIR's (clinaiops/api/fhir/), not ours.
    in_source -= {code for source in (REPO / "clinaiops" / "api" / "fhir").rglob("*.py")
                  for code in literal.findall(source.read_text())}  # fmt: skip
    assert in_source - listed == set()
    # The table in the description lists the same codes as the enum, each with its status.
    for code in error_codes():
        assert f"| `{code.code}` | {code.status} |" in schema["info"]["description"]
    assert [code.code for code in error_codes()] == schema["components"]["schemas"]["ErrorCode"]["enum"]


def test_the_readme_lists_every_error_code_with_its_status(schema: dict[str, Any]) -> None:
    readme = (REPO / "README.md").read_text()
    missing = [code.code for code in error_codes() if f"| `{code.code}` | {code.status} |" not in readme]
    assert missing == []


def _validator(schema: dict[str, Any], component: str) -> jsonschema.Draft4Validator:
    document = {**schema["components"]["schemas"][component], "components": schema["components"]}
    return jsonschema.Draft4Validator(document)


def test_real_refusals_validate_against_the_error_schema(
    schema: dict[str, Any], patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    validator = _validator(schema, ERROR_COMPONENT)
    signed_in = api_client_for(patient.user)
    anonymous = APIClient()
    refusals = [
        signed_in.post("/api/v1/readings/", {"systolic": 999}, format="json"),
        signed_in.post("/api/v1/readings/", "{not json", content_type="application/json"),
        signed_in.post("/api/v1/readings/", "a=1", content_type="application/x-www-form-urlencoded"),
        signed_in.get("/api/v1/readings/?limit=100000"),
        signed_in.get("/api/v1/recommendations/999999/"),
        signed_in.put("/api/v1/readings/", {}, format="json"),
        signed_in.get("/api/v1/no-such-thing/"),
        anonymous.get("/api/v1/me/"),
        anonymous.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer not-a-token"),
        anonymous.post("/api/v1/auth/token/", {"username": "pat_one", "password": "wrong"}, format="json"),
        signed_in.post("/api/v1/readings/", {}, format="json", HTTP_IDEMPOTENCY_KEY="bad key with spaces"),
    ]
    statuses = []
    for response in refusals:
        statuses.append(response.status_code)
        assert response.status_code >= 400
        validator.validate(response.json())
    assert statuses == [400, 400, 415, 400, 404, 405, 404, 401, 401, 401, 400]


def test_a_staff_token_is_refused_in_the_error_schema(
    schema: dict[str, Any], clinician: User, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(clinician).get("/api/v1/readings/")
    assert response.status_code == 403
    _validator(schema, ERROR_COMPONENT).validate(response.json())
    assert response.json()["code"] in schema["components"]["schemas"]["ErrorCode"]["enum"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_get_answers_no_store_signed_in_and_not(
    schema: dict[str, Any], patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    """Patient data must never stay in a browser's, a proxy's or a shared phone's cache (issue 12, "Caching")."""
    signed_in = api_client_for(patient.user)
    cached: list[str] = []
    gets = [path for path, method, _ in _operations(schema) if method == "get"]
    assert len(gets) >= 8
    for path in gets:
        for who, client in (("patient", signed_in), ("anonymous", APIClient())):
            response = client.get(_concrete(path))
            if "no-store" not in response.get("Cache-Control", ""):
                cached.append(f"{who} GET {path} -> {response.status_code} {response.get('Cache-Control')!r}")
    assert cached == []


def test_the_docs_page_loads_only_our_own_files_under_the_sites_csp(db: None) -> None:
    client = Client()
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    # Every script and stylesheet is one of our static files; no other host is named.
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sources and all(src.startswith(("/static/", "/api/v1/docs/")) for src in sources), sources
    assert "http://" not in html and "https://" not in html
    assert "<script>" not in html  # no inline script: the init script is its own file
    policy = page["Content-Security-Policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    nonce = re.search(r'<style nonce="([^"]+)">', html)
    assert nonce is not None and f"'nonce-{nonce.group(1)}'" in policy
    # The init script is served as JavaScript and points at our schema.
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()
    for asset in re.findall(r"""src=["'](/static/[^"']+)["']""", html):
        assert client.get(asset).status_code == 200, asset


def test_data_images_are_allowed_on_the_docs_page_only(db: None) -> None:
    docs_policy = Client().get("/api/v1/docs/")["Content-Security-Policy"]
    login_policy = Client().get("/login/")["Content-Security-Policy"]
    assert "data:" in next(part for part in docs_policy.split(";") if "img-src" in part)
    assert "data:" not in login_policy
