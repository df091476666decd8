"""Loads a patient's records into a FeatureWindow: the Django side of the one feature module."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.db.models import Count, Q

from clinaiops.care.models import DoseLog, Patient, Reading, RegimenChange
from inference.features import WINDOW_DAYS, FeatureWindow, feature_vector


def feature_window_load(*, patient: Patient, as_of: datetime, current_step: int | None = None) -> FeatureWindow:
    start = as_of - timedelta(days=WINDOW_DAYS)
    rows = list(
        Reading.objects.filter(patient=patient, taken_at__gt=start, taken_at__lte=as_of)
        .order_by("taken_at")
        .values_list("taken_at", "systolic", "diastolic", "heart_rate", "source")
    )
    doses = DoseLog.objects.filter(patient=patient, day__gt=start.date(), day__lte=as_of.date()).aggregate(
        logged=Count("pk"), taken=Count("pk", filter=Q(taken=True))
    )  # one query for both counts
    last_change = (
        RegimenChange.objects.filter(patient=patient, changed_at__lte=as_of)
        .order_by("-changed_at")
        .values_list("changed_at", flat=True)
        .first()
    )
    return FeatureWindow(
        as_of=as_of,
        taken_at=np.array([r[0].timestamp() for r in rows], dtype=np.float64),
        hour_of_day=np.array([r[0].hour for r in rows], dtype=np.int64),
        systolic=np.array([r[1] for r in rows], dtype=np.float64),
        diastolic=np.array([r[2] for r in rows], dtype=np.float64),
        heart_rate=np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
        source=np.array([r[4] for r in rows], dtype=np.str_),
        doses_logged=doses["logged"],
        doses_taken=doses["taken"],
        current_step=patient.current_step if current_step is None else current_step,
        last_change_at=last_change,
        age=as_of.year - patient.birth_year,
        diabetes=patient.diabetes,
        ckd=patient.ckd,
        target_sbp=patient.target_sbp,
        target_dbp=patient.target_dbp,
    )


def features_for_patient(*, patient: Patient, as_of: datetime) -> dict[str, float]:
    return feature_vector(feature_window_load(patient=patient, as_of=as_of))
