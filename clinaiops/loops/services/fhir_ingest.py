"""FHIR vital signs into readings: US Core blood-pressure panels and heart rates, from the FHIR API
(clinaiops/api/fhir/), through the one reading-ingest service (safety rules, audit, evaluation).

The API parses and validates the resources; this module decides what they do to the record:
- a blood-pressure panel is a reading, stored by `reading_ingest`, with the heart rate of a heart-rate Observation of
  the same patient and time in the same Bundle;
- a heart rate that comes later fills the heart rate of the reading at that time (`reading_heart_rate_fill`,
  audited); one with no reading at that time stores nothing and says so (a heart rate alone is not a reading);
- a resend stores nothing twice: the sender's identifier (conditional create, `ifNoneExist`) or the natural key
  (patient, time, source) finds the stored reading;
- a transaction is all-or-nothing, and its refusal is audited once, after the rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record_denied
from clinaiops.care.models import Alert, AlertStatus, Patient, Reading
from clinaiops.care.selectors import reading_with_identifier
from clinaiops.care.services import ReadingInput
from clinaiops.care.validation import HR_RANGE
from clinaiops.core.errors import ApplicationError, Conflict, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.loops.services.ingest import reading_ingest, reading_ingested_record

# At most this many characters of element paths in the audit of a refused transaction.
_AUDIT_REASON_LIMIT = 500


class VitalSignKind(StrEnum):
    BLOOD_PRESSURE = "blood_pressure"
    HEART_RATE = "heart_rate"


@dataclass(frozen=True)
class VitalSign:
    """One Observation, parsed and converted (mmHg, beats per minute), for a patient the sender may post for."""

    patient: Patient
    kind: VitalSignKind
    taken_at: datetime
    utc_offset_minutes: int | None
    source: str
    # "system|value" of the Observation's identifier ("" when none); with `conditional` (ifNoneExist), a stored
    # reading with this identifier answers the create without a write, whatever its values.
    identifier: str = ""
    conditional: bool = False
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None


class VitalSignOutcome(StrEnum):
    CREATED = "created"  # a new reading
    UNCHANGED = "unchanged"  # already stored: a resend, or a conditional create that matched
    UPDATED = "updated"  # a heart rate filled the reading at its time
    NOT_STORED = "not_stored"  # a heart rate with no reading at its time


@dataclass(frozen=True)
class VitalSignResult:
    outcome: VitalSignOutcome
    reading: Reading | None = None
    # The open safety alert of each finding on this reading: what the sender must pass on, with guidance.
    open_alerts: list[Alert] = field(default_factory=list)


class VitalSignRefused(Exception):
    """A transaction refused because of the vital sign at `index` (the Bundle entry); nothing was stored."""

    def __init__(self, index: int, error: ApplicationError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


# --- Who may post for whom ------------------------------------------------------------------------------


def fhir_subject_resolve(*, actor: User, code: str) -> Patient:
    """The patient `Patient/<code>` names, if `actor` may post for them: the patient themself, or a device gateway
    on the patient's care team. Otherwise PermissionRefused, the same for a patient who does not exist as for one
    out of reach (no oracle), and the attempt is audited."""
    patients = Patient.objects.select_related("care_team")
    patient: Patient | None = None
    if actor.role == Role.PATIENT:
        patient = patients.filter(user=actor, code=code).first()
    elif actor.role == Role.DEVICE_GATEWAY:
        patient = patients.filter(code=code, care_team__members=actor).first()
    if patient is not None:
        return patient
    target = Patient.objects.filter(code=code).values_list("pk", flat=True).first()
    audit_record_denied(
        action=AuditAction.ACCESS_DENIED, object_type="patient", object_id=target or "", actor=actor,
        reason="fhir_subject_not_allowed",
    )  # fmt: skip
    raise PermissionRefused("The subject is not a patient this account may post readings for.")


# --- Storing ----------------------------------------------------------------------------------------------


def heart_rates_paired(signs: Sequence[VitalSign]) -> dict[int, int]:
    """{blood-pressure index: heart-rate index} for the heart rates of the same patient and instant as a panel
    in the same Bundle; each panel takes at most one heart rate, the first."""
    panels: dict[tuple[int, datetime], int] = {}
    for index, sign in enumerate(signs):
        if sign.kind == VitalSignKind.BLOOD_PRESSURE:
            panels.setdefault((sign.patient.pk, sign.taken_at), index)
    paired: dict[int, int] = {}
    for index, sign in enumerate(signs):
        if sign.kind != VitalSignKind.HEART_RATE:
            continue
        panel = panels.get((sign.patient.pk, sign.taken_at))
        if panel is not None and panel not in paired:
            paired[panel] = index
    return paired


def _heart_rate_check(*, actor: User, patient: Patient, heart_rate: int) -> None:
    """The plausibility rule of care/validation.py, refused and audited as reading_ingest refuses (field names)."""
    if not HR_RANGE[0] <= heart_rate <= HR_RANGE[1]:
        audit_record_denied(
            action=AuditAction.READING_REFUSED, object_type="patient", object_id=patient.pk, actor=actor,
            reason="implausible:heart_rate",
        )  # fmt: skip
        raise ValidationFailed(
            "The reading is not plausible and was not stored.",
            fields={"heart_rate": [f"Heart rate must be between {HR_RANGE[0]} and {HR_RANGE[1]} beats per minute."]},
        )


def reading_heart_rate_fill(
    *, actor: User, patient: Patient, taken_at: datetime, heart_rate: int, source: str, now: datetime | None = None
) -> VitalSignResult:
    """Fill the heart rate of the patient's reading at `taken_at` (a heart-rate Observation sent after its
    blood-pressure panel): `Reading.heart_rate` and `updated_at` change and the change is audited (values as a
    keyed digest). No reading at that time: nothing is stored (NOT_STORED). The same heart rate again changes
    nothing; a different one where the reading has one already is a conflict, not an overwrite."""
    _heart_rate_check(actor=actor, patient=patient, heart_rate=heart_rate)
    now = now or timezone.now()
    with transaction.atomic():
        candidates = list(Reading.objects.select_for_update().filter(patient=patient, taken_at=taken_at).order_by("pk"))
        if not candidates:
            return VitalSignResult(outcome=VitalSignOutcome.NOT_STORED)
        # Two devices can measure at one instant; the heart rate belongs with its own device's panel if there is one.
        reading = next((r for r in candidates if r.source == source), candidates[0])
        if reading.heart_rate == heart_rate:
            return VitalSignResult(outcome=VitalSignOutcome.UNCHANGED, reading=reading)
        if reading.heart_rate is not None:
            raise Conflict(
                "The reading at this time already has a different heart rate.",
                fields={"heart_rate": ["Already recorded for this reading."]},
            )
        # taken_at too: the update then reads only the reading's month partition.
        Reading.objects.filter(pk=reading.pk, taken_at=reading.taken_at).update(heart_rate=heart_rate, updated_at=now)
        reading.heart_rate, reading.updated_at = heart_rate, now
        reading_ingested_record(actor=actor, reading=reading, update="heart_rate")
        return VitalSignResult(outcome=VitalSignOutcome.UPDATED, reading=reading)


def _reading_existing(sign: VitalSign) -> Reading | None:
    if sign.identifier:
        # Through the identifier's own unique key, which holds across the months care_reading is partitioned by.
        found = reading_with_identifier(patient=sign.patient, identifier=sign.identifier)
        if found is not None:
            return found
    return Reading.objects.filter(patient=sign.patient, taken_at=sign.taken_at, source=sign.source).first()


def _alerts_open_for(reading: Reading) -> list[Alert]:
    return list(Alert.objects.filter(reading=reading, status=AlertStatus.OPEN).order_by("pk"))


def _blood_pressure_ingest(
    *, actor: User, sign: VitalSign, heart_rate: int | None, now: datetime | None
) -> VitalSignResult:
    """A panel: stored by reading_ingest, or answered by the reading already stored for it. The stored reading's
    heart rate may have been filled since (by a later heart rate), so a resend is matched on its own values."""
    assert sign.systolic is not None
    assert sign.diastolic is not None
    existing = _reading_existing(sign)
    if existing is not None:
        matched = sign.conditional and existing.identifier == sign.identifier
        if not matched and (existing.systolic, existing.diastolic) != (sign.systolic, sign.diastolic):
            field_name = "identifier" if sign.identifier and existing.identifier == sign.identifier else "taken_at"
            raise Conflict(
                "A different reading is already stored for this measurement.",
                fields={field_name: ["Already used by another reading."]},
            )
        if heart_rate is not None and existing.heart_rate != heart_rate:
            filled = reading_heart_rate_fill(
                actor=actor, patient=sign.patient, taken_at=existing.taken_at, heart_rate=heart_rate,
                source=existing.source, now=now,
            )  # fmt: skip
            return VitalSignResult(
                outcome=filled.outcome, reading=filled.reading, open_alerts=_alerts_open_for(existing)
            )
        return VitalSignResult(
            outcome=VitalSignOutcome.UNCHANGED, reading=existing, open_alerts=_alerts_open_for(existing)
        )
    result = reading_ingest(
        actor=actor,
        patient=sign.patient,
        data=ReadingInput(
            taken_at=sign.taken_at,
            systolic=sign.systolic,
            diastolic=sign.diastolic,
            heart_rate=heart_rate,
            source=sign.source,
            utc_offset_minutes=sign.utc_offset_minutes,
            identifier=sign.identifier,
        ),
        now=now,
    )
    if not result.created:  # a concurrent resend stored it first
        return VitalSignResult(
            outcome=VitalSignOutcome.UNCHANGED, reading=result.reading, open_alerts=_alerts_open_for(result.reading)
        )
    return VitalSignResult(outcome=VitalSignOutcome.CREATED, reading=result.reading, open_alerts=result.open_alerts)


def _vital_signs_store(
    *, actor: User, signs: Sequence[VitalSign], now: datetime | None, all_or_nothing: bool
) -> list[VitalSignResult | ApplicationError]:
    """Panels first (each with its paired heart rate), then the heart rates that were not paired or whose panel
    was refused; the results in the order of `signs`."""
    paired = heart_rates_paired(signs)
    results: dict[int, VitalSignResult | ApplicationError] = {}

    def attempt(index: int, store: Callable[[], VitalSignResult]) -> VitalSignResult | ApplicationError:
        try:
            return store()
        except ApplicationError as exc:
            if all_or_nothing:
                raise VitalSignRefused(index, exc) from exc
            return exc

    for index, sign in enumerate(signs):
        if sign.kind != VitalSignKind.BLOOD_PRESSURE:
            continue
        hr_index = paired.get(index)
        heart_rate = signs[hr_index].heart_rate if hr_index is not None else None
        results[index] = attempt(
            index, partial(_blood_pressure_ingest, actor=actor, sign=sign, heart_rate=heart_rate, now=now)
        )
        if hr_index is not None and isinstance(results[index], VitalSignResult):
            panel = results[index]
            assert isinstance(panel, VitalSignResult)
            results[hr_index] = VitalSignResult(outcome=panel.outcome, reading=panel.reading)
    for index, sign in enumerate(signs):
        if sign.kind != VitalSignKind.HEART_RATE or index in results:
            continue
        assert sign.heart_rate is not None
        fill = partial(
            reading_heart_rate_fill, actor=actor, patient=sign.patient, taken_at=sign.taken_at,
            heart_rate=sign.heart_rate, source=sign.source, now=now,
        )  # fmt: skip
        results[index] = attempt(index, fill)
    return [results[index] for index in range(len(signs))]


def vital_signs_transaction_ingest(
    *, actor: User, signs: Sequence[VitalSign], now: datetime | None = None
) -> list[VitalSignResult]:
    """A FHIR transaction: every vital sign stored, or none (VitalSignRefused names the first refused one). The
    refusal audits reading_ingest writes inside the transaction roll back with it; the refused transaction is
    audited once instead, after the rollback (fhir_transaction_refused_audit)."""
    try:
        with transaction.atomic():
            stored = _vital_signs_store(actor=actor, signs=signs, now=now, all_or_nothing=True)
    except VitalSignRefused as exc:
        fields = sorted(exc.error.fields) or [exc.error.code]
        fhir_transaction_refused_audit(actor=actor, elements=[f"entry[{exc.index}]:{name}" for name in fields])
        raise
    return [result for result in stored if isinstance(result, VitalSignResult)]


def vital_signs_batch_ingest(
    *, actor: User, signs: Sequence[VitalSign], now: datetime | None = None
) -> list[VitalSignResult | ApplicationError]:
    """A FHIR batch: each vital sign stored or refused on its own (each in its own transaction)."""
    return _vital_signs_store(actor=actor, signs=signs, now=now, all_or_nothing=False)


def fhir_transaction_refused_audit(*, actor: User, elements: Sequence[str]) -> None:
    """Audit a refused FHIR transaction once: which entries and elements were at fault, never their values."""
    reason = "fhir_transaction:" + ",".join(elements)
    audit_record_denied(
        action=AuditAction.READING_REFUSED, object_type="fhir_bundle", actor=actor,
        reason=reason[:_AUDIT_REASON_LIMIT],
    )  # fmt: skip
