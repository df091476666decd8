"""The care plan and the visit summary in the portal, per persona."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.care.services import dose_log_store, regimen_change
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.respond import recommendation_respond
from clinaiops.loops.services.review import review_decide
from clinaiops.partnership.models import CareNote, FollowUpPlan, LifestyleGoal
from clinaiops.partnership.services import care_note_write, goal_checkin_record, lifestyle_goal_set
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
ClientFor = Callable[[User], Client]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_care_plan_is_the_care_teams_and_refused_to_others(
    patient: Patient, clinician: User, unassigned_clinician: User, ml_engineer: User, portal_client_for: ClientFor
) -> None:
    url = f"/patients/{patient.pk}/care-plan/"
    page = portal_client_for(clinician).get(url)
    assert page.status_code == 200
    assert b"Next follow-up" in page.content and b"Shared goals" in page.content
    assert portal_client_for(unassigned_clinician).get(url).status_code == 404
    assert portal_client_for(ml_engineer).get(url).status_code == 403
    assert portal_client_for(patient.user).get(url).status_code == 403
    assert portal_client_for(unassigned_clinician).post(url, {"action": "note", "body": "x"}).status_code == 404
    assert portal_client_for(patient.user).post(url, {"action": "note", "body": "x"}).status_code == 403
    assert not CareNote.objects.exists()
    assert "patient.viewed" in audit_actions(actor=clinician)


def test_clinician_sets_a_goal_writes_a_note_and_overrides_the_follow_up(
    patient: Patient, clinician: User, portal_client_for: ClientFor
) -> None:
    client = portal_client_for(clinician)
    url = f"/patients/{patient.pk}/care-plan/"
    assert client.post(url, {"action": "goal", "kind": "activity", "target_value": "150"}).status_code == 302
    assert client.post(url, {"action": "note", "body": "Keep it up", "visible_to_patient": "on"}).status_code == 302
    due = timezone.localdate() + timedelta(days=14)
    response = client.post(url, {"action": "followup_override", "due_on": due.isoformat(), "reason": "After the trip"})
    assert response.status_code == 302
    assert LifestyleGoal.objects.get().kind == "activity"
    assert CareNote.objects.get().visible_to_patient
    assert FollowUpPlan.objects.get().override_due_on == due
    page = client.get(url).content.decode()
    assert "Physical activity" in page and "150 minutes a week" in page and "Keep it up" in page
    assert "Set by Dr Assigned: After the trip" in page
    assert {"goal.set", "note.written", "followup.overridden"} <= set(audit_actions(actor=clinician))
    # The patient page shows the care plan section.
    patient_page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Care plan" in patient_page and due.strftime("%-d %b %Y") in patient_page


@pytest.mark.parametrize(
    ("data", "field_message"),
    [
        ({"action": "goal", "kind": "sleep", "target_value": "30"}, "For sleep, enter 4 to 12 hours a night."),
        ({"action": "goal", "kind": "sleep", "target_value": "lots"}, "Enter a number."),
        ({"action": "note", "body": ""}, "This field is required."),
        ({"action": "followup_override", "due_on": "2020-01-01", "reason": "old"}, "Choose today or a later date."),
        ({"action": "followup_override", "due_on": "2099-02-30", "reason": "bad date"}, "Enter a valid date."),
    ],
)
def test_bad_input_gets_a_field_error_and_nothing_is_stored(
    patient: Patient, clinician: User, portal_client_for: ClientFor, data: dict[str, str], field_message: str
) -> None:
    response = portal_client_for(clinician).post(f"/patients/{patient.pk}/care-plan/", data)
    assert response.status_code == 400
    assert field_message in response.content.decode()
    assert not LifestyleGoal.objects.exists() and not CareNote.objects.exists() and not FollowUpPlan.objects.exists()


def test_visit_summary_refuses_a_bad_period_and_other_teams(
    patient: Patient, clinician: User, unassigned_clinician: User, portal_client_for: ClientFor
) -> None:
    url = f"/patients/{patient.pk}/visit-summary/"
    bad = portal_client_for(clinician).get(url, {"days": "9999"})
    assert bad.status_code == 400 and b"The period must be 7 to 365 days." in bad.content
    assert portal_client_for(clinician).get(url, {"copy": "raw"}).status_code == 400
    assert portal_client_for(unassigned_clinician).get(url).status_code == 404
    assert portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/visit-summary.pdf").status_code == 404


def _history(patient: Patient, clinician: User) -> None:
    """Readings (one a crisis), doses, a clinician's regimen change, goals and notes: no model needed."""
    readings_add(patient, [(150, 92), (146, 90), (141, 88), (128, 79), (125, 78), (122, 76)] * 6, hours=30)
    readings_add(patient, [(126, 78), (183, 104), (124, 77)], hours=5)  # a crisis: a P0 alert
    today = timezone.localdate()
    for day in range(20):
        dose_log_store(patient=patient, day=today - timedelta(days=day), taken=day % 6 != 0)
    regimen_change(patient=patient, to_step=3, actor=clinician, cause="clinician:visit", at=timezone.now())
    lifestyle_goal_set(actor=clinician, patient=patient, kind="sodium", target_value="1500")
    lifestyle_goal_set(actor=clinician, patient=patient, kind="adherence", target_value="90")
    lifestyle_goal_set(actor=clinician, patient=patient, kind="activity", target_value="150")
    goal_checkin_record(actor=patient.user, patient=patient, kind="activity", day=today, value="40")
    care_note_write(actor=clinician, patient=patient, body="Cut down on salty snacks.", visible_to_patient=True)
    care_note_write(actor=clinician, patient=patient, body="Consider ABPM for white coat.", visible_to_patient=False)


def _pdf_to_png(pdf: bytes, name: str, tmp_path: Path) -> Path:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / name
    for page in (1, 2):
        command = ["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(source)]
        subprocess.run([*command, f"{target}-{page}"], check=True)
    return Path(f"{target}-1.png")


def _viewed(clinician: User) -> list[str]:
    events = AuditEvent.objects.filter(action="patient.viewed", actor=clinician)
    return [e.payload_data["view"] for e in events]


def test_visit_summary_clinician_and_patient_copies_page_and_pdf(
    patient: Patient, clinician: User, portal_client_for: ClientFor, tmp_path: Path
) -> None:
    _history(patient, clinician)
    client = portal_client_for(clinician)
    url = f"/patients/{patient.pk}/visit-summary/"

    page = client.get(url).content.decode()
    assert "Visit summary" in page and "Printed" in page and timezone.localdate().strftime("%-d %b %Y") in page
    assert "<form" not in page  # a print view, not an editing page
    assert "Time in range" in page and "nocturnal dip" in page
    assert "Clinician: Dr Assigned" in page and "1 decided by a clinician, 0 by the AI" in page
    assert "Hypertensive crisis" in page
    assert "<svg" in page and "Week by week" in page  # the chart and its text alternative
    assert "Salt (sodium)" in page and "No data yet" in page and "Next follow-up" in page
    assert "Recent safety alert" not in page or "1 week" in page
    assert "Consider ABPM" not in page and "salty snacks" not in page  # notes are not in the clinician's summary

    mine = client.get(url, {"copy": "patient"}).content.decode()
    assert "Your blood pressure care" in mine and "<form" not in mine
    assert "Cut down on salty snacks." in mine and "Consider ABPM" not in mine
    assert "Decided by your care team (Dr Assigned)" in mine
    assert "a very high reading; your care team was told at once" in mine
    for internal in ("onfidence", "SHAP", "tier", "major", "minor", "model", "hypertensive_crisis", "→", "SD"):
        assert internal not in mine, internal
    assert {"visit_summary_clinician", "visit_summary_patient"} <= set(_viewed(clinician))

    for copy in ("clinician", "patient"):
        response = client.get(f"/patients/{patient.pk}/visit-summary.pdf", {"copy": copy})
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        png = _pdf_to_png(response.content, f"visit-summary-{copy}", tmp_path)
        assert png.stat().st_size > 10_000
    assert {"visit_summary_pdf_clinician", "visit_summary_pdf_patient"} <= set(_viewed(clinician))


def test_visit_summary_names_who_decided_each_ai_recommendation(
    patient: Patient, clinician: User, deployed_model: ModelVersion, portal_client_for: ClientFor
) -> None:
    readings_add(patient, [(168, 99)] * 3)  # too few recent readings for autonomy → a major proposal
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.tier == "major"
    review_decide(
        actor=clinician, recommendation=rec, outcome="accepted", reason="Uncontrolled; titrate.", password=PASSWORD
    )
    rec.refresh_from_db()
    recommendation_respond(actor=patient.user, recommendation=rec, response="acknowledge")
    client = portal_client_for(clinician)
    page = client.get(f"/patients/{patient.pk}/visit-summary/").content.decode()
    assert "Clinician: Dr Assigned (accepted the AI&#x27;s proposal on review)" in page
    assert "Accepted by Dr Assigned; acknowledged by the patient" in page and "Sent to clinician review" in page
    mine = client.get(f"/patients/{patient.pk}/visit-summary/", {"copy": "patient"}).content.decode()
    assert "checked by your care team first" in mine
    assert "onfidence" not in mine and deployed_model.sha256[:12] not in mine


def test_emergency_access_reads_the_care_plan_but_cannot_change_it(
    patient: Patient, unassigned_clinician: User, portal_client_for: ClientFor
) -> None:
    from clinaiops.care.services import break_glass_open

    break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering an urgent alert tonight")
    client = portal_client_for(unassigned_clinician)
    url = f"/patients/{patient.pk}/care-plan/"
    page = client.get(url)
    assert page.status_code == 200 and b"Set a lifestyle goal" not in page.content
    response = client.post(url, {"action": "goal", "kind": "sleep", "target_value": "7"}, follow=True)
    assert "Decisions, evaluations, bounds and targets stay with the patient" in response.content.decode()
    assert not LifestyleGoal.objects.exists()
    assert client.get(f"/patients/{patient.pk}/visit-summary/").status_code == 200
