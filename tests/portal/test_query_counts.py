"""Query counts of the clinician's hot pages are pinned (STYLE.md, as Zulip does): a change that adds a query
per row, or a view that starts querying on its own, shows up here. The counts include the session, the user,
the audit events the page writes (every staff read of a patient record is audited) and the savepoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from tests.conftest import pending_recommendation_make, readings_add
from tests.factories import PatientFactory, UserFactory


def _more_pending(care_team: CareTeam, n: int) -> None:
    for i in range(n):
        user = UserFactory(username=f"pat_q{i}", role="patient")
        pending_recommendation_make(PatientFactory(user=user, care_team=care_team, code=f"P-Q{i:03d}"))


def test_review_queue_queries_do_not_grow_with_the_queue(
    pending_recommendation: Recommendation,
    care_team: CareTeam,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    client = portal_client_for(clinician)
    with django_assert_num_queries(QUEUE):
        assert client.get("/queue/").status_code == 200
    _more_pending(care_team, 3)
    with django_assert_num_queries(QUEUE):
        page = client.get("/queue/")
    assert page.content.count(b">Review</a>") == 4


def test_recommendation_detail_query_count(
    pending_recommendation: Recommendation,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    client = portal_client_for(clinician)
    with django_assert_num_queries(RECOMMENDATION_DETAIL):
        assert client.get(f"/recommendations/{pending_recommendation.pk}/").status_code == 200


def test_patient_page_query_count(
    pending_recommendation: Recommendation,
    patient: Patient,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    readings_add(patient, [(186, 112), (150, 95)])  # an alert and more readings do not add queries
    client = portal_client_for(clinician)
    with django_assert_num_queries(PATIENT_PAGE):
        assert client.get(f"/patients/{patient.pk}/").status_code == 200


# Pinned per database: on PostgreSQL the audit append is one call of audit_append() on a raw psycopg cursor (see
# clinaiops.audit.services), which Django does not count; on SQLite it is two counted queries (head, insert).
# Each page includes one query for the stop-switch banner (clinaiops.portal.templatetags.ai_stop).
# The worklist (issue 11) adds the overdue follow-ups' four queries; its own pins are in tests/portal/test_worklist.py.
QUEUE = {"postgresql": 8, "sqlite": 8}[connection.vendor]
# The decision screen (issue 11) adds symptoms, doses, the regimen history and the signature attempts left.
RECOMMENDATION_DETAIL = {"postgresql": 14, "sqlite": 16}[connection.vendor]
# Issue 11 added the care-plan panel (goals, notes, the follow-up): five queries, however many goals or notes.
PATIENT_PAGE = {"postgresql": 19, "sqlite": 21}[connection.vendor]
