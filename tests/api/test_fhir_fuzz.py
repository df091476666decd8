"""Property-based: the US Core examples with any element replaced, removed or retyped never get a 5xx, always get
FHIR back (an OperationOutcome or a response Bundle), and never see a planted value again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from tests.api.fhir_examples import FHIR_JSON, blood_pressure, bundle, heart_rate

MARKER = "Zq7MarkerXy"
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(MARKER),
    st.just(f"{MARKER}|{MARKER}"),
    st.sampled_from(["Observation", "Bundle", "Device", "Patient/P-0001", "mm[Hg]", "kPa", "/min", "2026-02-30"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.just(MARKER) | st.sampled_from(["resourceType", "value", "code", "system"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(document: Any, path: tuple[Any, ...], value: Any, remove: bool) -> Any:
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if remove and isinstance(parent, dict):
        parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    return document


@st.composite
def _hostile(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["observation", "transaction", "batch"]))
    if kind == "observation":
        document: Any = draw(st.sampled_from([blood_pressure, heart_rate]))()
    else:
        document = bundle(kind, blood_pressure(), heart_rate())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        document = _mutate(document, path, draw(_values), draw(st.booleans()))
    return ("/api/v1/fhir/Observation" if kind == "observation" else "/api/v1/fhir/"), document


@pytest.mark.slow
def test_mutated_us_core_resources_never_get_a_server_error_or_an_echo(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_hostile())
    def check(case: tuple[str, Any]) -> None:
        url, document = case
        response = client.post(url, json.dumps(document), content_type=FHIR_JSON)
        assert response.status_code < 500, (document, response.content)
        assert response["Content-Type"].startswith(FHIR_JSON)
        body = response.json()
        assert body["resourceType"] in ("OperationOutcome", "Bundle")
        assert MARKER not in response.content.decode(), (document, response.content)

    check()
