"""Helpers for the lifecycle tests: a labelled cohort diverse enough for the fairness gate to judge, and a
one-call training run."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.core.models import Role, User
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION
from inference.models import LabelProvenance, ModelVersion, TrainingLabel
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create, training_run_execute
from tests.factories import PatientFactory, UserFactory

DARK_TONE = 5


def cohort_patients() -> list[Patient]:
    """16 patients: every combination of sex, race/ethnicity, a light and a dark skin tone, and two age bands,
    so each sensitive attribute has two groups large enough to judge. Skin tone is independent of the rest."""
    patients = []
    combos = itertools.product(("female", "male"), ("white", "black"), (2, DARK_TONE), (1965, 1955))
    for i, (sex, race, tone, born) in enumerate(combos):
        user = UserFactory(username=f"cohort{i:02d}", role=Role.PATIENT)
        patients.append(
            PatientFactory(user=user, code=f"P-C{i:03d}", sex=sex, race_ethnicity=race, skin_tone=tone, birth_year=born)
        )
    return patients


def cohort_labels(
    patients: list[Patient],
    *,
    n: int = 1600,
    seed: int = 5,
    biased_against_dark_skin: bool = False,
    label_noise: float = 0.0,
    tag: str = "cohort",
) -> None:
    """Labelled rows following a guideline-like rule (SBP ≥ 142 → increase, < 108 → decrease, else maintain).

    Night readings come from a PPG wearable whose bias (fixtures' documented one, exaggerated) flattens the
    measured nocturnal dip on dark skin: a feature that identifies the group without being a sensitive
    attribute. With `biased_against_dark_skin`, the labels are biased too: dark-skinned patients who need an
    increase were told to maintain. A model trained on that learns to withhold increases from the group."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    rows = []
    for i in range(n):
        patient = patients[i % len(patients)]
        dark = patient.skin_tone == DARK_TONE
        sbp = float(rng.uniform(95, 175))
        dbp = sbp * 0.6 + float(rng.normal(0, 3))
        label = "increase" if sbp >= 142 else "decrease" if sbp < 108 else "maintain"
        if biased_against_dark_skin and dark and label == "increase":
            label = "maintain"
        if label_noise and rng.random() < label_noise:
            label = str(rng.choice(["decrease", "maintain", "increase"]))
        features = dict.fromkeys(FEATURE_NAMES, 0.0)
        features.update(
            sbp_mean_7d=sbp,
            dbp_mean_7d=dbp,
            sbp_excess_7d=sbp - 130,
            dbp_excess_7d=dbp - 80,
            sbp_sd_14d=float(rng.uniform(3, 12)),
            frac_above_target_14d=float(np.clip((sbp - 120) / 40, 0, 1)),
            frac_low_14d=float(max(0.0, (110 - sbp) / 30)) if sbp < 110 else 0.0,
            wearable_sbp_mean_7d=sbp - float(rng.normal(8.0 if dark else 0.0, 1.0)),
            wearable_readings_7d=7.0,
            hr_mean_7d=70.0,
            readings_7d=float(rng.integers(6, 15)),
            adherence_14d=float(rng.uniform(0.6, 1)),
            current_step=float(rng.integers(1, 6)),
            days_since_change=float(rng.integers(7, 60)),
            age=float(now.year - patient.birth_year),
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
                source_ref=f"{tag}:{seed}:{i}",
                created_at=now,
            )
        )
    TrainingLabel.objects.bulk_create(rows)


def train(
    actor: User, *, family: str = "logistic", seed: int = 0, params: dict[str, Any] | None = None
) -> ModelVersion:
    """Snapshot every label, train, run the gates and register: the version as registered."""
    snapshot = dataset_snapshot_create(actor=actor)
    run = training_run_create(actor=actor, snapshot=snapshot, family=family, params=params, seed=seed)
    run = training_run_execute(run_id=run.pk)
    return ModelVersion.objects.get(sha256=run.model_sha256)
