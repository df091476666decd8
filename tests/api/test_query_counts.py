"""Query counts of the patient API's hot paths are pinned (STYLE.md): reading ingest is the busiest write of
the system (DESIGN §10 measured it), the recommendations list its busiest read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import Patient, Reading
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation import evaluation_run


def _reading(minutes_ago: int, systolic: int = 132, diastolic: int = 84) -> dict[str, object]:
    taken_at = (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()
    return {"taken_at": taken_at, "systolic": systolic, "diastolic": diastolic, "heart_rate": 70, "source": "cuff"}


def test_reading_ingest_query_count(
    patient: Patient, api_client_for: Callable[[User], APIClient], django_assert_num_queries: Any
) -> None:
    client = api_client_for(patient.user)
    assert client.post("/api/v1/readings/", _reading(30), format="json").status_code == 201  # the policy exists now
    with django_assert_num_queries(READING_INGEST):
        assert client.post("/api/v1/readings/", _reading(20), format="json").status_code == 201
    with django_assert_num_queries(READING_INGEST_LOW):  # a low reading also counts the window's low readings
        assert client.post("/api/v1/readings/", _reading(10, 85, 55), format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_reading_ingest_query_count_as_in_production(
    patient: Patient, api_client_for: Callable[[User], APIClient], django_assert_num_queries: Any
) -> None:
    """As a server runs it, with no test transaction around the request: the service's own transaction is then BEGIN
    and COMMIT instead of a savepoint pair, and Django counts those too, so the figure is the same."""
    client = api_client_for(patient.user)
    assert client.post("/api/v1/readings/", _reading(30), format="json").status_code == 201
    with django_assert_num_queries(READING_INGEST):
        assert client.post("/api/v1/readings/", _reading(20), format="json").status_code == 201
    assert Reading.objects.filter(patient=patient).count() == 2


def test_recommendations_list_queries_do_not_grow_with_the_list(
    pending_recommendation: Recommendation,
    patient: Patient,
    api_client_for: Callable[[User], APIClient],
    django_assert_num_queries: Any,
) -> None:
    client = api_client_for(patient.user)
    with django_assert_num_queries(RECOMMENDATIONS_LIST):
        assert client.get("/api/v1/recommendations/").json()["count"] == 1
    for days in (1, 2):
        evaluation_run(patient=patient, as_of=timezone.now() + timedelta(days=days))
    with django_assert_num_queries(RECOMMENDATIONS_LIST):
        assert client.get("/api/v1/recommendations/").json()["count"] == 3


# Pinned per database: on PostgreSQL the audit append is one call of audit_append() on a raw psycopg cursor (see
# clinaiops.audit.services), which Django does not count; on SQLite it is two counted queries (head, insert).
# A reading, inside a test's transaction: the user with the token's revocation and the patient (one query), the
# service's savepoint, INSERT … ON CONFLICT DO NOTHING RETURNING, the approval policy's marker (the row itself is
# cached: governance.services.approval_policy_current), the savepoint's release. Issue 13 measured 9.
READING_INGEST = {"postgresql": 5, "sqlite": 7}[connection.vendor]
READING_INGEST_LOW = READING_INGEST + 2  # a low reading also reads the window's readings and low-BP symptoms
RECOMMENDATIONS_LIST = {"postgresql": 3, "sqlite": 3}[connection.vendor]
