"""The drift job: the serving window against the production model's training snapshot, stored, printed, and
on severe drift an alert plus a candidate retraining run that nobody promotes automatically."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from io import StringIO
from itertools import count
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import User
from inference.models import LabelProvenance, ModelVersion, ServingPointer, TrainingRun
from inference.monitoring.models import DriftReport, MonitoringAlert
from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.drift_reports import drift_report_compute
from inference.monitoring.services.predictions import decision_outcome_record, prediction_log_record
from inference.monitoring.tasks import drift_report_compute_task
from inference.selectors import model_version_for_run, snapshot_load
from inference.services.datasets import label_record
from tests.conftest import audit_actions, readings_add
from tests.factories import PatientFactory, UserFactory

OnCommit = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
_recommendation_ids: Iterator[int] = count(10_000)


def _log(model: ModelVersion, patient: Patient, rows: list[dict[str, float]], *, arm: str = "production") -> list[int]:
    """Log proposals as the loops do after each evaluation (the features are what the model scored)."""
    ids = []
    for features in rows:
        rec_id = next(_recommendation_ids)
        prediction_log_record(
            recommendation_id=rec_id, patient=patient, arm=arm, model_version=model,
            feature_set_version=model.feature_set_version, features=features,
            probabilities={"decrease": 0.1, "maintain": 0.8, "increase": 0.1}, action="maintain",
            from_step=2, proposed_step=2, tier="major", created_at=timezone.now(),
        )  # fmt: skip
        ids.append(rec_id)
    return ids


def _reference_sample(model: ModelVersion, n: int, seed: int = 5) -> list[dict[str, float]]:
    rows = [row["features"] for row in snapshot_load(model.training_run.snapshot)]
    picks = np.random.default_rng(seed).choice(len(rows), size=n, replace=True)
    return [dict(rows[i]) for i in picks]


def _shifted(rows: list[dict[str, float]], mmhg: float) -> list[dict[str, float]]:
    """A cuff that reads `mmhg` high: every systolic feature moves with it."""
    return [
        {**row, "sbp_mean_7d": row["sbp_mean_7d"] + mmhg, "sbp_excess_7d": row["sbp_excess_7d"] + mmhg} for row in rows
    ]


def test_without_a_production_model_there_is_nothing_to_compare(db: None) -> None:
    with pytest.raises(ValidationFailed) as caught:
        drift_report_compute()
    assert caught.value.code == "no_production_model"
    with pytest.raises(CommandError, match="No model serves production"):
        call_command("drift", stdout=StringIO())
    assert drift_report_compute_task.delay().get() is None


def test_too_few_rows_give_no_severity_and_no_alert(patient: Patient, deployed_model: ModelVersion) -> None:
    _log(deployed_model, patient, _shifted(_reference_sample(deployed_model, 20), 40))
    report = drift_report_compute()
    assert (report.severity, report.n_current, report.features, report.drifted) == ("insufficient_data", 20, [], [])
    assert report.n_reference == 600 and report.reference_sha256 == deployed_model.training_run.snapshot.sha256
    assert not MonitoringAlert.objects.exists()


def test_a_window_like_the_training_data_is_stable(patient: Patient, deployed_model: ModelVersion) -> None:
    _log(deployed_model, patient, _reference_sample(deployed_model, 300))
    report = drift_report_compute()
    assert report.severity == "stable", [(f["name"], f["psi"], f["p_adjusted"]) for f in report.features]
    assert report.prediction is not None and report.prediction["severity"] == "stable"
    assert len(report.features) == len(deployed_model.feature_names)
    assert report.psi_noise_floor == pytest.approx(9 * (1 / 600 + 1 / 300))
    assert not MonitoringAlert.objects.exists() and report.retraining_run is None


def test_severe_drift_alerts_and_trains_a_candidate_on_the_newest_labels_without_promoting_it(
    patient: Patient,
    deployed_model: ModelVersion,
    ml_engineer: User,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    readings_add(patient, [(171, 101)] * 6)
    newest = label_record(
        patient=patient, as_of=timezone.now(), from_step=2, to_step=3, provenance=LabelProvenance.CLINICIAN,
        source_ref="review_decision:test-newest",
    )  # fmt: skip
    assert newest is not None
    _log(deployed_model, patient, _shifted(_reference_sample(deployed_model, 300), 25))
    with django_capture_on_commit_callbacks(execute=True):
        report = drift_report_compute()

    assert report.severity == "severe"
    assert {"sbp_mean_7d", "sbp_excess_7d"} <= set(report.drifted)
    entry = {f["name"]: f for f in report.features}["sbp_mean_7d"]
    assert entry["psi"] > 0.25 and entry["test"] == "ks" and entry["p_adjusted"] < 0.05
    assert len(entry["reference_hist"]) == len(entry["current_hist"]) == len(entry["bin_edges"]) - 1
    assert {f["name"]: f for f in report.features}["age"]["severity"] == "stable"
    assert {f["name"]: f for f in report.features}["diabetes"]["test"] == "chi2"

    alert = MonitoringAlert.objects.get()
    assert (alert.kind, alert.drift_report, alert.status) == ("drift_severe", report, "open")
    run = TrainingRun.objects.get(pk=report.retraining_run_id)
    assert run.status == "succeeded" and run.requested_by is None
    assert run.snapshot.provenance_counts.get("clinician") == 1  # the newest clinician label is in it
    assert run.snapshot.row_count == 601
    assert (run.family, run.params, run.seed) == (
        deployed_model.training_run.family, deployed_model.training_run.params, deployed_model.training_run.seed,
    )  # fmt: skip
    candidate = model_version_for_run(run)
    assert candidate is not None
    assert candidate.gates and candidate.approval_state in ("validated", "rejected")
    # Registered and gated, never promoted: nothing serves it.
    assert not ServingPointer.objects.filter(model_version=candidate).exists()
    assert ServingPointer.objects.get(arm="production").model_version == deployed_model
    assert {"dataset.snapshot_created", "training.started", "training.finished", "alert.opened"} <= set(
        audit_actions(actor=None)
    )


def test_severe_drift_while_its_alert_is_open_starts_no_second_run(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User, django_capture_on_commit_callbacks: OnCommit
) -> None:
    readings_add(patient, [(171, 101)] * 6)
    label_record(
        patient=patient, as_of=timezone.now(), from_step=2, to_step=3, provenance=LabelProvenance.CLINICIAN,
        source_ref="review_decision:test-1",
    )  # fmt: skip
    _log(deployed_model, patient, _shifted(_reference_sample(deployed_model, 300), 25))
    with django_capture_on_commit_callbacks(execute=True):
        first = drift_report_compute()
        second = drift_report_compute()
    assert first.retraining_run is not None
    assert (second.severity, second.retraining_run, second.retraining_note) == ("severe", None, "alert_already_open")
    assert MonitoringAlert.objects.get().occurrences == 2
    monitoring_alert_acknowledge(actor=ml_engineer, alert_id=MonitoringAlert.objects.get().pk)
    with django_capture_on_commit_callbacks(execute=True):
        third = drift_report_compute()
    # A new alert, but the labels have not changed since the first candidate: training it again would
    # reproduce the same model (same snapshot, parameters and seed).
    assert third.retraining_note == "candidate_already_trained"
    assert MonitoringAlert.objects.filter(status="open").count() == 1
    assert TrainingRun.objects.count() == 2


def test_a_drift_report_is_audited_with_who_asked_and_what_it_found(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User
) -> None:
    _log(deployed_model, patient, _reference_sample(deployed_model, 300))

    asked = drift_report_compute(actor=ml_engineer)
    scheduled = drift_report_compute()

    events = AuditEvent.objects.filter(action="drift.report_created", outcome="success").order_by("seq")
    assert [(e.object_id, e.actor_id) for e in events] == [(str(asked.pk), ml_engineer.pk), (str(scheduled.pk), None)]
    payload = events[0].payload_data
    assert (payload["severity"], payload["n_current"], payload["n_reference"]) == (asked.severity, 300, 600)
    assert payload["model_sha256"] == deployed_model.sha256 and payload["drifted"] == asked.drifted
    assert events[1].payload_data["system_reason"] == "scheduled"


@pytest.mark.parametrize("persona", ["clinician", "compliance_officer", "patient"])
def test_the_drift_service_itself_refuses_anyone_but_ml_engineers_and_safety_officers(
    persona: str, request: pytest.FixtureRequest, deployed_model: ModelVersion
) -> None:
    who = request.getfixturevalue(persona)
    actor = who.user if isinstance(who, Patient) else who

    with pytest.raises(PermissionRefused):
        drift_report_compute(actor=actor)

    assert not DriftReport.objects.exists()
    refused = AuditEvent.objects.get(action="drift.report_created")
    assert (refused.outcome, refused.actor_id, refused.payload_data["reason"]) == ("denied", actor.pk, "wrong_role")


def test_report_carries_override_rates_and_subgroup_accuracy(
    care_team: CareTeam, deployed_model: ModelVersion, settings: Any
) -> None:
    settings.DRIFT_MIN_CURRENT_ROWS = 10_000  # these rows test the decision figures, not the drift statistics
    people = {
        ("female", 2): PatientFactory(user=UserFactory(role="patient"), care_team=care_team, sex="female", skin_tone=2),
        ("male", 6): PatientFactory(user=UserFactory(role="patient"), care_team=care_team, sex="male", skin_tone=6),
    }
    rows = _reference_sample(deployed_model, 40)
    decided_at = timezone.now()
    for (sex, _), patient in people.items():
        # Women: 25 decisions, all accepted. Men: 15 decisions, 9 overridden: under the 20 a group needs.
        for i, rec_id in enumerate(
            _log(deployed_model, patient, rows[: 25 if sex == "female" else 15], arm="production")
        ):
            overridden = sex == "male" and i < 9
            decision_outcome_record(
                recommendation_id=rec_id, outcome="modified" if overridden else "accepted", overridden=overridden,
                final_step=3 if overridden else 2, decided_at=decided_at,
            )  # fmt: skip
    report = drift_report_compute()
    assert report.override_rates["overall"] == {"decisions": 40, "overridden": 9, "rate": 9 / 40}
    assert report.override_rates["by_arm"]["production"]["rate"] == 9 / 40
    sex = {g["group"]: g for g in report.subgroups["sex"]["groups"]}
    assert (sex["female"]["compared"], sex["female"]["accuracy"]) == (True, 1.0)
    # A group under the minimum is counted, and neither given an accuracy nor compared (defect 11).
    assert (sex["male"]["compared"], sex["male"]["accuracy"], sex["male"]["n"], sex["male"]["correct"]) == (
        False, None, 15, 6,
    )  # fmt: skip
    tones = {g["group"]: g["n"] for g in report.subgroups["skin_tone"]["groups"]}
    assert tones == {"I–II": 25, "V–VI": 15}
    assert report.subgroups["sex"]["max_gap"] is None  # one group large enough: nothing to compare it with


def test_drift_command_prints_a_table_and_stores_the_report(
    patient: Patient, deployed_model: ModelVersion, ml_engineer: User, django_capture_on_commit_callbacks: OnCommit
) -> None:
    _log(deployed_model, patient, _shifted(_reference_sample(deployed_model, 250), 25))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("drift", "--actor", ml_engineer.username, "--window-days", "7", stdout=out)
    text = out.getvalue()
    report = DriftReport.objects.get()
    assert report.requested_by == ml_engineer and report.window_days == 7
    assert f"drift report {report.pk}" in text
    assert "sbp_mean_7d" in text and "PSI" in text and "severity: severe" in text
    assert "prediction" in text
    assert "clinician override rate" in text


def test_drift_command_refuses_a_clinician_actor_and_a_naive_date(
    clinician: User, deployed_model: ModelVersion
) -> None:
    with pytest.raises(CommandError, match="Only ML engineers and clinical safety officers"):
        call_command("drift", "--actor", clinician.username, stdout=StringIO())
    assert audit_actions(action="drift.report_created", outcome="denied") == ["drift.report_created"]
    with pytest.raises(CommandError, match="timezone"):
        call_command("drift", "--as-of", "2026-01-01T00:00:00", stdout=StringIO())
    assert not DriftReport.objects.exists()


def test_the_scheduled_task_stores_a_report(patient: Patient, deployed_model: ModelVersion) -> None:
    _log(deployed_model, patient, _reference_sample(deployed_model, 5))
    report_id = drift_report_compute_task.delay().get()
    assert DriftReport.objects.get(pk=report_id).requested_by is None
