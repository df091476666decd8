"""The clinician pages: alerts, autonomy, targets, emergency access, and what the recommendation page says
(issue 7, defects 5–8 and 10)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, Patient
from clinaiops.care.services import alert_acknowledge, autonomy_pause
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.portal.views import worklist
from governance.services import approval_policy_revise
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make, readings_add
from tests.factories import PASSWORD, PatientFactory, UserFactory

# Acknowledging needs a disposition and a note (issue 11; tests/portal/test_worklist.py tests the refusals).
ACK = {"disposition": "contacted_patient", "note": "Called the patient; repeat reading normal"}


def _messages(response: object) -> str:
    return " ".join(str(m) for m in response.context["messages"])  # type: ignore[attr-defined]


# --- Alerts -------------------------------------------------------------------------------------------------


def test_clinician_acknowledges_a_safety_alert_in_the_portal(
    patient: Patient,
    clinician: User,
    unassigned_clinician: User,
    ml_engineer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    readings_add(patient, [(186, 112)])
    alert = Alert.objects.get(patient=patient)
    assert b"Hypertensive crisis" in portal_client_for(clinician).get("/alerts/").content

    assert portal_client_for(unassigned_clinician).post(f"/alerts/{alert.pk}/acknowledge/").status_code == 404
    assert portal_client_for(ml_engineer).post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert portal_client_for(clinician).get(f"/alerts/{alert.pk}/acknowledge/").status_code == 405
    alert.refresh_from_db()
    assert alert.status == "open"

    done = portal_client_for(clinician).post(f"/alerts/{alert.pk}/acknowledge/", ACK, follow=True)
    assert "Alert acknowledged." in _messages(done)
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", clinician)
    event = AuditEvent.objects.get(action="alert.acknowledged")
    assert event.actor == clinician
    assert b"No open alerts." in portal_client_for(clinician).get("/alerts/").content


def test_break_glass_alerts_are_security_alerts_for_the_safety_officer_not_the_clinical_inbox(
    patient: Patient,
    clinician: User,
    emergency_clinician: User,
    safety_officer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    alert = Alert.objects.get(kind="break_glass")
    assert alert.priority == "P1"
    for inbox in (clinician, emergency_clinician):
        page = portal_client_for(inbox).get("/alerts/").content
        assert b"Break-glass" not in page
        assert portal_client_for(inbox).post(f"/alerts/{alert.pk}/acknowledge/").status_code == 404

    page = portal_client_for(safety_officer).get("/alerts/").content.decode()
    assert "Open security alerts" in page
    assert 'class="badge badge-p1">P1' in page
    assert "badge-p0" not in page
    assert emergency_clinician.signature_name in page
    assert "Covering a P0 alert overnight" in page
    assert f"/audit/?object_type=patient&amp;object_id={patient.pk}" in page
    done = portal_client_for(safety_officer).post(
        f"/alerts/{alert.pk}/acknowledge/", {"disposition": "access_justified", "note": "Checked with the ward"}
    )
    assert done.status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", safety_officer)


def test_every_emergency_access_raises_its_own_security_alert(patient: Patient, emergency_clinician: User) -> None:
    from clinaiops.care.services import break_glass_open

    second = UserFactory(username="dr_second", role="clinician")
    break_glass_open(actor=second, patient_code=patient.code, reason="Second opinion on the crisis")
    alerts = Alert.objects.filter(kind="break_glass")
    assert sorted(a.break_glass_grant.user.username for a in alerts) == ["dr_elsewhere", "dr_second"]


def test_an_emergency_clinician_may_acknowledge_the_safety_alert_they_cover(
    patient: Patient, emergency_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(186, 112)])
    alert = Alert.objects.get(patient=patient, kind="hypertensive_crisis")
    assert portal_client_for(emergency_clinician).post(f"/alerts/{alert.pk}/acknowledge/", ACK).status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == emergency_clinician


# --- Autonomy and target ----------------------------------------------------------------------------------


def test_clinician_resumes_paused_autonomy(
    patient: Patient,
    clinician: User,
    unassigned_clinician: User,
    emergency_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    readings_add(patient, [(186, 112)])
    patient.refresh_from_db()
    assert patient.autonomy_paused
    page = portal_client_for(clinician).get(f"/patients/{patient.pk}/").content
    # While the crisis alert is open the page says to acknowledge it first instead of offering the button.
    assert b"Acknowledge the open safety alert below before resuming autonomy" in page
    assert b"Resume autonomy (I have" not in page
    assert b"Resume autonomy" not in portal_client_for(emergency_clinician).get(f"/patients/{patient.pk}/").content

    refused = portal_client_for(emergency_clinician).post(f"/patients/{patient.pk}/", {"action": "resume"}, follow=True)
    assert "stay with the patient's care team" in _messages(refused)
    patient.refresh_from_db()
    assert patient.autonomy_paused

    # Autonomy stays paused while the crisis alert is open (issue 10): acknowledged first, then resumed.
    still_open = portal_client_for(clinician).post(f"/patients/{patient.pk}/", {"action": "resume"}, follow=True)
    assert "acknowledge it before resuming autonomy" in _messages(still_open)
    alert_acknowledge(alert=Alert.objects.get(patient=patient, kind="hypertensive_crisis"), actor=clinician, **ACK)
    assert b"Resume autonomy (I have" in portal_client_for(clinician).get(f"/patients/{patient.pk}/").content
    resumed = portal_client_for(clinician).post(f"/patients/{patient.pk}/", {"action": "resume"}, follow=True)
    assert "Autonomy resumed." in _messages(resumed)
    patient.refresh_from_db()
    assert not patient.autonomy_paused
    assert AuditEvent.objects.get(action="autonomy.resumed", outcome="success").actor == clinician


def test_resume_is_refused_outside_the_care_team(
    patient: Patient, other_patient: Patient, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    from django.db import transaction

    with transaction.atomic():
        autonomy_pause(patient=other_patient, cause="test")
    assert portal_client_for(clinician).post(f"/patients/{other_patient.pk}/", {"action": "resume"}).status_code == 404
    other_patient.refresh_from_db()
    assert other_patient.autonomy_paused


def test_clinician_sets_the_bp_target_and_the_ledger_holds_only_digests(
    patient: Patient,
    clinician: User,
    emergency_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    client = portal_client_for(clinician)
    bad = client.post(f"/patients/{patient.pk}/", {"action": "target", "target_sbp": 125, "target_dbp": 130})
    assert b"The diastolic target must be lower than the systolic target." in bad.content
    ok = client.post(f"/patients/{patient.pk}/", {"action": "target", "target_sbp": 125, "target_dbp": 75})
    assert ok.status_code == 302
    patient.refresh_from_db()
    assert (patient.target_sbp, patient.target_dbp) == (125, 75)
    event = AuditEvent.objects.get(action="patient.target_set")
    assert event.actor == clinician
    # No value of the payload holds the targets; digests are hex, so a bare "125" may occur inside one by chance.
    assert all(str(value) not in {"125", "75"} for value in event.payload_data.values())
    assert not any(str(value).isdigit() for value in event.payload_data.values())
    assert event.payload_data["after_hmac"].startswith("hmac-sha256:")

    refused = portal_client_for(emergency_clinician).post(
        f"/patients/{patient.pk}/", {"action": "target", "target_sbp": 140, "target_dbp": 90}, follow=True
    )
    assert "targets stay with the patient's care team" in _messages(refused)
    patient.refresh_from_db()
    assert patient.target_sbp == 125


def test_the_bp_chart_draws_the_safety_lines_of_the_policy_in_force(
    patient: Patient, clinician: User, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(140, 90)] * 3)
    before = portal_client_for(clinician).get(f"/patients/{patient.pk}/").content.decode()
    assert "crisis SBP 180" in before
    assert "low DBP 60" in before
    approval_policy_revise(actor=safety_officer, changes={"crisis_sbp": 170, "hypotension_dbp": 55}, password=PASSWORD)
    after = portal_client_for(clinician).get(f"/patients/{patient.pk}/").content.decode()
    assert "crisis SBP 170" in after
    assert "low DBP 55" in after
    assert "crisis SBP 180" not in after


# --- Emergency access on the recommendation page (defect 5) -----------------------------------------------


def test_emergency_access_shows_the_banner_on_every_page_of_the_patient_and_cannot_sign(
    pending_recommendation: Recommendation,
    patient: Patient,
    emergency_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    client = portal_client_for(emergency_clinician)
    for url in (f"/patients/{patient.pk}/", f"/recommendations/{pending_recommendation.pk}/"):
        page = client.get(url).content.decode()
        assert "Emergency (break-glass) access</strong> to patient P-0001" in page, url
    page = client.get(f"/recommendations/{pending_recommendation.pk}/").content.decode()
    assert "Sign and deliver" not in page
    assert "Only a clinician on the patient's care team can sign this decision." in page

    refused = client.post(
        f"/recommendations/{pending_recommendation.pk}/",
        {"outcome": "accepted", "reason": "Looks right", "password": PASSWORD},
        follow=True,
    )
    assert "stay with the patient's care team" in _messages(refused)
    pending_recommendation.refresh_from_db()
    assert pending_recommendation.status == "pending_review"
    denied = AuditEvent.objects.get(action="review.decided")
    assert (denied.outcome, denied.payload_data["reason"]) == ("denied", "emergency_access_read_only")


def test_the_care_team_sees_no_emergency_banner(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(clinician).get(f"/recommendations/{pending_recommendation.pk}/").content
    assert b"Emergency (break-glass) access" not in page
    assert b"Sign and deliver" in page


# --- What the recommendation page says ---------------------------------------------------------------------


def test_the_recommendation_page_dates_the_reasons_and_the_current_autonomy(
    patient: Patient, clinician: User, deployed_model: ModelVersion, portal_client_for: Callable[[User], Client]
) -> None:
    from django.db import transaction

    from clinaiops.care.services import autonomy_resume

    with transaction.atomic():
        autonomy_pause(patient=patient, cause="test")
    rec = pending_recommendation_make(patient)
    autonomy_resume(actor=clinician, patient=patient)
    page = portal_client_for(clinician).get(f"/recommendations/{rec.pk}/").content.decode()
    assert "Autonomy is paused after a safety event." in page
    assert f"As tiered when proposed, {rec.created_at:%d %b %Y %H:%M} UTC" in page
    now_pattern = r"Autonomy now</dt><dd>active <span class=\"muted as-of\">\(as of \d\d \w{3} \d{4} \d\d:\d\d UTC\)"
    assert re.search(now_pattern, page)


def test_posting_to_a_decided_recommendation_says_who_decided_it_and_when(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(clinician)
    url = f"/recommendations/{pending_recommendation.pk}/"
    assert client.post(url, {"outcome": "accepted", "reason": "Titrate", "password": PASSWORD}).status_code == 302
    signature = Recommendation.objects.get(pk=pending_recommendation.pk).decision.signature

    again = client.post(url, {"outcome": "rejected", "reason": "Changed my mind", "password": PASSWORD}, follow=True)
    said = _messages(again)
    assert f"already decided (accepted) by Dr Assigned at {signature.signed_at:%d %b %Y %H:%M} UTC" in said
    assert again.redirect_chain == [(url, 302)]
    # An incomplete form on a decided recommendation says the same, instead of a silent re-render.
    empty = client.post(url, {}, follow=True)
    assert "already decided" in _messages(empty)
    assert Recommendation.objects.get(pk=pending_recommendation.pk).decision.outcome == "accepted"


# --- The queue ----------------------------------------------------------------------------------------------


def test_queue_pagination_labels_lead_where_they_say(
    patient: Patient,
    care_team: object,
    clinician: User,
    deployed_model: ModelVersion,
    portal_client_for: Callable[[User], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worklist, "QUEUE_PAGE_SIZE", 1)
    older = pending_recommendation_make(patient)
    newer_user = UserFactory(username="pat_new", role="patient")
    newer_patient = PatientFactory(user=newer_user, care_team=care_team, code="P-0009")
    newer = pending_recommendation_make(newer_patient)
    assert older.created_at < newer.created_at
    client = portal_client_for(clinician)

    first = client.get("/queue/").content.decode()
    assert "P-0001" in first  # equal risk: oldest first
    newer_link = re.search(r'<a href="(\?page=\d+)" rel="next">next →</a>', first)
    assert newer_link is not None
    second = client.get("/queue/" + newer_link.group(1)).content.decode()
    assert "P-0009" in second
    older_link = re.search(r'<a href="(\?page=\d+)" rel="prev">← previous</a>', second)
    assert older_link is not None
    assert "P-0001" in client.get("/queue/" + older_link.group(1)).content.decode()
