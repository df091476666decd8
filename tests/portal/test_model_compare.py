"""The models list and the monitoring pages have pinned query counts, and the monitoring ones stay put as drift
reports grow (issue 11),
and the comparison and trend charts read words, not codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client

from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion
from inference.monitoring.models import DriftReport
from inference.monitoring.services.drift_reports import drift_report_compute
from tests.portal.test_governance_actions import trained_model  # noqa: F401 - the fixture for this tree's features

Portal = Callable[[User], Client]


def test_models_list_query_count_is_pinned(
    deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Portal, django_assert_num_queries: Any
) -> None:
    client = portal_client_for(ml_engineer)
    with django_assert_num_queries(MODELS_LIST):
        page = client.get("/models/")
    assert page.status_code == 200
    assert "Roll back" in page.content.decode()  # ML engineers and safety officers may roll back


def test_monitoring_pages_query_counts_do_not_grow_with_reports(
    pending_recommendation: Recommendation,
    ml_engineer: User,
    portal_client_for: Portal,
    django_assert_num_queries: Any,
) -> None:
    client = portal_client_for(ml_engineer)
    drift_report_compute(actor=ml_engineer)
    with django_assert_num_queries(DRIFT_LIST):
        assert client.get("/monitoring/drift/").status_code == 200
    with django_assert_num_queries(OVERVIEW):
        assert client.get("/monitoring/").status_code == 200
    drift_report_compute(actor=ml_engineer)
    assert DriftReport.objects.count() == 2
    with django_assert_num_queries(DRIFT_LIST):
        page = client.get("/monitoring/drift/").content.decode()
    assert "chart-series" in page and "Drift over time" in page
    with django_assert_num_queries(OVERVIEW):
        overview = client.get("/monitoring/").content.decode()
    assert "Clinician override rate per day and version" in overview and "Proposals per day" in overview


def test_comparison_shows_two_different_versions_side_by_side(
    deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(ml_engineer)
    page = client.get(f"/models/compare/?a={deployed_model.pk}&b={deployed_model.pk}").content.decode()
    assert page.count(deployed_model.short_hash) >= 2
    assert "Expected calibration" not in page  # metric names are words from inference.labels
    assert "balanced_accuracy" not in page and "macro_auroc" not in page


# Pinned per database (see tests/portal/test_query_counts.py: on PostgreSQL the audit append is uncounted).
MODELS_LIST = {"postgresql": 5, "sqlite": 5}[connection.vendor]
DRIFT_LIST = {"postgresql": 6, "sqlite": 6}[connection.vendor]
OVERVIEW = {"postgresql": 11, "sqlite": 11}[connection.vendor]
