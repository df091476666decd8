"""The whole feedback loop of issue 4, on the seeded synthetic cohort:

1. history: a simulated clinician titrates a cohort weekly; the decisions are labels; a model is trained on
   them and serves production;
2. a PPG calibration fault (+25 mmHg on every wearable reading) starts; readings arrive through the same
   ingest service the API uses; the model evaluates the cohort and the simulated clinician reviews what
   needs review, which adds the newest clinician labels;
3. the drift job flags the features the fault moves and starts a candidate retraining run on a fresh snapshot;
4. the candidate is trained and its gates run; an ML engineer and a clinical safety officer sign it off (e-signed),
   the engineer promotes it to canary and advances it to 50 %;
5. clinicians override the canary's proposals and accept production's, and the circuit breaker rolls the
   canary back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from clinaiops.care.models import CareTeam, DoseLog, Patient, Reading
from clinaiops.care.services import ReadingInput, autonomy_pause, dose_log_store, patient_enroll, regimen_change
from clinaiops.core.errors import InvalidTransition
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.loops.services.respond import recommendation_respond
from clinaiops.loops.services.review import review_decide
from fixtures.cohort import CohortSimulator
from fixtures.demo import cohort_identifiers
from governance.signoffs import model_signoff_create
from inference.feature_source import features_for_patient
from inference.models import LabelProvenance, ModelVersion, TrainingRun
from inference.monitoring.models import CircuitBreakerEvent, MonitoringAlert, PredictionLog
from inference.monitoring.services.canary import canary_stage_advance
from inference.monitoring.services.drift_reports import drift_report_compute
from inference.selectors import model_version_for_run, serving_version, snapshot_load
from inference.services.datasets import dataset_snapshot_create, label_record
from inference.services.serving import model_version_promote
from inference.services.training import training_run_create, training_run_execute
from tests.factories import UserFactory

OnCommit = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
SEED = 11
PATIENTS = 60
HISTORY_DAYS = 28
LIVE_DAYS = 10
# About 1,200 labels: the gates judge on a held-out fifth, and with fewer rows their noise (±0.05 balanced
# accuracy, calibration near its 0.1 bound) decides whether a candidate passes, not the candidate itself.
LABEL_EVERY_DAYS = 1
PPG_OFFSET_MMHG = 25.0
EVALUATION_DAYS = (3, 6, 9)  # live days on which every patient is evaluated


def _end_of(start: datetime, day: int) -> datetime:
    return start + timedelta(days=day + 1) - timedelta(seconds=1)


def _simulated_review(sim: CohortSimulator, rec: Recommendation, index: int, day: int) -> tuple[str, int | None, str]:
    f = rec.features
    decision = sim.clinician_decide(
        index=index, day=day, current_step=rec.from_step, mean_sbp=f["sbp_mean_7d"], mean_dbp=f["dbp_mean_7d"],
        target_sbp=rec.patient.target_sbp, target_dbp=rec.patient.target_dbp,
        low_readings=round(f["frac_low_14d"] * max(f["readings_7d"], 1)), proposed_step=rec.to_step,
    )  # fmt: skip
    outcome = {"accept": "accepted", "modify": "modified", "reject": "rejected"}[decision.outcome]
    return outcome, decision.to_step if outcome == "modified" else None, decision.reason


def _sign_off(version: ModelVersion, ml_engineer: User, safety_officer: User, password: str) -> None:
    """Both e-signed sign-offs. The safety officer acknowledges any "needs full review" finding of the gates
    (no change-control plan is declared in this test)."""
    model_signoff_create(actor=ml_engineer, version=version, password=password)
    model_signoff_create(actor=safety_officer, version=version, password=password, acknowledge_full_review=True)
    version.refresh_from_db()
    assert version.approval_state == "approved"


def _history(sim: CohortSimulator, patients: list[Patient], start: datetime) -> None:
    """Weeks before the fault. Readings and doses are bulk-loaded (set-up, not under test). The simulated
    clinician's judgement is recorded every LABEL_EVERY_DAYS days for each patient, as a label through the
    label service, and acted on at the weekly visit, as the demo's simulated clinician does."""
    for day in range(HISTORY_DAYS):
        readings, doses = [], []
        for index, patient in enumerate(patients):
            sim_day = sim.day(index, day, patient.current_step)
            readings += [
                Reading(patient=patient, taken_at=r.taken_at, systolic=r.systolic, diastolic=r.diastolic,
                        heart_rate=r.heart_rate, source=r.source, received_at=r.taken_at + timedelta(minutes=1))
                for r in sim_day.readings
            ]  # fmt: skip
            doses.append(
                DoseLog(patient=patient, day=(start + timedelta(days=day)).date(), taken=sim_day.dose_taken,
                        step=patient.current_step)
            )  # fmt: skip
        Reading.objects.bulk_create(readings)
        DoseLog.objects.bulk_create(doses)
        for index, patient in enumerate(patients):
            if day < 7 or (day + index) % LABEL_EVERY_DAYS:
                continue
            as_of = _end_of(start, day)
            f = features_for_patient(patient=patient, as_of=as_of)
            decision = sim.clinician_decide(
                index=index, day=day, current_step=patient.current_step, mean_sbp=f["sbp_mean_7d"],
                mean_dbp=f["dbp_mean_7d"], target_sbp=patient.target_sbp, target_dbp=patient.target_dbp,
                low_readings=round(f["frac_low_14d"] * max(f["readings_7d"], 1)), proposed_step=None,
            )  # fmt: skip
            with transaction.atomic():
                label_record(
                    patient=patient, as_of=as_of, from_step=patient.current_step, to_step=decision.to_step,
                    provenance=LabelProvenance.SIMULATED, source_ref=f"sim:{SEED}:{index}:{day}",
                )  # fmt: skip
            if decision.to_step != patient.current_step and (day + index) % 7 == 0:
                regimen_change(
                    patient=patient, to_step=decision.to_step, actor=None, cause=f"simulated_history:{day}", at=as_of,
                    system_reason="simulated_clinician",
                )  # fmt: skip


def _live_with_fault(
    sim: CohortSimulator, patients: list[Patient], start: datetime, clinician: User, password: str
) -> None:
    for live_day in range(LIVE_DAYS):
        day = HISTORY_DAYS + live_day
        for index, patient in enumerate(patients):
            sim_day = sim.day(index, day, patient.current_step)
            for r in sim_day.readings:
                reading_ingest(
                    actor=patient.user, patient=patient,
                    data=ReadingInput(r.taken_at, r.systolic, r.diastolic, r.heart_rate, r.source),
                    now=r.taken_at + timedelta(minutes=1),
                )  # fmt: skip
            dose_log_store(patient=patient, day=(start + timedelta(days=day)).date(), taken=sim_day.dose_taken)
        if live_day not in EVALUATION_DAYS:
            continue
        for index, patient in enumerate(patients):
            rec = evaluation_run(patient=patient, as_of=_end_of(start, day))
            assert rec is not None
            if rec.status == RecommendationStatus.PENDING_REVIEW:
                outcome, to_step, reason = _simulated_review(sim, rec, index, day)
                review_decide(
                    actor=clinician, recommendation=rec, outcome=outcome, to_step=to_step, reason=reason,
                    password=password,
                )  # fmt: skip
                rec.refresh_from_db()
            if rec.status == RecommendationStatus.DELIVERED and sim.patient_follows(index, day):
                recommendation_respond(actor=patient.user, recommendation=rec, response="acknowledge")
                patient.refresh_from_db()


@pytest.mark.slow
def test_drift_retrain_canary_and_circuit_breaker_on_a_shifted_cohort(
    settings: Any,
    care_team: CareTeam,
    clinician: User,
    ml_engineer: User,
    safety_officer: User,
    password: str,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    settings.DRIFT_MIN_CURRENT_ROWS = 150
    settings.CANARY_MIN_DECISIONS = 5
    # As in the demo build: on a 60-patient cohort (age-dependent BP targets, the documented PPG skin-tone bias)
    # fairness failures are findings the safety officer acknowledges at sign-off, not a rejection.
    settings.MODEL_GATE_FAIRNESS_ENFORCED = False
    today = timezone.now().astimezone(UTC).date()
    # The last simulated day is yesterday, so no reading lies in the future.
    start = datetime.combine(today - timedelta(days=HISTORY_DAYS + LIVE_DAYS), clock(0), tzinfo=UTC)
    sim = CohortSimulator(seed=SEED, n_patients=PATIENTS, start=start)
    patients = []
    with transaction.atomic():
        for profile in sim.profiles:
            patients.append(
                patient_enroll(
                    actor=None, user=UserFactory(username=profile.username, role=Role.PATIENT),
                    code=f"P-{profile.index + 1:04d}", care_team=care_team, sex=profile.sex,
                    identifiers=cohort_identifiers(sim, profile.index),
                    birth_year=profile.birth_year, race_ethnicity=profile.race_ethnicity,
                    skin_tone=profile.skin_tone, diabetes=profile.diabetes, ckd=profile.ckd,
                    current_step=profile.initial_step, target_sbp=profile.target_sbp,
                    target_dbp=profile.target_dbp, enrolled_at=start,
                )
            )  # fmt: skip

    # 1. History, labels, a production model.
    _history(sim, patients, start)
    snapshot = dataset_snapshot_create(actor=ml_engineer)
    assert snapshot.quality_passed, snapshot.quality_report
    run = training_run_execute(run_id=training_run_create(actor=ml_engineer, snapshot=snapshot).pk)
    first = model_version_for_run(run)
    assert first is not None
    _sign_off(first, ml_engineer, safety_officer, password)
    model_version_promote(version=first, arm="production", actor=ml_engineer)

    # 2. The PPG fault: the same cohort, every wearable reading 25 mmHg high, through the ingest service.
    faulty = CohortSimulator(seed=SEED, n_patients=PATIENTS, start=start, ppg_offset_mmHg=PPG_OFFSET_MMHG)
    _live_with_fault(faulty, patients, start, clinician, password)
    assert PredictionLog.objects.count() == PATIENTS * len(EVALUATION_DAYS)
    newest_clinician_labels = PredictionLog.objects.exclude(decided_at=None).count()
    assert newest_clinician_labels > 0

    # 3. Drift is detected on the features the fault moves, and a candidate retraining run starts.
    with django_capture_on_commit_callbacks(execute=True):
        report = drift_report_compute()
    assert report.severity == "severe", [(f["name"], round(f["psi"], 3), f["severity"]) for f in report.features]
    by_name = {entry["name"]: entry for entry in report.features}
    # The fault moves the wearable's own features (bp-features/2 keeps sources apart), and nothing the cuff measures.
    assert by_name["wearable_sbp_mean_7d"]["severity"] == "severe"
    assert by_name["wearable_sbp_mean_7d"]["psi"] > 0.25
    wearers = [row["features"] for row in snapshot_load(snapshot) if row["features"]["wearable_readings_7d"] > 0]
    reference = np.mean([f["wearable_sbp_mean_7d"] - f["sbp_mean_7d"] for f in wearers])
    current_rows = [
        f for f in PredictionLog.objects.values_list("features", flat=True) if f["wearable_readings_7d"] > 0
    ]
    current = np.mean([f["wearable_sbp_mean_7d"] - f["sbp_mean_7d"] for f in current_rows])
    assert current > reference + 10, (reference, current)
    assert "wearable_sbp_mean_7d" in report.drifted
    assert by_name["age"]["severity"] == "stable"  # the fault does not touch what the readings do not measure
    alert = MonitoringAlert.objects.get(kind="drift_severe")
    assert alert.drift_report == report

    # 4. The candidate was trained on a fresh snapshot with the newest clinician labels; its gates ran.
    run = TrainingRun.objects.get(pk=report.retraining_run_id)
    assert run.status == "succeeded"
    assert run.snapshot.provenance_counts.get("clinician") == newest_clinician_labels
    candidate = model_version_for_run(run)
    assert candidate is not None and candidate != first
    assert {"onnx_parity", "data_quality"} <= set(candidate.gates)
    assert candidate.approval_state == "validated", candidate.gates  # gated; not approved, not serving
    assert serving_version(arm="production") == first  # nothing was promoted by the drift job
    with pytest.raises(InvalidTransition):  # the canary arm takes only signed-off versions
        model_version_promote(version=candidate, arm="canary", actor=ml_engineer)
    _sign_off(candidate, ml_engineer, safety_officer, password)
    model_version_promote(version=candidate, arm="canary", actor=ml_engineer)
    canary_stage_advance(actor=ml_engineer)
    assert canary_stage_advance(actor=ml_engineer).stage_percent == 50

    # 5. Every proposal goes to review today; clinicians override the canary and accept production.
    with transaction.atomic():
        for patient in patients:
            autonomy_pause(patient=patient, cause="review_everything_during_canary")
    served: dict[str, int] = {"canary": 0, "production": 0}
    for patient in patients:
        if serving_version(arm="canary") is None:
            break
        # Each decision commits on its own, and the breaker check it enqueues runs right after it.
        with django_capture_on_commit_callbacks(execute=True):
            patient.refresh_from_db()
            rec = evaluation_run(patient=patient)
            assert rec is not None and rec.status == RecommendationStatus.PENDING_REVIEW
            served[rec.arm] += 1
            overridden = rec.arm == "canary"
            review_decide(
                actor=clinician, recommendation=rec, outcome="rejected" if overridden else "accepted",
                reason="Disagree with the proposal." if overridden else "Agree.", password=password,
            )  # fmt: skip
    event = CircuitBreakerEvent.objects.get()
    assert event.model_version == candidate and "override_rate" in event.reasons
    assert event.metrics["canary"]["decisions"] >= 5 and event.metrics["production"]["decisions"] >= 5
    assert serving_version(arm="canary") is None
    assert serving_version(arm="production") == first
    assert MonitoringAlert.objects.filter(kind="canary_rolled_back", status="open").count() == 1
    assert served["canary"] >= 5 and served["production"] >= 5
