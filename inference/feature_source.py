"""Loads a patient's records into a FeatureWindow: the Django side of the one feature module."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.db.models import Count, IntegerField, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from clinaiops.care.models import DoseLog, Patient, Reading, RegimenChange
from inference.features import WINDOW_DAYS, FeatureWindow, feature_vector


def feature_window_load(*, patient: Patient, as_of: datetime, current_step: int | None = None) -> FeatureWindow:
    """The patient's last WINDOW_DAYS of readings, dose log counts and last regimen change, as of `as_of`.

    One query on the hot path (issue 13): the dose counts and the last change ride on every reading row as
    uncorrelated scalar subqueries, which PostgreSQL and SQLite evaluate once per statement, not once per row. A
    window without readings (no row to ride on) reads them in a second query."""
    start = as_of - timedelta(days=WINDOW_DAYS)
    doses = DoseLog.objects.filter(patient_id=patient.pk, day__gt=start.date(), day__lte=as_of.date())
    changes = RegimenChange.objects.filter(patient_id=patient.pk, changed_at__lte=as_of).order_by("-changed_at")
    rows = list(
        Reading.objects.filter(patient_id=patient.pk, taken_at__gt=start, taken_at__lte=as_of)
        .annotate(
            doses_logged=_count(doses),
            doses_taken=_count(doses.filter(taken=True)),
            last_change_at=Subquery(changes.values("changed_at")[:1]),
        )
        .order_by("taken_at")
        .values_list(
            "taken_at", "systolic", "diastolic", "heart_rate", "source", "doses_logged", "doses_taken",
            "last_change_at",
        )
    )  # fmt: skip
    if rows:
        doses_logged, doses_taken, last_change = rows[0][5], rows[0][6], rows[0][7]
    else:
        counts = doses.aggregate(logged=Count("pk"), taken=Count("pk", filter=Q(taken=True)))
        doses_logged, doses_taken = counts["logged"], counts["taken"]
        last_change = changes.values_list("changed_at", flat=True).first()
    return FeatureWindow(
        as_of=as_of,
        taken_at=np.array([r[0].timestamp() for r in rows], dtype=np.float64),
        hour_of_day=np.array([r[0].hour for r in rows], dtype=np.int64),
        systolic=np.array([r[1] for r in rows], dtype=np.float64),
        diastolic=np.array([r[2] for r in rows], dtype=np.float64),
        heart_rate=np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
        source=np.array([r[4] for r in rows], dtype=np.str_),
        doses_logged=doses_logged,
        doses_taken=doses_taken,
        current_step=patient.current_step if current_step is None else current_step,
        last_change_at=last_change,
        age=as_of.year - patient.birth_year,
        diabetes=patient.diabetes,
        ckd=patient.ckd,
        target_sbp=patient.target_sbp,
        target_dbp=patient.target_dbp,
    )


def _count(rows: QuerySet[DoseLog]) -> Coalesce:
    """COUNT(*) of `rows` as a scalar subquery (0, not NULL, when there are none)."""
    counted = rows.order_by().values("patient_id").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def features_for_patient(*, patient: Patient, as_of: datetime) -> dict[str, float]:
    return feature_vector(feature_window_load(patient=patient, as_of=as_of))
