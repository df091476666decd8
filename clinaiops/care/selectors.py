"""Reads of clinical records. Authorization is decided here, in querysets: an object outside the actor's
scope is simply not found (DESIGN §6)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from clinaiops.care.models import (
    Alert,
    AlertKind,
    AlertStatus,
    BreakGlassGrant,
    DoseLog,
    Patient,
    Reading,
    ReadingIdentifier,
    RegimenChange,
    Symptom,
)
from clinaiops.core.crypto.blind_index import (
    KIND_FAMILY_NAME,
    KIND_FULL_NAME,
    KIND_MRN,
    blind_index_candidates,
    mrn_normalise,
)
from clinaiops.core.errors import NotFound, ValidationFailed
from clinaiops.core.models import Role, User

# The pseudonymous patient code: "P-" and up to 14 letters or digits (P-0187).
PATIENT_CODE = re.compile(r"^P-[A-Z0-9]{1,14}$")

M = TypeVar("M", bound=Model)


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


def patient_get_by_mrn(*, user: User, mrn: str) -> Patient:
    """The patient with this MRN, if `user` may see them (the blind index; nothing is decrypted to find it). The
    errors never repeat the MRN: they reach screens, API answers and logs."""
    candidates = blind_index_candidates(KIND_MRN, [mrn])
    if not candidates:
        raise ValidationFailed("That is not an MRN.", fields={"mrn": ["An MRN is 4 to 20 letters and digits."]})
    patient = patient_list_visible(user=user).filter(mrn_index__in=candidates).first()
    if patient is None:
        raise NotFound("No patient you can see has that MRN.")
    return patient


def patient_search_visible(*, user: User, query: str) -> QuerySet[Patient]:
    """The patients `user` may see whose MRN, full name ("Given Family" or "Family, Given") or family name is
    exactly `query` once normalised (case, accents, punctuation and spacing do not matter), or whose code it is.
    Exact matches only: the blind index cannot do prefixes (clinaiops.core.crypto.blind_index)."""
    term = (query or "").strip()
    if not term:
        return Patient.objects.none()
    # Only a term shaped like a code is compared in the clear: anything else (a name, an MRN) would otherwise sit
    # in the SQL text, where the database's statement and slow-query logs keep it.
    matches = Q(code=term.upper()) if PATIENT_CODE.match(term.upper()) else Q(pk__in=[])
    if mrn_normalise(term) is not None:
        matches |= Q(mrn_index__in=blind_index_candidates(KIND_MRN, [term]))
    family, comma, given = term.partition(",")
    full_names = [term, f"{given} {family}"] if comma else [term]
    for name in full_names:
        matches |= Q(full_name_index__in=blind_index_candidates(KIND_FULL_NAME, [name]))
    matches |= Q(family_name_index__in=blind_index_candidates(KIND_FAMILY_NAME, [term]))
    return patient_list_visible(user=user).filter(matches)


def patient_for_user(*, user: User) -> Patient:
    """The account's own patient record, with its care team; NotFound for an account without one. The API's
    Bearer authentication loads both with the user (clinaiops.api.auth.token_user_get), and so does anything
    that went from a patient to its user: that record is reused rather than asked for again, and a relation
    cached as absent is as much an answer as a query."""
    relation = User.patient.related  # the reverse side of Patient.user
    if relation.is_cached(user):
        cached = relation.get_cached_value(user)
        if not isinstance(cached, Patient):  # None: loaded, and there is none
            raise NotFound("This account has no patient record.")
        return cached
    patient = Patient.objects.filter(user=user).select_related("care_team").first()
    if patient is None:
        raise NotFound("This account has no patient record.")
    return patient


def reading_list_own(*, user: User) -> QuerySet[Reading]:
    """A patient's own readings, newest first (the mobile API's list)."""
    return Reading.objects.filter(patient__user=user).order_by("-taken_at", "-pk")


def readings_between(*, patient: Patient, start: datetime, end: datetime) -> QuerySet[Reading]:
    return Reading.objects.filter(patient=patient, taken_at__gte=start, taken_at__lte=end).order_by("taken_at")


def readings_recent(*, patient: Patient, end: datetime, window: timedelta) -> QuerySet[Reading]:
    return readings_between(patient=patient, start=end - window, end=end)


def symptoms_recent(*, patient: Patient, end: datetime, window: timedelta) -> QuerySet[Symptom]:
    return Symptom.objects.filter(patient=patient, reported_at__gte=end - window, reported_at__lte=end)


def alerts_open_for(*, patient: Patient) -> QuerySet[Alert]:
    return Alert.objects.filter(patient=patient, status=AlertStatus.OPEN)


def alert_list_visible(*, user: User, status: str | None = AlertStatus.OPEN) -> QuerySet[Alert]:
    """Clinicians: the safety alerts of the patients they may see. Safety officers: the break-glass alerts
    (security, P1), whoever the patient, with the grant that says who accessed and why. A break-glass alert is
    not clinical work, so it never sits in a clinician's inbox."""
    if user.role == Role.SAFETY_OFFICER:
        alerts = Alert.objects.select_related("patient", "break_glass_grant__user").filter(kind=AlertKind.BREAK_GLASS)
    elif user.role == Role.CLINICIAN:
        alerts = (
            Alert.objects.select_related("patient")
            .filter(patient__in=patient_list_visible(user=user))
            .exclude(kind=AlertKind.BREAK_GLASS)
        )
    else:
        return Alert.objects.none()
    if status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-opened_at", "-pk")


def alert_get_visible(*, user: User, alert_id: int) -> Alert:
    alert = alert_list_visible(user=user, status=None).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


def alert_list_for_patient(*, patient: Patient, limit: int = 10) -> list[Alert]:
    """The patient's newest safety alerts, for the patient page (break-glass alerts are the safety officer's)."""
    return list(
        Alert.objects.filter(patient=patient).exclude(kind=AlertKind.BREAK_GLASS).order_by("-opened_at")[:limit]
    )


def regimen_changes_for(
    *, patient: Patient, since: datetime | None = None, limit: int | None = None
) -> list[RegimenChange]:
    changes = RegimenChange.objects.filter(patient=patient).order_by("-changed_at", "-pk")
    if since is not None:
        changes = changes.filter(changed_at__gte=since)
    return list(changes[:limit] if limit is not None else changes)


def break_glass_active(*, user: User, patient: Patient) -> BreakGlassGrant | None:
    return BreakGlassGrant.objects.filter(user=user, patient=patient, expires_at__gt=timezone.now()).first()


def doses_recent(*, patient: Patient, end: date, days: int) -> QuerySet[DoseLog]:
    """The patient's dose log for the `days` calendar days up to `end`, newest first (adherence history)."""
    return DoseLog.objects.filter(patient=patient, day__gt=end - timedelta(days=days), day__lte=end).order_by("-day")


# --- The patient's own alerts (issue 12, the mobile API's GET /alerts/) --------------------------------------


def alerts_for_patient_view(*, patient: Patient, status: str | None = AlertStatus.OPEN) -> QuerySet[Alert]:
    """The patient's own safety alerts, newest first: open ones by default, every status with `status=None`.
    Break-glass alerts are left out: they report a staff member's emergency access, are the safety officer's
    work, and the patient already reads that access, with who and why, in their accounting (/me/access-log/)."""
    alerts = Alert.objects.filter(patient=patient).exclude(kind=AlertKind.BREAK_GLASS)
    if status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-opened_at", "-pk")


# --- The patient mobile API's lists (issue 12) -------------------------------------------------------------
# They take the patient's id (from patient_for_user), so the list is one indexed query on (patient, ...), no join.


def reading_list_for_patient(
    *,
    patient_id: int,
    since: datetime | None = None,
    taken_from: datetime | None = None,
    taken_to: datetime | None = None,
) -> QuerySet[Reading]:
    """The patient's readings, newest taken first; with `since`, those stored or changed at or after it, oldest
    change first, so a client that pages through them and keeps the largest `updated_at` misses none."""
    readings = Reading.objects.filter(patient_id=patient_id)
    if taken_from is not None:
        readings = readings.filter(taken_at__gte=taken_from)
    if taken_to is not None:
        readings = readings.filter(taken_at__lte=taken_to)
    if since is not None:
        return readings.filter(updated_at__gte=since).order_by("updated_at", "pk")
    return readings.order_by("-taken_at", "-pk")


def _within(rows: QuerySet[M], field: str, low: object | None, high: object | None) -> QuerySet[M]:
    """`rows` with `field` between `low` and `high`, inclusive; either bound may be absent."""
    if low is not None:
        rows = rows.filter(**{f"{field}__gte": low})
    if high is not None:
        rows = rows.filter(**{f"{field}__lte": high})
    return rows


def symptom_list_for_patient(
    *, patient_id: int, reported_from: datetime | None = None, reported_to: datetime | None = None
) -> QuerySet[Symptom]:
    symptoms = _within(Symptom.objects.filter(patient_id=patient_id), "reported_at", reported_from, reported_to)
    return symptoms.order_by("-reported_at", "-pk")


def dose_list_for_patient(
    *, patient_id: int, day_from: date | None = None, day_to: date | None = None
) -> QuerySet[DoseLog]:
    return _within(DoseLog.objects.filter(patient_id=patient_id), "day", day_from, day_to).order_by("-day")


def reading_with_identifier(*, patient: Patient, identifier: str) -> Reading | None:
    """The patient's reading stored under the sender's identifier, whatever month it was taken in: one query, the
    side table's unique key joined to the reading by id."""
    claim = ReadingIdentifier.objects.select_related("reading").filter(patient=patient, identifier=identifier).first()
    return claim.reading if claim is not None else None


def alerts_open_for_reading(*, reading: Reading) -> list[Alert]:
    """The open safety alerts a reading raised: what a resend of it is told, since a resend runs no safety rule."""
    return list(Alert.objects.filter(reading=reading, status=AlertStatus.OPEN).exclude(kind=AlertKind.BREAK_GLASS))
