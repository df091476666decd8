"""Patient–AI loop, first step: a reading or a symptom arrives, is stored exactly once, and the safety rules run
on it before any model (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_ledger_lock, audit_record, audit_record_denied
from clinaiops.care.models import Alert, AlertKind, AlertStatus, Patient, Reading, Symptom, SymptomKind, SymptomSeverity
from clinaiops.care.selectors import readings_recent, symptoms_recent
from clinaiops.care.services import ReadingInput, alert_open, autonomy_pause, reading_store, symptom_store
from clinaiops.core.errors import Conflict, ValidationFailed
from clinaiops.core.models import User
from clinaiops.loops.safety import CRISIS, HYPOTENSION, SafetyThresholds, is_low, safety_findings
from clinaiops.loops.services.evaluation_trigger import evaluation_if_due_on_commit
from governance.models import ApprovalPolicy
from governance.services import approval_policy_current

_SYMPTOMS_WITH_LOW_BP = (SymptomKind.DIZZINESS, SymptomKind.SYNCOPE)


def safety_thresholds(policy: ApprovalPolicy) -> SafetyThresholds:
    return SafetyThresholds(
        crisis_sbp=policy.crisis_sbp,
        crisis_dbp=policy.crisis_dbp,
        hypotension_sbp=policy.hypotension_sbp,
        hypotension_dbp=policy.hypotension_dbp,
        hypotension_min_readings=policy.hypotension_min_readings,
    )


@dataclass(frozen=True)
class IngestResult:
    reading: Reading
    created: bool
    # The alerts this reading opened.
    alerts: list[Alert] = field(default_factory=list)
    # The open alert for each of this reading's safety findings, opened by it or already open (a second crisis
    # reading while the first crisis is open): what the patient must be told about, with guidance.
    open_alerts: list[Alert] = field(default_factory=list)


def _alerts_raise_all(
    *, patient: Patient, findings: list[str], reading: Reading | None, now: datetime
) -> tuple[list[Alert], list[Alert]]:
    """(opened, open): the alerts opened now, and the open alert of every finding, new or not."""
    opened, still_open = [], []
    for finding in findings:
        kind = AlertKind.HYPERTENSIVE_CRISIS if finding == CRISIS else AlertKind.SUSTAINED_HYPOTENSION
        alert, created = alert_open(patient=patient, kind=kind, reading=reading, now=now)
        if created:
            opened.append(alert)
        still_open.append(alert)
        autonomy_pause(patient=patient, cause=finding)
    return opened, still_open


def reading_ingest(*, actor: User, patient: Patient, data: ReadingInput, now: datetime | None = None) -> IngestResult:
    """Validate and store a reading exactly once, then run the safety rules in the same transaction. An
    implausible reading stores nothing; the refusal itself is audited (field names only, no values)."""
    # Event-driven evaluation is for readings arriving now; a caller on its own clock (the demo's simulation, a
    # backfill) replays history and runs the evaluations of that history itself. EVALUATION_ON_READING switches it.
    live = now is None and settings.EVALUATION_ON_READING
    now = now or timezone.now()
    try:
        return _reading_ingest(actor=actor, patient=patient, data=data, now=now, live=live)
    except ValidationFailed as exc:
        audit_record_denied(
            action=AuditAction.READING_REFUSED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            reason="implausible:" + ",".join(sorted(exc.fields)),
        )
        raise


def reading_ingested_record(*, actor: User, reading: Reading, update: str = "") -> None:
    """The ledger's event for a stored reading, or for a later `update` of it (a FHIR heart rate filling its
    panel's reading): ids, the source and a keyed digest of the values, never the values."""
    payload: dict[str, object] = {
        "patient_id": reading.patient_id,
        "source": reading.source,
        "values_hmac": audit_digest([reading.systolic, reading.diastolic, reading.heart_rate]),
    }
    if update:
        payload["update"] = update
    audit_record(
        action=AuditAction.READING_INGESTED, object_type="reading", object_id=reading.pk, actor=actor, payload=payload
    )


def _reading_store_once(*, patient: Patient, data: ReadingInput, now: datetime) -> tuple[Reading, bool]:
    """A resend that races its original (a client retrying a POST whose answer it did not see) reaches the
    insert while the original's is uncommitted; PostgreSQL holds it on the unique key until the original commits,
    and then the `ON CONFLICT DO NOTHING` insert stores nothing. Its next statement sees the stored reading (READ
    COMMITTED) and answers with it, as a sequential resend is answered. Only when that row is not visible yet (an
    older snapshot) does reading_store say `duplicate_reading`, with this transaction intact: then it is asked once
    more. Different values at the same key are still a conflict."""
    try:
        return reading_store(patient=patient, data=data, now=now)
    except Conflict as exc:
        if exc.code != "duplicate_reading":
            raise
        return reading_store(patient=patient, data=data, now=now)


@transaction.atomic
def _reading_ingest(
    *, actor: User, patient: Patient, data: ReadingInput, now: datetime, live: bool = False
) -> IngestResult:
    reading, created = _reading_store_once(patient=patient, data=data, now=now)
    if not created:
        return IngestResult(reading=reading, created=False)
    reading_ingested_record(actor=actor, reading=reading)
    policy = approval_policy_current()
    thresholds = safety_thresholds(policy)
    window = timedelta(hours=policy.hypotension_window_hours)
    low_count = 0
    symptomatic = False
    if is_low(reading.systolic, reading.diastolic, thresholds):
        recent = readings_recent(patient=patient, end=reading.taken_at, window=window)
        low_count = sum(1 for r in recent.only("systolic", "diastolic") if is_low(r.systolic, r.diastolic, thresholds))
        symptomatic = (
            symptoms_recent(patient=patient, end=reading.taken_at + window, window=2 * window)
            .filter(kind__in=_SYMPTOMS_WITH_LOW_BP)
            .exists()
        )
    findings = safety_findings(
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        low_readings_in_window=low_count,
        symptomatic=symptomatic,
        t=thresholds,
    )
    alerts, open_alerts = _alerts_raise_all(patient=patient, findings=findings, reading=reading, now=now)
    if live:  # event-driven evaluation (issue 13): after the commit, so it adds no query to this transaction
        evaluation_if_due_on_commit(
            patient=patient, now=now, min_readings=policy.min_readings, window_days=policy.min_readings_window_days
        )
    return IngestResult(reading=reading, created=True, alerts=alerts, open_alerts=open_alerts)


@dataclass(frozen=True)
class SymptomResult:
    symptom: Symptom
    created: bool
    # The alerts this report opened.
    alerts: list[Alert] = field(default_factory=list)
    # The open alert of each of this report's safety findings, opened by it or already open (dizziness while
    # sustained hypotension is already open): what the patient must be told about, with guidance.
    open_alerts: list[Alert] = field(default_factory=list)


def symptom_report(
    *, actor: User, patient: Patient, kind: str, reported_at: datetime | None = None, note: str = ""
) -> list[Alert]:
    """Store a symptom (see symptom_ingest); the alerts it opened."""
    return symptom_ingest(actor=actor, patient=patient, kind=kind, reported_at=reported_at, note=note).alerts


def _low_readings_around(*, patient: Patient, reported_at: datetime, thresholds: SafetyThresholds, hours: int) -> bool:
    recent = readings_recent(patient=patient, end=reported_at, window=timedelta(hours=hours))
    return any(is_low(r.systolic, r.diastolic, thresholds) for r in recent.only("systolic", "diastolic"))


@transaction.atomic
def symptom_ingest(
    *,
    actor: User,
    patient: Patient,
    kind: str,
    reported_at: datetime | None = None,
    note: str = "",
    severity: str = "",
) -> SymptomResult:
    """Store a symptom, with the patient's optional severity and note (the note encrypted; the ledger holds only its
    keyed digest); dizziness or syncope with a low reading in the window is sustained hypotension."""
    if kind not in SymptomKind.values:
        raise ValidationFailed("Unknown symptom.", fields={"kind": [f"Choose one of {', '.join(SymptomKind.values)}."]})
    if severity and severity not in SymptomSeverity.values:
        raise ValidationFailed(
            "Unknown severity.", fields={"severity": [f"Choose one of {', '.join(SymptomSeverity.values)}."]}
        )
    now = timezone.now()
    reported_at = reported_at or now
    # A resend of the same report (the app retrying a POST whose answer it lost) is stored once: the patient's row
    # lock serialises this patient's reports, and the same symptom at the same reported time is the same report.
    # The ledger's lock first, as a reading's ingest takes it before it may lock the patient (a symptom that locked
    # the patient first deadlocked against a reading of the same patient).
    audit_ledger_lock()
    Patient.objects.select_for_update().only("pk").get(pk=patient.pk)
    existing = Symptom.objects.filter(patient=patient, kind=kind, reported_at=reported_at).first()
    if existing is not None:
        # Its alerts were raised by the original; the resend raises none (one closed since stays closed), but is told
        # of the one still open, read-only.
        still_open: list[Alert] = []
        if kind in _SYMPTOMS_WITH_LOW_BP:
            policy = approval_policy_current()
            if _low_readings_around(
                patient=patient,
                reported_at=reported_at,
                thresholds=safety_thresholds(policy),
                hours=policy.hypotension_window_hours,
            ):
                still_open = list(
                    Alert.objects.filter(patient=patient, kind=AlertKind.SUSTAINED_HYPOTENSION, status=AlertStatus.OPEN)
                )
        return SymptomResult(symptom=existing, created=False, open_alerts=still_open)
    symptom = symptom_store(patient=patient, kind=kind, reported_at=reported_at, note=note, severity=severity)
    payload: dict[str, object] = {"patient_id": patient.pk, "kind": kind}
    if symptom.note:
        payload["note_hmac"] = audit_digest(symptom.note)
    audit_record(
        action=AuditAction.SYMPTOM_REPORTED,
        object_type="symptom",
        object_id=symptom.pk,
        actor=actor,
        payload=payload,
    )
    if kind not in _SYMPTOMS_WITH_LOW_BP:
        return SymptomResult(symptom=symptom, created=True)
    policy = approval_policy_current()
    thresholds = safety_thresholds(policy)
    recent = readings_recent(patient=patient, end=reported_at, window=timedelta(hours=policy.hypotension_window_hours))
    low = [r for r in recent if is_low(r.systolic, r.diastolic, thresholds)]
    if not low:
        return SymptomResult(symptom=symptom, created=True)
    opened, open_alerts = _alerts_raise_all(patient=patient, findings=[HYPOTENSION], reading=low[-1], now=now)
    return SymptomResult(symptom=symptom, created=True, alerts=opened, open_alerts=open_alerts)
