"""An evaluation's query count is pinned (STYLE.md: hot paths pin theirs): beat runs one per patient per day, and
issue 13 asks that a reading can trigger one. Counted on PostgreSQL inside the test's transaction, so the
evaluation's own transaction is a savepoint pair; the audit appends are one uncounted call each on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.services.evaluation import evaluation_run
from inference.models import ModelVersion
from tests.conftest import readings_add


def test_a_first_evaluation_query_count(
    patient: Patient, deployed_model: ModelVersion, django_assert_num_queries: Any
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    with django_assert_num_queries(EVALUATION):
        rec = evaluation_run(patient=patient)
    assert rec is not None and rec.arm == "production"


def test_an_evaluation_replacing_yesterdays_costs_the_supersede_only(
    patient: Patient, deployed_model: ModelVersion, django_assert_num_queries: Any
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    yesterday = evaluation_run(patient=patient, as_of=timezone.now() - timedelta(days=1))
    assert yesterday is not None and yesterday.status == RecommendationStatus.DELIVERED
    with django_assert_num_queries(EVALUATION + SUPERSEDE_ONE):
        rec = evaluation_run(patient=patient)
    assert rec is not None
    assert Recommendation.objects.get(pk=yesterday.pk).status == RecommendationStatus.SUPERSEDED


def test_a_repeat_costs_no_scoring_and_few_queries(
    patient: Patient, deployed_model: ModelVersion, django_assert_num_queries: Any
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    first = evaluation_run(patient=patient)
    # The savepoint pair, the patient's lock, the stop's barrier, the repeat: found before any scoring. (It was one
    # unlocked query before, at the price of one more for every evaluation that is not a repeat.)
    with django_assert_num_queries(REPEAT):
        assert evaluation_run(patient=patient) == first


# PostgreSQL, in a test transaction: the savepoint pair; the patient row read with its lock; the stop's barrier
# (PostgreSQL only); today's evaluation and a signed decision awaiting the patient (one query); the serving pointers
# with their integrity holds; the feature window (the readings, with the dose counts and the last regimen change
# riding on them as scalar subqueries: one query where it was three); a stop in force (before scoring, and again
# before storing); the approval policy's marker; the patient's bounds; an open safety alert; the open
# recommendations to supersede; the recommendation and its prediction log. Before issue 13's work: 24 (26 with a
# supersede). SQLite counts each audit append as two queries and has no barrier.
EVALUATION = {"postgresql": 15, "sqlite": 18}[connection.vendor]
# Was it decided (never superseded if so)? The conditional update; its audit event (two queries on SQLite).
SUPERSEDE_ONE = {"postgresql": 2, "sqlite": 4}[connection.vendor]
REPEAT = {"postgresql": 5, "sqlite": 4}[connection.vendor]
