"""Personas and a real deployed model, shared by the suite.

Personas: a patient, another patient (different care team), an assigned clinician, an unassigned clinician,
an ML engineer, a safety officer and a compliance officer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import CareTeam, Patient
from clinaiops.care.services import ReadingInput
from clinaiops.core.models import Role, User
from clinaiops.loops.services import reading_ingest
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION
from inference.models import CLASS_ORDER, LabelProvenance, ModelVersion, TrainingLabel
from inference.runtime import runtime_cache_clear
from inference.services import dataset_snapshot_create, serving_pointer_set, training_run_create, training_run_execute
from tests.factories import PASSWORD, CareTeamFactory, PatientFactory, UserFactory


@pytest.fixture(autouse=True)
def _isolated_artifacts(settings: Any, tmp_path: Path) -> None:
    # Each test gets its own artifact store and a cold session cache, so one test's tampering cannot leak.
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    runtime_cache_clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def care_team(db: None) -> CareTeam:
    return CareTeamFactory(name="Clinic A")


@pytest.fixture
def other_team(db: None) -> CareTeam:
    return CareTeamFactory(name="Clinic B")


@pytest.fixture
def clinician(care_team: CareTeam) -> User:
    user = UserFactory(username="dr_assigned", role=Role.CLINICIAN, printed_name="Dr Assigned")
    care_team.members.add(user)
    return user


@pytest.fixture
def unassigned_clinician(other_team: CareTeam) -> User:
    user = UserFactory(username="dr_elsewhere", role=Role.CLINICIAN, printed_name="Dr Elsewhere")
    other_team.members.add(user)
    return user


@pytest.fixture
def ml_engineer(db: None) -> User:
    return UserFactory(username="mleng", role=Role.ML_ENGINEER)


@pytest.fixture
def safety_officer(db: None) -> User:
    return UserFactory(username="safety", role=Role.SAFETY_OFFICER)


@pytest.fixture
def compliance_officer(db: None) -> User:
    return UserFactory(username="compliance", role=Role.COMPLIANCE_OFFICER)


@pytest.fixture
def patient(care_team: CareTeam, clinician: User) -> Patient:
    return PatientFactory(user=UserFactory(username="pat_one", role=Role.PATIENT), care_team=care_team, code="P-0001")


@pytest.fixture
def other_patient(other_team: CareTeam) -> Patient:
    return PatientFactory(user=UserFactory(username="pat_two", role=Role.PATIENT), care_team=other_team, code="P-0002")


@pytest.fixture
def api_client_for() -> Callable[[User], APIClient]:
    """An API client authenticated the way the mobile app is: username/password → Bearer access token."""

    def make(user: User) -> APIClient:
        client = APIClient()
        response = client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
        return client

    return make


@pytest.fixture
def portal_client_for() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)  # the sign-in form itself is tested in tests/governance/test_access_and_policy.py
        return client

    return make


def readings_add(
    patient: Patient, values: list[tuple[int, int]], *, end: datetime | None = None, hours: int = 12
) -> None:
    """Ingest readings through the real service, one every `hours`, ending at `end` (default now)."""
    end = end or timezone.now()
    for i, (sbp, dbp) in enumerate(reversed(values)):
        reading_ingest(
            actor=patient.user,
            patient=patient,
            data=ReadingInput(end - timedelta(hours=hours * i, minutes=1), sbp, dbp, 70, "cuff"),
        )


def _synthetic_labels(patient: Patient, n: int = 600, seed: int = 3) -> None:
    """Labelled rows that follow a clean guideline rule, so the model's confident answers are predictable:
    SBP well above target → increase, low readings → decrease, otherwise maintain."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    rows = []
    for i in range(n):
        sbp = float(rng.uniform(95, 175))
        dbp = sbp * 0.6 + float(rng.normal(0, 3))
        low = float(max(0.0, (110 - sbp) / 30)) if sbp < 110 else 0.0
        label = "increase" if sbp >= 142 else "decrease" if sbp < 108 else "maintain"
        features = dict.fromkeys(FEATURE_NAMES, 0.0)
        features.update(
            sbp_mean_7d=sbp,
            dbp_mean_7d=dbp,
            sbp_excess_7d=sbp - 130,
            dbp_excess_7d=dbp - 80,
            sbp_sd_14d=float(rng.uniform(3, 12)),
            frac_above_target_14d=float(np.clip((sbp - 120) / 40, 0, 1)),
            frac_low_14d=low,
            nocturnal_dip=0.1,
            hr_mean_7d=70.0,
            readings_7d=float(rng.integers(6, 15)),
            adherence_14d=float(rng.uniform(0.6, 1)),
            current_step=float(rng.integers(1, 6)),
            days_since_change=float(rng.integers(7, 60)),
            age=float(rng.integers(40, 85)),
        )
        rows.append(
            TrainingLabel(
                patient=patient,
                as_of=now - timedelta(days=30, minutes=i),
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                from_step=2,
                label=label,
                provenance=LabelProvenance.SIMULATED,
                source_ref=f"test:{seed}:{i}",
                created_at=now,
            )
        )
    TrainingLabel.objects.bulk_create(rows)
    assert {r.label for r in rows} == set(CLASS_ORDER)


@pytest.fixture
def trained_model(patient: Patient, ml_engineer: User) -> ModelVersion:
    _synthetic_labels(patient)
    snapshot = dataset_snapshot_create(actor=ml_engineer)
    run = training_run_create(actor=ml_engineer, snapshot=snapshot, seed=11)
    run = training_run_execute(run_id=run.pk)
    return run.model_version  # type: ignore[no-any-return]


def model_approve(version: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """Both e-signed sign-offs (DESIGN §3), the safety officer acknowledging any "needs full review" findings
    (a one-patient fixture cannot judge fairness, and no change-control plan exists): the version is approved."""
    from governance.signoffs import model_signoff_create

    model_signoff_create(actor=ml_engineer, version=version, password=PASSWORD)
    model_signoff_create(actor=safety_officer, version=version, password=PASSWORD, acknowledge_full_review=True)
    return ModelVersion.objects.get(pk=version.pk)


@pytest.fixture
def deployed_model(trained_model: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """The trained model, signed off by both roles and serving on production (which takes only approved versions)."""
    approved = model_approve(trained_model, ml_engineer, safety_officer)
    serving_pointer_set(arm="production", version=approved, actor=ml_engineer, reason="test")
    return approved


def audit_actions(**filters: Any) -> list[str]:
    from clinaiops.audit.models import AuditEvent

    return list(AuditEvent.objects.filter(**filters).order_by("seq").values_list("action", flat=True))
