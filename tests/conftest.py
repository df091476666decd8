"""Personas and a real deployed model, shared by the suite.

Personas: a patient, another patient (different care team), an assigned clinician, an unassigned clinician,
an ML engineer, a safety officer and a compliance officer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

import inference.training
from clinaiops.care.models import CareTeam, Patient
from clinaiops.care.services import ReadingInput, break_glass_open
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.ingest import reading_ingest
from governance.signoffs import model_signoff_create
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION
from inference.models import CLASS_ORDER, LabelProvenance, ModelVersion, TrainingLabel
from inference.runtime import runtime_cache_clear
from inference.services.datasets import dataset_snapshot_create
from inference.services.serving import serving_pointer_set
from inference.services.training import training_run_create, training_run_execute
from tests.factories import PASSWORD, CareTeamFactory, PatientFactory, UserFactory
from tests.inference.training_cache import FittedModelCache


@pytest.fixture(autouse=True)
def _isolated_artifacts(settings: Any, tmp_path: Path) -> None:
    # Each test gets its own artifact store and a cold session cache, so one test's tampering cannot leak.
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    runtime_cache_clear()


LEDGER_TABLES = frozenset({"audit_auditevent", "audit_auditcheckpoint"})


@pytest.fixture(autouse=True, scope="session")
def _ledger_flush_as_superuser() -> Iterator[None]:
    """Let pytest-django empty the ledger after a transactional test.

    It empties every table with one TRUNCATE, which the ledger's trigger refuses to every session: no session
    setting may switch the protection off (issue 8). The suite connects as a superuser, which is outside the threat
    model (it can always suspend triggers, and the chain and the witness catch what it does), so the flush alone
    suspends triggers with session_replication_role, a setting only a superuser may change, for its own
    transaction (SET LOCAL; Django runs the flush inside transaction.atomic)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        statements: list[str] = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if statements and LEDGER_TABLES & set(tables):
            return ["SET LOCAL session_replication_role = replica", *statements]
        return statements

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]
    try:
        yield
    finally:
        DatabaseOperations.sql_flush = original  # type: ignore[method-assign]


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


@functools.cache
def _synthetic_rows(n: int, seed: int) -> tuple[tuple[dict[str, float], str], ...]:
    """(features, label) for each synthetic row: computed once per session, the same rows for every test."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
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
            wearable_sbp_mean_7d=sbp - 2.0,
            wearable_readings_7d=5.0,
            hr_mean_7d=70.0,
            readings_7d=float(rng.integers(6, 15)),
            adherence_14d=float(rng.uniform(0.6, 1)),
            current_step=float(rng.integers(1, 6)),
            days_since_change=float(rng.integers(7, 60)),
            age=float(rng.integers(40, 85)),
        )
        rows.append((features, label))
    return tuple(rows)


def _synthetic_labels(patient: Patient, n: int = 600, seed: int = 3) -> None:
    """Labelled rows that follow a clean guideline rule, so the model's confident answers are predictable:
    SBP well above target → increase, low readings → decrease, otherwise maintain."""
    now = timezone.now()
    labels = [
        TrainingLabel(
            patient=patient,
            as_of=now - timedelta(days=30, minutes=i),
            feature_set_version=FEATURE_SET_VERSION,
            features=dict(features),
            from_step=2,
            label=label,
            provenance=LabelProvenance.SIMULATED,
            source_ref=f"test:{seed}:{i}",
            created_at=now,
        )
        for i, (features, label) in enumerate(_synthetic_rows(n, seed))
    ]
    TrainingLabel.objects.bulk_create(labels)
    assert {label.label for label in labels} == set(CLASS_ORDER)


@pytest.fixture(scope="session")
def fitted_model_cache() -> FittedModelCache:
    return FittedModelCache()


@pytest.fixture
def fit_once_per_session(fitted_model_cache: FittedModelCache, monkeypatch: pytest.MonkeyPatch) -> FittedModelCache:
    """Training in this test reuses a fit an earlier test made from the same rows, family, parameters and seed
    (tests/inference/training_cache.py says why that is sound). Tests of training itself do not use it."""
    monkeypatch.setattr(
        "inference.services.training.model_train", fitted_model_cache.wrap(inference.training.model_train)
    )
    return fitted_model_cache


@pytest.fixture
def trained_model(patient: Patient, ml_engineer: User, fit_once_per_session: FittedModelCache) -> ModelVersion:
    _synthetic_labels(patient)
    snapshot = dataset_snapshot_create(actor=ml_engineer)
    run = training_run_create(actor=ml_engineer, snapshot=snapshot, seed=11)
    run = training_run_execute(run_id=run.pk)
    return run.model_version  # type: ignore[no-any-return]


def model_approve(version: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """Both e-signed sign-offs (DESIGN §3), the safety officer acknowledging any "needs full review" findings
    (a one-patient fixture cannot judge fairness, and no change-control plan exists): the version is approved."""
    model_signoff_create(actor=ml_engineer, version=version, password=PASSWORD)
    model_signoff_create(actor=safety_officer, version=version, password=PASSWORD, acknowledge_full_review=True)
    return ModelVersion.objects.get(pk=version.pk)


@pytest.fixture
def deployed_model(trained_model: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """The trained model, signed off by both roles and serving on production (which takes only approved versions)."""
    approved = model_approve(trained_model, ml_engineer, safety_officer)
    serving_pointer_set(arm="production", version=approved, actor=ml_engineer, reason="test")
    return approved


def pending_recommendation_make(patient: Patient) -> Recommendation:
    """A major proposal waiting for review: three high readings are too few to act on alone."""
    readings_add(patient, [(168, 99)] * 3)
    rec = evaluation_run(patient=patient)
    assert rec is not None
    assert rec.status == RecommendationStatus.PENDING_REVIEW
    return rec


@pytest.fixture
def pending_recommendation(patient: Patient, deployed_model: ModelVersion) -> Recommendation:
    return pending_recommendation_make(patient)


@pytest.fixture
def emergency_clinician(patient: Patient, unassigned_clinician: User) -> User:
    """The unassigned clinician, holding an unexpired break-glass grant to `patient`."""
    break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering a P0 alert overnight")
    return unassigned_clinician


@pytest.fixture
def administrator(db: None) -> User:
    """A Django superuser: the one who manages care teams, enrolment and roles in the admin."""
    return UserFactory(username="admin", role="", is_superuser=True, is_staff=True)


def audit_actions(**filters: Any) -> list[str]:
    from clinaiops.audit.models import AuditEvent

    return list(AuditEvent.objects.filter(**filters).order_by("seq").values_list("action", flat=True))
