"""Property-based run of the OpenAPI schema at /api/v1/schema/ against the app in-process (WSGI), with
schemathesis: every operation, data that fits the schema and data that does not, as a signed-in patient.
Whatever is sent, the answer is never a 5xx and is always JSON (FHIR's JSON under /fhir/; a 204 has no body). The full
run against the live app (100 examples an operation, `--checks all`: .ci/schemathesis.py, `make fuzz-api`) is CI's
job (issue 12); this keeps a small one in the suite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinaiops.care.models import Patient
from tests.factories import PASSWORD

schemathesis = pytest.importorskip("schemathesis")
MAX_EXAMPLES = 12
# The patient's own access log as a file (CSV or NDJSON, compliance/), as its schema says.
DOWNLOADS = ("/me/access-log/export/",)
JSON_TYPES = {"application/json"}
FHIR_JSON_TYPES = {"application/fhir+json", "application/json"}


@pytest.mark.slow
@pytest.mark.django_db
def test_no_operation_answers_a_server_error_or_anything_but_json(patient: Patient) -> None:
    from rest_framework.test import APIClient

    signed_in = APIClient().post("/api/v1/auth/token/", {"username": "pat_one", "password": PASSWORD}, format="json")
    headers = {"Authorization": f"Bearer {signed_in.json()['access']}"}
    failures: list[str] = []
    # As Django's test client does: the WSGI handler would otherwise close the test's connection before and after each
    # (close_old_connections sees the test's transaction as a changed autocommit setting).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        for operation in operations:
            _fuzz(operation, headers, failures)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert failures == [], "\n".join(failures[:8])


def _fuzz(operation: Any, headers: dict[str, str], failures: list[str]) -> None:
    from schemathesis.generation import GenerationMode

    if operation.path.endswith("/auth/logout/"):
        return  # signing out would end the run's sign-in; its answers are covered in test_idempotency.py
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        # A savepoint a case: a 500 that broke the test's transaction (a database error) is rolled back alone, so it
        # is reported once, not again as "transaction aborted" for every case after it.
        savepoint = transaction.savepoint()
        response = case.call(headers=headers)
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        label = f"{operation.method.upper()} {operation.path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.content[:200]!r}")
        elif response.status_code != 204:
            content_type = (response.headers.get("content-type") or [""])[0]
            if response.status_code < 400 and operation.path.endswith(DOWNLOADS):
                return  # a file by design; its errors are still JSON
            allowed = FHIR_JSON_TYPES if "/fhir/" in operation.path else JSON_TYPES
            if content_type.split(";")[0] not in allowed:
                failures.append(f"{label}: {content_type}")
            else:
                json.loads(response.content)

    run()
