"""US Core vital-sign Observations read into VitalSigns (clinaiops/loops/services/fhir_ingest.py).

Parsed and validated by `fhir.resources` (R4B models; R4B and R4 share the Observation, Bundle and OperationOutcome
structure used here), then checked against the two US Core profiles this API takes:
- Blood Pressure (http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure): LOINC 85354-9, with the
  components 8480-6 (systolic) and 8462-4 (diastolic);
- Heart Rate (…/us-core-heart-rate): LOINC 8867-4, valueQuantity in `/min`.

Units are UCUM (system http://unitsofmeasure.org; the `code` is read, or `unit` when no code is sent): `mm[Hg]`, or
`kPa`, converted ×7.50062 and rounded half up to whole mmHg. The effective time is `effectiveDateTime` (or
`effectiveInstant`) with a UTC offset, inside the API's plausible window; its offset is kept. The subject is
`Patient/<code>`. The reading's source comes from the device (reading_source_for). Every problem is an issue naming
its element; none repeats a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.quantity import Quantity
from pydantic import ValidationError

from clinaiops.api.fhir.outcome import FhirIssue, FhirRefused, error, validation_issues
from clinaiops.api.serializers import plausible_time_window
from clinaiops.care.models import Patient, ReadingSource
from clinaiops.core.errors import PermissionRefused
from clinaiops.core.models import User
from clinaiops.loops.services.fhir_ingest import VitalSign, VitalSignKind, fhir_subject_resolve

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
BLOOD_PRESSURE_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
HEART_RATE = "8867-4"
PROFILE_BLOOD_PRESSURE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"
PROFILE_HEART_RATE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-heart-rate"

# mmHg per unit; kPa → mmHg is 760 / 101.325 (the standard atmosphere).
_PRESSURE_UNITS = {"mm[Hg]": Decimal(1), "kPa": Decimal("7.50062")}
_RATE_UNITS = {"/min": Decimal(1)}
# Far beyond any plausible vital sign: refused here so that the conversion cannot overflow; the plausible ranges
# themselves are reading_ingest's (clinaiops/care/validation.py), which names the exact bounds.
_VALUE_CEILING = Decimal(10_000)
_ACCEPTED_STATUSES = {"final", "amended", "corrected"}
_SUBJECT = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
_IF_NONE_EXIST = re.compile(r"identifier=([^|&=\s]*)\|([^|&=\s]+)")
MAX_IDENTIFIER_LENGTH = 255

# The reading's source from the device (ReadingSource): a contained Device's SNOMED CT type, else keywords in the
# device's names and type text (Observation.device.display, Device.deviceName, Device.type); a blood-pressure
# panel with no device says nothing else and is a home cuff.
_SNOMED_SOURCES = {
    # Sphygmomanometers and non-invasive BP monitors (the US Core / CIMI blood-pressure device value set).
    "309641003": ReadingSource.CUFF,
    "309642005": ReadingSource.CUFF,
    "258057004": ReadingSource.CUFF,
    "466093008": ReadingSource.CUFF,
    "466086009": ReadingSource.CUFF,
    "466139008": ReadingSource.CUFF,
    "86184003": ReadingSource.ECG,  # electrocardiographic monitor and recorder
}
_SOURCE_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (ReadingSource.ECG, ("ecg", "ekg", "electrocardiog")),
    (ReadingSource.PPG, ("ppg", "photoplethysmo", "wearable", "watch", "oximeter")),
    (ReadingSource.MANUAL, ("manual",)),
    (ReadingSource.CUFF, ("cuff", "sphygmomanometer", "blood pressure monitor")),
)


@dataclass
class SubjectScope:
    """The patients one request's resources name, resolved once each (a denial is audited once per request)."""

    actor: User
    resolved: dict[str, Patient | None] = field(default_factory=dict)

    def patient(self, code: str) -> Patient | None:
        if code not in self.resolved:
            try:
                self.resolved[code] = fhir_subject_resolve(actor=self.actor, code=code)
            except PermissionRefused:
                self.resolved[code] = None
        return self.resolved[code]


@dataclass(frozen=True)
class ParsedObservation:
    sign: VitalSign
    # Where each reading field came from, to name the element when reading_ingest refuses it.
    paths: dict[str, str]


def _has_code(concept: Any, system: str, code: str) -> bool:
    return any(c.system == system and c.code == code for c in (getattr(concept, "coding", None) or []))


def _keyword_source(texts: list[str]) -> str | None:
    words = " ".join(texts).lower()
    for source, keywords in _SOURCE_KEYWORDS:
        if any(keyword in words for keyword in keywords):
            return str(source)
    return None


def reading_source_for(observation: Observation) -> str:
    """cuff, ppg, ecg or manual, from Observation.device (see _SNOMED_SOURCES and _SOURCE_KEYWORDS); cuff when the
    device says nothing."""
    device_ref = observation.device
    if device_ref is None:
        return str(ReadingSource.CUFF)
    texts = [device_ref.display or ""]
    reference = device_ref.reference or ""
    if reference.startswith("#"):
        for resource in observation.contained or []:
            if getattr(resource, "id", None) != reference[1:] or resource.get_resource_type() != "Device":
                continue
            device_type = getattr(resource, "type", None)
            for coding in getattr(device_type, "coding", None) or []:
                if coding.system == SNOMED and coding.code in _SNOMED_SOURCES:
                    return str(_SNOMED_SOURCES[coding.code])
                texts.append(coding.display or "")
            texts.append(getattr(device_type, "text", None) or "")
            texts.extend(name.name or "" for name in getattr(resource, "deviceName", None) or [])
    return _keyword_source(texts) or str(ReadingSource.CUFF)


def _quantity(
    quantity: Quantity | None, path: str, units: dict[str, Decimal], issues: list[FhirIssue], unit_words: str
) -> int | None:
    """The quantity in the base unit, rounded half up; None with an issue when it is missing or refused."""
    if quantity is None or quantity.value is None:
        issues.append(error("required", "A value with its unit is required.", f"{path}.value"))
        return None
    if quantity.system is not None and quantity.system != UCUM:
        issues.append(error("value", f"Use UCUM units (system {UCUM}).", f"{path}.system"))
        return None
    element = "code" if quantity.code is not None else "unit"
    unit = quantity.code if quantity.code is not None else quantity.unit
    factor = units.get(str(unit)) if unit is not None else None
    if factor is None:
        issues.append(error("value", f"The unit is not accepted: use the UCUM unit {unit_words}.", f"{path}.{element}"))
        return None
    value = Decimal(str(quantity.value))
    if not value.is_finite() or not Decimal(0) <= value <= _VALUE_CEILING:
        issues.append(error("value", "The value is not plausible.", f"{path}.value"))
        return None
    try:
        return int((value * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        issues.append(error("value", "The value is not plausible.", f"{path}.value"))
        return None


def _effective(observation: Observation, prefix: str, issues: list[FhirIssue]) -> tuple[datetime | None, str]:
    value: Any
    if observation.effectiveInstant is not None:
        value, path = observation.effectiveInstant, f"{prefix}.effectiveInstant"
    else:
        value, path = observation.effectiveDateTime, f"{prefix}.effectiveDateTime"
    if value is None:
        issues.append(error("required", "Send effectiveDateTime: the time of the measurement.", path))
        return None, path
    if not isinstance(value, datetime) or value.tzinfo is None:
        issues.append(error("value", "Send a date and time with its UTC offset, e.g. 2026-11-21T07:30:00Z.", path))
        return None, path
    try:
        value.astimezone(UTC)  # 0001-01-01T00:00:00+14:00 is before the first representable instant
    except (OverflowError, ValueError):
        issues.append(error("value", "Not a real date and time.", path))
        return None, path
    past, future = plausible_time_window()
    now = timezone.now()
    if value > now + future:
        issues.append(error("value", "The time is in the future; check the device clock.", path))
        return None, path
    if value < now - past:
        issues.append(error("value", f"The time is more than {past.days} days ago; check the device clock.", path))
        return None, path
    return value, path


def _identifier(
    observation: Observation, prefix: str, if_none_exist: str | None, if_none_exist_path: str, issues: list[FhirIssue]
) -> tuple[str, bool]:
    """("system|value", conditional): the identifier to store, and whether a match answers without a write."""
    own = [f"{i.system or ''}|{i.value}" for i in observation.identifier or [] if i.value]
    if if_none_exist is None:
        identifier = own[0] if own else ""
        if len(identifier) > MAX_IDENTIFIER_LENGTH:
            issues.append(error("value", "The identifier is too long.", f"{prefix}.identifier[0]"))
            return "", False
        return identifier, False
    match = _IF_NONE_EXIST.fullmatch(if_none_exist)
    if match is None:
        issues.append(
            error("not-supported", "Conditional create takes identifier=system|value only.", if_none_exist_path)
        )
        return "", False
    identifier = f"{match.group(1)}|{match.group(2)}"
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        issues.append(error("value", "The identifier is too long.", if_none_exist_path))
        return "", False
    if own and identifier not in own:
        issues.append(
            error("invalid", "ifNoneExist names an identifier the resource does not carry.", if_none_exist_path)
        )
        return "", False
    return identifier, True


def _component(observation: Observation, code: str) -> tuple[int, Any] | None:
    for index, component in enumerate(observation.component or []):
        if _has_code(component.code, LOINC, code):
            return index, component
    return None


def observation_parse(
    raw: Any,
    *,
    prefix: str,
    scope: SubjectScope,
    if_none_exist: str | None = None,
    if_none_exist_path: str = "",
) -> ParsedObservation:
    """A US Core blood-pressure or heart-rate Observation as a VitalSign, or FhirRefused with every issue found
    (403 when the subject is out of reach, whatever else is wrong)."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "Observation":
        raise FhirRefused(
            [error("not-supported", "Only Observation resources are accepted here.", f"{prefix}.resourceType")]
        )
    try:
        observation = Observation.model_validate(raw)
    except ValidationError as exc:
        raise FhirRefused(validation_issues(exc, prefix)) from None
    except (LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # The library raises these for what its models cannot represent (a contained resource of an unknown type).
        raise FhirRefused([error("structure", "The resource could not be read as an Observation.", prefix)]) from exc
    issues: list[FhirIssue] = []
    if observation.status not in _ACCEPTED_STATUSES:
        issues.append(error("value", "Only final, amended or corrected Observations are accepted.", f"{prefix}.status"))
    if _has_code(observation.code, LOINC, BLOOD_PRESSURE_PANEL):
        kind = VitalSignKind.BLOOD_PRESSURE
    elif _has_code(observation.code, LOINC, HEART_RATE):
        kind = VitalSignKind.HEART_RATE
    else:
        raise FhirRefused(
            [
                error(
                    "not-supported",
                    f"Only US Core blood pressure (LOINC {BLOOD_PRESSURE_PANEL}) and heart rate (LOINC {HEART_RATE}) "
                    "are accepted.",
                    f"{prefix}.code",
                )
            ]
        )
    taken_at, taken_at_path = _effective(observation, prefix, issues)
    paths = {"taken_at": taken_at_path}
    values: dict[str, int | None] = {}
    if kind == VitalSignKind.BLOOD_PRESSURE:
        for name, code in (("systolic", SYSTOLIC), ("diastolic", DIASTOLIC)):
            found = _component(observation, code)
            if found is None:
                issues.append(
                    error("required", f"The {name} component (LOINC {code}) is required.", f"{prefix}.component")
                )
                values[name] = None
                continue
            index, component = found
            path = f"{prefix}.component[{index}].valueQuantity"
            paths[name] = f"{path}.value"
            values[name] = _quantity(component.valueQuantity, path, _PRESSURE_UNITS, issues, "mm[Hg] or kPa")
    else:
        path = f"{prefix}.valueQuantity"
        paths["heart_rate"] = f"{path}.value"
        values["heart_rate"] = _quantity(observation.valueQuantity, path, _RATE_UNITS, issues, "/min")
    identifier, conditional = _identifier(observation, prefix, if_none_exist, if_none_exist_path, issues)
    paths["identifier"] = if_none_exist_path if conditional else f"{prefix}.identifier"
    patient = _subject(observation, prefix, scope, issues)
    if issues:
        forbidden = any(issue.code == "forbidden" for issue in issues)
        raise FhirRefused(issues, status=403 if forbidden else 400, code="forbidden" if forbidden else "fhir_invalid")
    assert patient is not None
    assert taken_at is not None
    offset = taken_at.utcoffset()
    sign = VitalSign(
        patient=patient,
        kind=kind,
        taken_at=taken_at,
        utc_offset_minutes=int(offset.total_seconds() // 60) if offset is not None else None,
        source=reading_source_for(observation),
        identifier=identifier,
        conditional=conditional,
        systolic=values.get("systolic"),
        diastolic=values.get("diastolic"),
        heart_rate=values.get("heart_rate"),
    )
    return ParsedObservation(sign=sign, paths=paths)


def _subject(observation: Observation, prefix: str, scope: SubjectScope, issues: list[FhirIssue]) -> Patient | None:
    reference = observation.subject.reference if observation.subject is not None else None
    match = _SUBJECT.fullmatch(reference or "")
    if match is None:
        issues.append(error("required", "The subject is required, as Patient/<code>.", f"{prefix}.subject.reference"))
        return None
    patient = scope.patient(match.group(1))
    if patient is None:
        issues.append(
            error("forbidden", "The subject is not a patient this account may post readings for.", f"{prefix}.subject")
        )
    return patient
