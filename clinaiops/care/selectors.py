"""Reads of clinical records. Authorization is decided here, in querysets: an object outside the actor's
scope is simply not found (DESIGN §6)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from clinaiops.care.models import Alert, AlertKind, AlertStatus, BreakGlassGrant, Patient, Reading, Symptom
from clinaiops.core.errors import NotFound
from clinaiops.core.models import Role, User


def patient_list_visible(*, user: User) -> QuerySet[Patient]:
    """Clinicians see their care teams' patients and any with an unexpired break-glass grant; patients see
    themselves; other roles see no patient records here."""
    patients = Patient.objects.select_related("care_team", "user")
    if user.role == Role.CLINICIAN:
        granted = BreakGlassGrant.objects.filter(user=user, expires_at__gt=timezone.now()).values("patient_id")
        return patients.filter(Q(care_team__members=user) | Q(pk__in=granted)).distinct()
    if user.role == Role.PATIENT:
        return patients.filter(user=user)
    return patients.none()


def patient_get_visible(*, user: User, patient_id: int) -> Patient:
    patient = patient_list_visible(user=user).filter(pk=patient_id).first()
    if patient is None:
        raise NotFound("No such patient.")
    return patient


def patient_for_user(*, user: User) -> Patient:
    patient = Patient.objects.filter(user=user).select_related("care_team").first()
    if patient is None:
        raise NotFound("This account has no patient record.")
    return patient


def readings_between(*, patient: Patient, start: datetime, end: datetime) -> QuerySet[Reading]:
    return Reading.objects.filter(patient=patient, taken_at__gte=start, taken_at__lte=end).order_by("taken_at")


def readings_recent(*, patient: Patient, end: datetime, window: timedelta) -> QuerySet[Reading]:
    return readings_between(patient=patient, start=end - window, end=end)


def symptoms_recent(*, patient: Patient, end: datetime, window: timedelta) -> QuerySet[Symptom]:
    return Symptom.objects.filter(patient=patient, reported_at__gte=end - window, reported_at__lte=end)


def alerts_open_for(*, patient: Patient) -> QuerySet[Alert]:
    return Alert.objects.filter(patient=patient, status=AlertStatus.OPEN)


def alert_list_visible(*, user: User, status: str | None = AlertStatus.OPEN) -> QuerySet[Alert]:
    """Clinicians: alerts for their patients. Safety officers: break-glass alerts, whoever the patient."""
    if user.role == Role.SAFETY_OFFICER:
        alerts = Alert.objects.select_related("patient").filter(kind=AlertKind.BREAK_GLASS)
    else:
        alerts = Alert.objects.select_related("patient").filter(patient__in=patient_list_visible(user=user))
    if status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-opened_at")


def break_glass_active(*, user: User, patient: Patient) -> BreakGlassGrant | None:
    return BreakGlassGrant.objects.filter(user=user, patient=patient, expires_at__gt=timezone.now()).first()
