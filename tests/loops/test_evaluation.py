"""Evaluations, and the three ways "Evaluate now" used to hurt clinicians (issue 7, defects 1–3)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation, Trigger
from clinaiops.loops.services.evaluation import EvaluationRefused, evaluate_on_demand, evaluation_run
from clinaiops.loops.services.review import review_decide
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD


def _evaluate_now(client: Client, patient: Patient) -> str:
    """Click "Evaluate now" and return the messages of the page it leads to."""
    response = client.post(f"/patients/{patient.pk}/", {"action": "evaluate"}, follow=True)
    assert response.status_code == 200
    return " ".join(str(m) for m in response.context["messages"])


def test_evaluate_now_makes_a_recommendation_for_the_care_team(
    patient: Patient, clinician: User, deployed_model: ModelVersion, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    said = _evaluate_now(portal_client_for(clinician), patient)
    rec = Recommendation.objects.get(patient=patient)
    assert (rec.trigger, rec.action) == (Trigger.ON_DEMAND, "increase")
    assert said.startswith("Evaluated: increase")
    created = AuditEvent.objects.get(action="recommendation.created", object_id=str(rec.pk))
    assert created.actor == clinician


def test_evaluate_now_is_refused_to_other_people(
    patient: Patient,
    unassigned_clinician: User,
    ml_engineer: User,
    deployed_model: ModelVersion,
    portal_client_for: Callable[[User], Client],
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    url, body = f"/patients/{patient.pk}/", {"action": "evaluate"}
    assert portal_client_for(unassigned_clinician).post(url, body).status_code == 404
    assert portal_client_for(ml_engineer).post(url, body).status_code == 403
    assert not Recommendation.objects.exists()


def test_evaluate_now_never_supersedes_a_signed_decision_and_the_patient_can_still_act_on_it(
    pending_recommendation: Recommendation,
    patient: Patient,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    api_client_for: Callable[[User], APIClient],
) -> None:
    portal = portal_client_for(clinician)
    signed = portal.post(
        f"/recommendations/{pending_recommendation.pk}/",
        {"outcome": "accepted", "reason": "Uncontrolled; titrate.", "password": PASSWORD},
    )
    assert signed.status_code == 302

    said = _evaluate_now(portal, patient)

    assert "waiting for the patient's response" in said
    pending_recommendation.refresh_from_db()
    assert pending_recommendation.status == "delivered"
    assert Recommendation.objects.filter(patient=patient).count() == 1
    assert "recommendation.superseded" not in audit_actions()
    refused = AuditEvent.objects.get(action="evaluation.refused")
    assert (refused.actor, refused.outcome) == (clinician, "denied")
    acted = api_client_for(patient.user).post(
        f"/api/v1/recommendations/{pending_recommendation.pk}/respond/", {"response": "acknowledge"}, format="json"
    )
    assert acted.status_code == 200
    patient.refresh_from_db()
    assert patient.current_step == pending_recommendation.final_step


def test_once_the_patient_has_responded_evaluate_now_works_again(
    pending_recommendation: Recommendation, patient: Patient, clinician: User, password: str
) -> None:
    from clinaiops.loops.services.respond import recommendation_respond

    review_decide(
        actor=clinician, recommendation=pending_recommendation, outcome="rejected", reason="Recheck", password=password
    )
    with pytest.raises(EvaluationRefused):
        evaluate_on_demand(actor=clinician, patient=patient)
    recommendation_respond(actor=patient.user, recommendation=pending_recommendation, response="acknowledge")
    outcome = evaluate_on_demand(actor=clinician, patient=patient)
    assert outcome.created
    pending_recommendation.refresh_from_db()
    assert pending_recommendation.status == "acknowledged"


def test_a_scheduled_evaluation_while_a_decision_awaits_the_patient_is_held_for_review(
    pending_recommendation: Recommendation, patient: Patient, clinician: User, password: str
) -> None:
    review_decide(
        actor=clinician, recommendation=pending_recommendation, outcome="accepted", reason="Go", password=password
    )
    readings_add(patient, [(121, 77)] * 8)  # would be a confident minor "maintain", delivered at once, on its own
    held = evaluation_run(patient=patient, as_of=timezone.now() + timedelta(days=1))

    assert held is not None
    assert (held.status, held.tier) == ("pending_review", "major")
    assert "decision_awaiting_response" in held.tier_reasons
    pending_recommendation.refresh_from_db()
    assert pending_recommendation.status == "delivered"  # the signed decision stands, untouched


def test_a_double_click_on_evaluate_now_makes_one_recommendation(
    patient: Patient, clinician: User, deployed_model: ModelVersion, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    portal = portal_client_for(clinician)
    first = _evaluate_now(portal, patient)
    second = _evaluate_now(portal, patient)
    assert first.startswith("Evaluated")
    assert second.startswith("Already evaluated moments ago")
    assert Recommendation.objects.filter(patient=patient).count() == 1
    assert audit_actions().count("recommendation.created") == 1


def test_a_reading_after_an_evaluation_allows_another_one_at_once(
    patient: Patient, clinician: User, deployed_model: ModelVersion
) -> None:
    readings_add(patient, [(150, 92)] * 8, end=timezone.now() - timedelta(minutes=5))
    first = evaluate_on_demand(actor=clinician, patient=patient)
    readings_add(patient, [(152, 93)])
    second = evaluate_on_demand(actor=clinician, patient=patient)
    assert first.created and second.created
    assert first.recommendation is not None and second.recommendation is not None
    first.recommendation.refresh_from_db()
    assert first.recommendation.status == "superseded"  # unsigned, so the newer proposal replaces it


def test_evaluate_now_under_emergency_access_is_refused_with_a_message(
    patient: Patient,
    emergency_clinician: User,
    deployed_model: ModelVersion,
    portal_client_for: Callable[[User], Client],
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    response = portal_client_for(emergency_clinician).post(
        f"/patients/{patient.pk}/", {"action": "evaluate"}, follow=True
    )
    assert response.status_code == 200
    assert "stay with the patient's care team" in " ".join(str(m) for m in response.context["messages"])
    assert not Recommendation.objects.exists()
    denied = AuditEvent.objects.get(action="evaluation.refused")
    assert (denied.actor, denied.payload_data["reason"]) == (emergency_clinician, "emergency_access_read_only")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent requests need a server database")
def test_two_concurrent_clicks_on_evaluate_now_make_one_recommendation(
    transactional_db: None, patient: Patient, clinician: User, deployed_model: ModelVersion
) -> None:
    readings_add(patient, [(150, 92)] * 8)
    start = threading.Barrier(2)
    outcomes: list[bool] = []

    def click() -> None:
        try:
            start.wait()
            outcomes.append(evaluate_on_demand(actor=clinician, patient=Patient.objects.get(pk=patient.pk)).created)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True]
    assert Recommendation.objects.filter(patient=patient).count() == 1
