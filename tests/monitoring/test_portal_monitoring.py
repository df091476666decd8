"""Monitoring pages: ML engineers, safety officers and compliance officers read; clinicians and patients are
refused (and the refusal audited); only engineers and safety officers act."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.services.evaluation import evaluation_run
from inference.models import ModelVersion
from inference.monitoring.models import DriftReport, MonitoringAlert
from inference.monitoring.services.drift_reports import drift_report_compute
from inference.monitoring.services.predictions import decision_outcome_record, prediction_log_record
from inference.selectors import serving_version, snapshot_load
from tests.conftest import audit_actions, readings_add
from tests.factories import PatientFactory, UserFactory
from tests.monitoring.conftest import deploy

PAGES = ("/monitoring/", "/monitoring/drift/", "/monitoring/alerts/")
OnCommit = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture
def severe_report(
    patient: Patient, deployed_model: ModelVersion, django_capture_on_commit_callbacks: OnCommit
) -> DriftReport:
    rows = [row["features"] for row in snapshot_load(deployed_model.training_run.snapshot)][:250]
    for i, features in enumerate(rows):
        prediction_log_record(
            recommendation_id=50_000 + i, patient=patient, arm="production", model_version=deployed_model,
            feature_set_version=deployed_model.feature_set_version,
            features={**features, "sbp_mean_7d": features["sbp_mean_7d"] + 30}, probabilities={"maintain": 1.0},
            action="maintain", from_step=2, proposed_step=2, tier="major", created_at=timezone.now(),
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        return drift_report_compute()


@pytest.mark.parametrize("persona", ["ml_engineer", "safety_officer", "compliance_officer"])
def test_governance_roles_read_every_monitoring_page(
    persona: str,
    request: pytest.FixtureRequest,
    severe_report: DriftReport,
    portal_client_for: Callable[[User], Client],
) -> None:
    client = portal_client_for(request.getfixturevalue(persona))
    for url in (*PAGES, f"/monitoring/drift/{severe_report.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
    detail = client.get(f"/monitoring/drift/{severe_report.pk}/").content.decode()
    assert detail.count("<svg") >= 2 and 'class="chart-psi"' in detail and "chart-drift-hist" in detail
    assert "severe 0.25" in detail and "watch 0.1" in detail
    assert "average systolic BP, cuff (7 days)" in detail
    assert "P-0001" not in detail  # aggregates only


@pytest.mark.parametrize("persona", ["clinician", "patient"])
def test_clinicians_and_patients_are_refused_and_the_refusal_is_audited(
    persona: str,
    request: pytest.FixtureRequest,
    severe_report: DriftReport,
    portal_client_for: Callable[[User], Client],
) -> None:
    who = request.getfixturevalue(persona)
    client = portal_client_for(who.user if persona == "patient" else who)
    for url in (*PAGES, f"/monitoring/drift/{severe_report.pk}/"):
        assert client.get(url).status_code == 403, url
    alert = MonitoringAlert.objects.get()
    assert client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert audit_actions(outcome="denied", object_type="portal_view").count("access.denied") == 5


def test_anonymous_is_sent_to_login(db: None) -> None:
    response = Client().get("/monitoring/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_ml_engineer_acknowledges_an_alert_but_a_compliance_officer_cannot(
    severe_report: DriftReport,
    ml_engineer: User,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    alert = MonitoringAlert.objects.get()
    page = portal_client_for(compliance_officer).get("/monitoring/alerts/").content.decode()
    assert "Acknowledge</button>" not in page
    assert portal_client_for(compliance_officer).post(f"/monitoring/alerts/{alert.pk}/acknowledge/").status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"
    engineer = portal_client_for(ml_engineer)
    assert "Acknowledge</button>" in engineer.get("/monitoring/alerts/").content.decode()
    response = engineer.post(f"/monitoring/alerts/{alert.pk}/acknowledge/", follow=True)
    assert b"Alert acknowledged." in response.content
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", ml_engineer)
    assert engineer.post("/monitoring/alerts/999999/acknowledge/").status_code == 404


def test_canary_page_shows_the_stage_and_only_an_ml_engineer_advances_it(
    patient: Patient,
    deployed_model: ModelVersion,
    candidate_model: ModelVersion,
    ml_engineer: User,
    safety_officer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    deploy("canary", candidate_model, ml_engineer)
    safety = portal_client_for(safety_officer)
    page = safety.get("/monitoring/").content.decode()
    assert candidate_model.short_hash in page and "<strong>5 %</strong>" in page
    assert "Advance to 20 %" not in page
    assert safety.post("/monitoring/canary/advance/").status_code == 403
    engineer = portal_client_for(ml_engineer)
    assert "Advance to 20 %" in engineer.get("/monitoring/").content.decode()
    response = engineer.post("/monitoring/canary/advance/", follow=True)
    assert b"The canary now serves 20 % of patients." in response.content
    assert b"<strong>20 %</strong>" in response.content
    assert serving_version(arm="canary") == candidate_model


def test_shadow_agreement_is_shown_only_in_aggregate(
    patient: Patient,
    deployed_model: ModelVersion,
    candidate_model: ModelVersion,
    ml_engineer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    deploy("shadow", candidate_model, ml_engineer)
    readings_add(patient, [(150, 92)] * 8)
    rec = evaluation_run(patient=patient)
    assert rec is not None
    page = portal_client_for(ml_engineer).get("/monitoring/").content.decode()
    assert f"<code>{candidate_model.short_hash}</code> beside production" in page
    assert "agreement over 1 evaluations" in page
    assert patient.code not in page


def test_drift_can_be_run_on_demand_from_the_portal(
    severe_report: DriftReport, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    response = portal_client_for(ml_engineer).post("/monitoring/drift/run/", follow=True)
    assert response.status_code == 200
    newest = DriftReport.objects.order_by("-pk").first()
    assert newest is not None and newest.pk != severe_report.pk and newest.requested_by == ml_engineer
    assert f"Drift report {newest.pk}" in response.content.decode()


def _decisions(model: ModelVersion, patient: Patient, *, n: int, correct: int, first_id: int) -> None:
    """n reviewed proposals for one patient, the first `correct` of them accepted as proposed."""
    now = timezone.now()
    for i in range(n):
        prediction_log_record(
            recommendation_id=first_id + i, patient=patient, arm="production", model_version=model,
            feature_set_version=model.feature_set_version, features={}, probabilities={"maintain": 1.0},
            action="maintain", from_step=2, proposed_step=2, tier="major", created_at=now,
        )  # fmt: skip
        decision_outcome_record(
            recommendation_id=first_id + i, outcome="accepted" if i < correct else "modified",
            overridden=i >= correct, final_step=2 if i < correct else 3, decided_at=now,
        )  # fmt: skip


def test_the_drift_page_gives_no_accuracy_for_a_group_too_small_to_compare(
    care_team: CareTeam, deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    # Defect 11: the note said groups under 20 were not compared while the table showed their accuracy.
    women = PatientFactory(user=UserFactory(role="patient"), care_team=care_team, sex="female", skin_tone=2)
    men = PatientFactory(user=UserFactory(role="patient"), care_team=care_team, sex="male", skin_tone=2)
    _decisions(deployed_model, women, n=25, correct=25, first_id=70_000)
    _decisions(deployed_model, men, n=12, correct=5, first_id=71_000)  # 5 of 12 would read "42 %"
    report = drift_report_compute(actor=ml_engineer)

    page = portal_client_for(ml_engineer).get(f"/monitoring/drift/{report.pk}/").content.decode()

    assert "<td>sex: female</td><td>25</td><td>100 %</td>" in page
    assert '<td>sex: male</td><td>12</td><td><span class="muted">too few to compare</span></td>' in page
    assert "42 %" not in page
    assert "fewer than 20 decisions are counted but not compared" in page
    assert "by sex — (fewer than two groups to compare)" in page


def test_a_report_stored_before_groups_were_marked_is_shown_by_the_same_rule(
    deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    report = drift_report_compute(actor=ml_engineer)
    DriftReport.objects.filter(pk=report.pk).update(
        subgroups={
            "overall": {"n": 37, "correct": 30, "accuracy": 30 / 37},
            "min_rows": 20,
            "sex": {
                "groups": [
                    {"group": "female", "n": 25, "correct": 25, "accuracy": 1.0},
                    {"group": "male", "n": 12, "correct": 5, "accuracy": 5 / 12},
                ],
                "max_gap": None,
            },
            "skin_tone": {"groups": [], "max_gap": None},
        }
    )

    page = portal_client_for(ml_engineer).get(f"/monitoring/drift/{report.pk}/").content.decode()

    assert '<td>sex: male</td><td>12</td><td><span class="muted">too few to compare</span></td>' in page
    assert "42 %" not in page and "<td>sex: female</td><td>25</td><td>100 %</td>" in page


def test_monitoring_pages_show_words_not_codes(
    severe_report: DriftReport, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(ml_engineer)
    detail = client.get(f"/monitoring/drift/{severe_report.pk}/").content.decode()
    listing = client.get("/monitoring/drift/").content.decode()

    assert "Kolmogorov–Smirnov statistic" in detail and "KS statistic" not in detail
    assert "sbp_mean_7d" in severe_report.drifted
    for page in (detail, listing):  # the severe features, named as a clinician would
        assert "average systolic BP, cuff (7 days)" in page and "sbp_mean_7d" not in page
