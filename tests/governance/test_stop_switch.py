"""The stop switch (issue 10; EU AI Act art. 14): a clinical safety officer stops the AI for everyone or one clinic
with one e-signed action, evaluations then use the rules alone and every proposal goes to review, work in flight
respects it, and a second signed action resumes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Alert, CareTeam, Patient
from clinaiops.core.errors import Conflict, InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import User
from clinaiops.loops import tasks as loop_tasks
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services import evaluation as evaluation_service
from clinaiops.loops.services.evaluation import evaluation_run
from governance.models import AIStop, SignatureMeaning
from governance.services import SignatureRefused
from governance.stop import ai_resume, ai_stop, ai_stop_in_force, ai_stop_verify
from inference.models import ModelVersion
from inference.monitoring.models import PredictionLog
from tests.conftest import audit_actions, readings_add

CONTROLLED = [(121, 77)] * 8  # enough readings at target: a "maintain", delivered on its own as feedback
NON_SAFETY_PERSONAS = ("clinician", "unassigned_clinician", "ml_engineer", "compliance_officer", "patient_user")


@pytest.fixture
def patient_user(patient: Patient) -> User:
    return patient.user


def _persona(request: pytest.FixtureRequest, name: str) -> User:
    user = request.getfixturevalue(name)
    assert isinstance(user, User)
    return user


def _stop_everyone(safety_officer: User, password: str) -> AIStop:
    return ai_stop(actor=safety_officer, password=password, scope="global", reason="Drift alarm on the new cuff")


# --- who may stop and resume -------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", NON_SAFETY_PERSONAS)
def test_only_a_clinical_safety_officer_can_stop_or_resume_the_ai(
    persona: str, request: pytest.FixtureRequest, safety_officer: User, password: str
) -> None:
    actor = _persona(request, persona)
    with pytest.raises(PermissionRefused):
        ai_stop(actor=actor, password=password, scope="global", reason="Not mine to stop")
    assert not AIStop.objects.exists()
    stop = _stop_everyone(safety_officer, password)
    with pytest.raises(PermissionRefused):
        ai_resume(actor=actor, password=password, stop_id=stop.pk, reason="Not mine to resume")
    stop.refresh_from_db()
    assert stop.in_force
    denied = AuditEvent.objects.filter(actor=actor, outcome="denied").values_list("action", flat=True)
    assert list(denied) == ["ai.stopped", "ai.resumed"]


@pytest.mark.parametrize("persona", NON_SAFETY_PERSONAS)
def test_the_stop_switch_pages_refuse_every_other_persona(
    persona: str,
    request: pytest.FixtureRequest,
    safety_officer: User,
    password: str,
    portal_client_for: Callable[[User], Client],
) -> None:
    stop = _stop_everyone(safety_officer, password)
    client = portal_client_for(_persona(request, persona))
    assert client.get(reverse("portal:ai-stop")).status_code == 403
    posted = client.post(reverse("portal:ai-stop"), {"scope": "global", "reason": "x", "password": password})
    assert posted.status_code == 403
    resumed = client.post(reverse("portal:ai-resume", args=[stop.pk]), {"reason": "x", "password": password})
    assert resumed.status_code == 403
    stop.refresh_from_db()
    assert stop.in_force
    assert AIStop.objects.count() == 1


def test_a_wrong_password_signs_nothing_and_is_audited(safety_officer: User, password: str) -> None:
    with pytest.raises(SignatureRefused):
        ai_stop(actor=safety_officer, password="not-the-password", scope="global", reason="Drift")
    assert not AIStop.objects.exists()
    refused = AuditEvent.objects.get(actor=safety_officer, action="signature.refused")
    assert (refused.outcome, refused.object_type) == ("denied", "ai_stop")

    stop = _stop_everyone(safety_officer, password)
    with pytest.raises(SignatureRefused):
        ai_resume(actor=safety_officer, password="wrong", stop_id=stop.pk, reason="Fixed")
    stop.refresh_from_db()
    assert stop.in_force
    assert AuditEvent.objects.filter(actor=safety_officer, action="signature.refused").count() == 2


def test_the_portal_shows_a_wrong_password_on_the_form_and_stops_nothing(
    safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(safety_officer)
    response = client.post(reverse("portal:ai-stop"), {"scope": "global", "reason": "Drift", "password": "nope"})
    assert response.status_code == 200
    assert b"The password did not match" in response.content
    assert not AIStop.objects.exists()


def test_a_stop_and_its_resume_are_signed_audited_and_the_reasons_encrypted(
    safety_officer: User, care_team: CareTeam, password: str
) -> None:
    stop = ai_stop(
        actor=safety_officer, password=password, scope="care_team", care_team=care_team, reason="Cuff recall at A"
    )
    assert stop.stop_signature.meaning == SignatureMeaning.STOPPED
    assert stop.stop_signature.printed_name == safety_officer.signature_name
    assert audit_actions(object_type="ai_stop") == ["ai.stopped"]
    resumed = ai_resume(actor=safety_officer, password=password, stop_id=stop.pk, reason="Cuffs replaced")
    assert resumed.resume_signature is not None
    assert resumed.resume_signature.meaning == SignatureMeaning.RESUMED
    assert audit_actions(object_type="ai_stop") == ["ai.stopped", "ai.resumed"]
    stored = AIStop.objects.select_related("stop_signature", "resume_signature").get(pk=stop.pk)
    assert ai_stop_verify(stored)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason, resume_reason FROM governance_aistop WHERE id = %s", [stop.pk])
        raw = cursor.fetchone()
    assert "Cuff recall" not in raw[0] and "replaced" not in raw[1]  # envelopes at rest
    # The free text never enters the ledger, only its keyed digest.
    payloads = "".join(AuditEvent.objects.filter(object_type="ai_stop").values_list("payload", flat=True))
    assert "Cuff" not in payloads and "reason_hmac" in payloads
    assert ledger_verify().ok
    # A changed reason no longer matches its signature.
    AIStop.objects.filter(pk=stop.pk).update(reason="Something else")
    assert not ai_stop_verify(AIStop.objects.select_related("stop_signature", "resume_signature").get(pk=stop.pk))


def test_a_scope_already_stopped_cannot_be_stopped_again_and_a_stop_is_resumed_once(
    safety_officer: User, care_team: CareTeam, password: str
) -> None:
    stop = _stop_everyone(safety_officer, password)
    with pytest.raises(Conflict):
        _stop_everyone(safety_officer, password)
    # A clinic may still be stopped on its own under a global stop: it outlives the global one's resume.
    ai_stop(actor=safety_officer, password=password, scope="care_team", care_team=care_team, reason="Local issue")
    ai_resume(actor=safety_officer, password=password, stop_id=stop.pk, reason="Drift explained")
    with pytest.raises(InvalidTransition):
        ai_resume(actor=safety_officer, password=password, stop_id=stop.pk, reason="Again")
    assert AuditEvent.objects.filter(action="ai.resumed", outcome="denied").count() == 1
    assert ai_stop_in_force(care_team=care_team) is not None


def test_a_stop_needs_a_reason_and_a_clinic_for_the_clinic_scope(safety_officer: User, password: str) -> None:
    with pytest.raises(ValidationFailed):
        ai_stop(actor=safety_officer, password=password, scope="global", reason="   ")
    with pytest.raises(ValidationFailed):
        ai_stop(actor=safety_officer, password=password, scope="care_team", reason="Which one?")
    with pytest.raises(ValidationFailed):
        ai_stop(actor=safety_officer, password=password, scope="everything", reason="Typo")
    assert not AIStop.objects.exists()


# --- what a stop does to evaluations -----------------------------------------------------------------------------


def _assert_rules_only_for_review(rec: Recommendation | None) -> Recommendation:
    assert rec is not None
    assert (rec.status, rec.tier, rec.arm) == ("pending_review", "major", "rules_only")
    assert rec.tier_reasons == ["ai_stopped"]
    assert (rec.action, rec.to_step, rec.probabilities, rec.top_factors) == ("maintain", rec.from_step, {}, [])
    assert not PredictionLog.objects.filter(recommendation_id=rec.pk).exists()
    queued = AuditEvent.objects.get(action="recommendation.queued", object_id=str(rec.pk))
    assert queued.payload_data["system_reason"] == "ai_stopped"
    return rec


def test_while_stopped_an_evaluation_uses_the_rules_only_and_the_patient_gets_no_ai_advice(
    patient: Patient,
    deployed_model: ModelVersion,
    safety_officer: User,
    password: str,
    api_client_for: Callable[[User], APIClient],
) -> None:
    readings_add(patient, CONTROLLED)
    stop = _stop_everyone(safety_officer, password)

    rec = _assert_rules_only_for_review(evaluation_run(patient=patient))
    created = AuditEvent.objects.get(action="recommendation.created", object_id=str(rec.pk))
    assert created.payload_data["fallback"] == "ai_stopped"
    assert created.payload_data["ai_stop_id"] == stop.pk
    # The patient is told the care team is reviewing; there is nothing to do, and no model output behind it.
    (seen,) = api_client_for(patient.user).get("/api/v1/recommendations/").json()["results"]
    assert (seen["id"], seen["status"], seen["action"], seen["to_step"]) == (rec.pk, "pending_review", None, None)
    assert seen["proposal"]["confidence"] == 0.0


def test_while_stopped_the_safety_rules_still_open_a_crisis_alert(
    patient: Patient, deployed_model: ModelVersion, safety_officer: User, password: str
) -> None:
    _stop_everyone(safety_officer, password)
    readings_add(patient, [(186, 122)])
    assert Alert.objects.filter(patient=patient, priority="P0").exists()


def test_a_clinic_stop_holds_for_that_clinic_only_and_a_global_one_for_everyone(
    patient: Patient,
    other_patient: Patient,
    care_team: CareTeam,
    deployed_model: ModelVersion,
    safety_officer: User,
    password: str,
) -> None:
    readings_add(patient, CONTROLLED)
    readings_add(other_patient, CONTROLLED)
    ai_stop(actor=safety_officer, password=password, scope="care_team", care_team=care_team, reason="Clinic A only")

    _assert_rules_only_for_review(evaluation_run(patient=patient))
    elsewhere = evaluation_run(patient=other_patient)
    assert elsewhere is not None and elsewhere.arm != "rules_only"
    assert (elsewhere.status, elsewhere.tier) == ("delivered", "feedback")  # the other clinic keeps its AI

    _stop_everyone(safety_officer, password)
    tomorrow = timezone.now() + timedelta(days=1)
    _assert_rules_only_for_review(evaluation_run(patient=other_patient, as_of=tomorrow))


def test_an_evaluation_enqueued_before_the_stop_respects_it(
    patient: Patient, deployed_model: ModelVersion, safety_officer: User, password: str
) -> None:
    readings_add(patient, CONTROLLED)
    enqueued_at = timezone.now()  # the scheduler's message carries its time; the worker takes it later
    _stop_everyone(safety_officer, password)

    rec_id = loop_tasks.evaluation_run_task(patient.pk, enqueued_at.isoformat())
    _assert_rules_only_for_review(Recommendation.objects.get(pk=rec_id))


def test_a_stop_signed_while_the_model_is_scoring_holds_for_that_evaluation(
    patient: Patient, deployed_model: ModelVersion, safety_officer: User, password: str, monkeypatch: Any
) -> None:
    """The stop lands after the evaluation's first check (the model already ran): the check under the patient's
    lock, right before the recommendation is stored, still catches it."""
    readings_add(patient, CONTROLLED)
    real_score = evaluation_service.model_score
    scored: list[str] = []

    def score_then_stop(version: ModelVersion, features: dict[str, float]) -> dict[str, float]:
        probabilities = real_score(version, features)
        if not scored:
            scored.append(version.sha256)
            _stop_everyone(safety_officer, password)
        return probabilities

    monkeypatch.setattr(evaluation_service, "model_score", score_then_stop)
    rec = evaluation_run(patient=patient)
    assert scored == [deployed_model.sha256]  # the model did run: the stop came in mid-flight
    _assert_rules_only_for_review(rec)


def test_resuming_restores_autonomy_within_bounds(
    patient: Patient,
    deployed_model: ModelVersion,
    safety_officer: User,
    password: str,
    api_client_for: Callable[[User], APIClient],
) -> None:
    readings_add(patient, CONTROLLED)
    stop = _stop_everyone(safety_officer, password)
    first = _assert_rules_only_for_review(evaluation_run(patient=patient))

    ai_resume(actor=safety_officer, password=password, stop_id=stop.pk, reason="Drift explained, model fine")
    assert ai_stop_in_force(patient=patient) is None
    again = evaluation_run(patient=patient, as_of=timezone.now() + timedelta(days=1))
    assert again is not None
    assert (again.status, again.tier, again.arm) == ("delivered", "feedback", "production")
    visible = api_client_for(patient.user).get("/api/v1/recommendations/").json()["results"]
    assert [(item["id"], item["status"]) for item in visible] == [(again.pk, "delivered"), (first.pk, "superseded")]


def test_the_in_force_check_is_one_query(patient: Patient, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        assert ai_stop_in_force(patient=patient) is None


# --- the portal --------------------------------------------------------------------------------------------------


def test_the_safety_officer_stops_and_resumes_in_the_portal_and_every_staff_page_shows_the_banner(
    safety_officer: User,
    clinician: User,
    ml_engineer: User,
    care_team: CareTeam,
    password: str,
    portal_client_for: Callable[[User], Client],
) -> None:
    officer = portal_client_for(safety_officer)
    page = officer.get(reverse("portal:ai-stop"))
    assert page.status_code == 200 and b"The AI has never been stopped" in page.content

    stopped = officer.post(
        reverse("portal:ai-stop"),
        {"scope": "care_team", "care_team": care_team.pk, "reason": "Cuff recall", "password": password},
    )
    assert stopped.status_code == 302
    stop = AIStop.objects.get()
    assert stop.care_team == care_team

    for user, url in ((clinician, "portal:queue"), (ml_engineer, "portal:models"), (safety_officer, "portal:policy")):
        body = portal_client_for(user).get(reverse(url)).content.decode()
        assert "data-ai-stop-banner" in body and "AI stopped for the clinic Clinic A" in body
    assert "data-ai-stop-banner" not in Client().get(reverse("portal:login")).content.decode()

    history = officer.get(reverse("portal:ai-stop")).content.decode()
    assert "Cuff recall" in history and safety_officer.signature_name in history

    resumed = officer.post(reverse("portal:ai-resume", args=[stop.pk]), {"reason": "Replaced", "password": password})
    assert resumed.status_code == 302
    stop.refresh_from_db()
    assert not stop.in_force
    assert "data-ai-stop-banner" not in portal_client_for(clinician).get(reverse("portal:queue")).content.decode()


def test_resuming_a_stop_that_does_not_exist_answers_404(
    safety_officer: User, password: str, portal_client_for: Callable[[User], Client]
) -> None:
    response = portal_client_for(safety_officer).post(
        reverse("portal:ai-resume", args=[999]), {"reason": "x", "password": password}
    )
    assert response.status_code == 404


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need a server database")
def test_a_stop_signed_while_an_evaluation_is_storing_waits_for_it_so_nothing_lands_after_the_stop_without_it(
    transactional_db: None,
    patient: Patient,
    deployed_model: ModelVersion,
    safety_officer: User,
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from django.db import connections

    readings_add(patient, CONTROLLED)
    storing, release = threading.Event(), threading.Event()
    original = evaluation_service._recommendation_create

    def slow_store(**kwargs: Any) -> Recommendation:
        storing.set()  # past its last look at the stop, inside its transaction
        assert release.wait(10)
        return original(**kwargs)

    monkeypatch.setattr(evaluation_service, "_recommendation_create", slow_store)
    stopped: list[AIStop] = []

    def evaluate() -> None:
        try:
            evaluation_run(patient=Patient.objects.get(pk=patient.pk))
        finally:
            connections.close_all()

    def stop() -> None:
        try:
            stopped.append(_stop_everyone(safety_officer, password))
        finally:
            connections.close_all()

    evaluating = threading.Thread(target=evaluate)
    evaluating.start()
    assert storing.wait(30)
    stopping = threading.Thread(target=stop)
    stopping.start()
    stopping.join(1.0)
    assert stopping.is_alive(), "the stop must wait for the evaluation in flight"
    release.set()
    evaluating.join(30)
    stopping.join(30)
    assert stopped and ai_stop_in_force(patient=patient) is not None
    rec = Recommendation.objects.get(patient=patient)
    events = {e.action: e.seq for e in AuditEvent.objects.filter(action__in=["recommendation.created", "ai.stopped"])}
    assert events["recommendation.created"] < events["ai.stopped"], "the evaluation committed before the stop"
    assert "ai_stopped" not in rec.tier_reasons
    # After the stop, evaluations use the rules alone.
    monkeypatch.setattr(evaluation_service, "_recommendation_create", original)
    later = evaluation_run(patient=Patient.objects.get(pk=patient.pk), as_of=timezone.now() + timedelta(days=1))
    assert later is not None and later.tier_reasons == ["ai_stopped"]
