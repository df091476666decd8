"""Shared set-up for the monitoring tests: a second model version, cohorts of personas' peers, helpers that
route patients to an arm and produce proposals that need review."""

from __future__ import annotations

from itertools import count

import pytest

from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation import evaluation_run
from inference.models import ModelVersion
from inference.monitoring.routing import canary_bucket, canary_salt
from inference.selectors import model_version_for_run
from inference.services.serving import serving_pointer_set
from inference.services.training import training_run_create, training_run_execute
from tests.conftest import model_approve, readings_add
from tests.factories import PatientFactory, UserFactory

_codes = count(100)


@pytest.fixture
def candidate_model(deployed_model: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """A second version, trained on the same labels with stronger regularisation (a different model, different
    ONNX bytes), gated and signed off by both roles: approved, so it may serve the canary (or shadow) arm."""
    run = training_run_create(
        actor=ml_engineer, snapshot=deployed_model.training_run.snapshot, params={"C": 0.95}, seed=11
    )
    version = model_version_for_run(training_run_execute(run_id=run.pk))
    assert version is not None and version.sha256 != deployed_model.sha256
    return model_approve(version, ml_engineer, safety_officer)


def deploy(arm: str, version: ModelVersion | None, actor: User) -> None:
    serving_pointer_set(arm=arm, version=version, actor=actor, reason="test")


def cohort(care_team: CareTeam, n: int) -> list[Patient]:
    """n more patients on the assigned clinician's care team."""
    patients = []
    for _ in range(n):
        code = f"P-{next(_codes):04d}"
        patients.append(
            PatientFactory(user=UserFactory(username=f"pat_{code}", role=Role.PATIENT), care_team=care_team, code=code)
        )
    return patients


def on_canary(patient: Patient, canary: ModelVersion, percent: int) -> bool:
    return canary_bucket(patient.pk, canary_salt(canary)) < percent


def cohort_split(
    care_team: CareTeam, canary: ModelVersion, percent: int, k: int
) -> tuple[list[Patient], list[Patient]]:
    """k patients the canary serves and k that production serves. Patient ids come from database sequences,
    which differ from run to run, so the cohort grows until both arms have enough."""
    on: list[Patient] = []
    off: list[Patient] = []
    while len(on) < k or len(off) < k:
        [patient] = cohort(care_team, 1)
        (on if on_canary(patient, canary, percent) else off).append(patient)
        assert len(on) + len(off) < 200
    return on[:k], off[:k]


def proposal_for_review(patient: Patient) -> Recommendation:
    """Three high readings: too few for autonomy, so the proposal waits for a clinician (major)."""
    readings_add(patient, [(168, 99)] * 3)
    rec = evaluation_run(patient=patient)
    assert rec is not None and rec.status == "pending_review", rec
    return rec
