"""A patient's accounting of access and disclosure (HIPAA 45 CFR 164.528), read from the audit ledger, and the words
for the ledger's codes (STYLE: people read words, not codes; this module is the one place that maps them).

Layer 3 (governance): it reads the ledger (clinaiops.audit) and the care records (clinaiops.care). The patient's API
(/me/access-log/), the portal's accounting page and the compliance exports all read the accounting from here, so the
three can never disagree.

What the accounting holds, newest first:
- every staff read of the record (`patient.viewed`), with why: the care team, emergency access under a named
  break-glass grant, or the purpose the reader gave (compliance review, oversight);
- every emergency (break-glass) grant, with the typed reason kept on the grant;
- every refused attempt to open the record;
- every export that disclosed the record (`export.created` written on the patient by compliance/), and every
  download of such an export (`export.downloaded`, written once on the export, found through the export's id).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_record
from clinaiops.care.models import BreakGlassGrant, Patient
from clinaiops.core.models import Role, User

# --- Words for codes -------------------------------------------------------------------------------------

AUDIT_ACTION_LABELS: dict[str, str] = {
    AuditAction.READING_INGESTED: "reading received",
    AuditAction.READING_REFUSED: "reading refused",
    AuditAction.ALERT_OPENED: "alert opened",
    AuditAction.ALERT_ACKNOWLEDGED: "alert acknowledged",
    AuditAction.ALERT_ESCALATED: "alert escalated",
    AuditAction.SYMPTOM_REPORTED: "symptom reported",
    AuditAction.AUTONOMY_PAUSED: "autonomy paused",
    AuditAction.AUTONOMY_RESUMED: "autonomy resumed",
    AuditAction.EVALUATION_SKIPPED: "evaluation skipped",
    AuditAction.RECOMMENDATION_CREATED: "recommendation proposed",
    AuditAction.RECOMMENDATION_DELIVERED: "recommendation delivered to the patient",
    AuditAction.RECOMMENDATION_QUEUED: "recommendation queued for clinician review",
    AuditAction.RECOMMENDATION_RESPONDED: "patient responded",
    AuditAction.RECOMMENDATION_SUPERSEDED: "recommendation superseded",
    AuditAction.REVIEW_DECIDED: "clinician decided",
    AuditAction.REGIMEN_CHANGED: "regimen changed",
    AuditAction.SIGNATURE_CREATED: "electronic signature",
    AuditAction.SIGNATURE_REFUSED: "signature refused",
    AuditAction.POLICY_CREATED: "approval policy version created",
    AuditAction.BOUNDS_SET: "autonomy bounds set",
    AuditAction.PATIENT_ENROLLED: "patient enrolled",
    AuditAction.PATIENT_RECORD_VIEWED: "patient record viewed",
    AuditAction.ACCESS_DENIED: "access refused",
    AuditAction.SNAPSHOT_CREATED: "dataset snapshot created",
    AuditAction.LABEL_RECORDED: "training label recorded",
    AuditAction.TRAINING_STARTED: "training started",
    AuditAction.TRAINING_FINISHED: "training finished",
    AuditAction.TRAINING_REQUEUED: "training requeued (its worker was lost or never took it)",
    AuditAction.MODEL_REGISTERED: "model version registered",
    AuditAction.MODEL_TRANSITIONED: "model approval state changed",
    AuditAction.SERVING_POINTER_SET: "serving pointer set",
    AuditAction.EXPORT_CREATED: "export created",
    AuditAction.EXPORT_DOWNLOADED: "export downloaded",
    AuditAction.LEDGER_VERIFIED: "ledger verified",
    AuditAction.CHECKPOINT_CREATED: "ledger checkpoint signed",
    AuditAction.LEDGER_ARCHIVED: "oldest ledger months archived",
    AuditAction.PARTITION_DEFAULT_SPLIT: "rows of a DEFAULT partition moved into their months",
    AuditAction.ACCOUNT_LOCKED: "account locked",
    AuditAction.SIGNED_OUT: "signed out of the mobile app",
    AuditAction.TOKEN_REUSE_REFUSED: "reuse of a spent sign-in token refused",
    AuditAction.PASSWORD_CHANGED: "password changed",
    AuditAction.MFA_ENROLLED: "authenticator app enrolled",
    AuditAction.MFA_REMOVED: "authenticator app removed",
    AuditAction.MFA_REFUSED: "verification code refused",
    AuditAction.BREAK_GLASS: "emergency (break-glass) access opened",
    AuditAction.CANARY_STAGE_ADVANCED: "canary stage advanced",
    AuditAction.CIRCUIT_BREAKER_TRIPPED: "canary circuit breaker tripped",
    AuditAction.CHANGE_CONTROL_PLAN_DECLARED: "change-control plan declared",
    AuditAction.DRIFT_REPORT_CREATED: "drift report computed",
    AuditAction.CARE_TEAM_CREATED: "care team created",
    AuditAction.CARE_TEAM_MEMBER_ADDED: "care team member added",
    AuditAction.CARE_TEAM_MEMBER_REMOVED: "care team member removed",
    AuditAction.PATIENT_TEAM_ASSIGNED: "patient assigned to a care team",
    AuditAction.PATIENT_TARGET_SET: "blood-pressure target set",
    AuditAction.USER_ROLE_SET: "role given",
    AuditAction.DOSE_LOGGED: "dose logged",
    AuditAction.EVALUATION_REFUSED: "evaluation refused",
    AuditAction.PATIENT_SEARCHED: "patients searched",
    AuditAction.KEYS_ROTATION_STARTED: "key rotation started",
    AuditAction.KEYS_ROTATED: "keys rotated",
    AuditAction.AI_STOPPED: "AI stopped (rules only, every proposal reviewed)",
    AuditAction.AI_RESUMED: "AI resumed",
}

# Kinds of compliance export (compliance.models.ExportKind takes its labels from here, so the accounting, which
# cannot import compliance, names them with the same words).
EXPORT_KIND_LABELS: dict[str, str] = {
    "decision_record": "decision record",
    "decisions": "decision listing",
    "audit_range": "audit range report",
    "accounting": "disclosure accounting",
    "evidence_bundle": "evidence bundle",
    "ledger_verification": "ledger verification report",
    "model_card": "model card",
    "fairness": "fairness report",
    "explainability": "explainability report",
}

PURPOSE_LABELS: dict[str, str] = {
    "compliance_review": "compliance review",
    "oversight": "oversight",
    "audit": "audit",
    "regulator_request": "request from a regulator",
    "legal_request": "legal request",
    "patient_request": "the patient's own request",
    "care": "care",
}

# What the ledger's object types are called in the pages (ledger rows, event detail).
OBJECT_TYPE_LABELS: dict[str, str] = {
    "audit_checkpoint": "ledger checkpoint",
    "approval_policy": "approval policy",
    "canary_state": "canary state",
    "care_team": "care team",
    "change_control_plan": "change-control plan",
    "circuit_breaker_event": "circuit breaker event",
    "dataset_snapshot": "dataset snapshot",
    "dose_log": "dose log",
    "drift_report": "drift report",
    "encryption_keys": "encryption keys",
    "ledger_verification": "ledger verification",
    "model_version": "model version",
    "monitoring_alert": "monitoring alert",
    "portal_view": "portal page",
    "serving_pointer": "serving pointer",
    "training_label": "training label",
    "training_run": "training run",
}

_VIEW_LABELS = {
    "patient_detail": "patient page",
    "recommendation": "a recommendation",
    "access_accounting": "access accounting",
    "decision_record": "decision record",
}

_DENIED_LABELS = {
    "outside_care_team": "outside the care team",
    "wrong_role": "this role may not open it",
    "not_own_record": "not the patient's own record",
    "not_assigned": "not on the care team",
}


def code_words(code: str) -> str:
    """A last resort for a code no table names yet: underscores and dots to spaces, never the raw code."""
    return code.replace("_", " ").replace(".", " ").strip()


def audit_action_choices() -> list[tuple[str, str]]:
    """Every ledger action as (code, words), sorted by the words: the ledger filters offer all of them."""
    return sorted(((a.value, audit_action_label(a.value)) for a in AuditAction), key=lambda item: item[1])


def role_label(code: str) -> str:
    try:
        return str(Role(code).label)
    except ValueError:
        return code_words(code)


def audit_action_label(code: str) -> str:
    return AUDIT_ACTION_LABELS.get(code, code_words(code))


def purpose_label(code: str) -> str:
    return PURPOSE_LABELS.get(code, code_words(code))


def export_kind_label(code: str) -> str:
    return EXPORT_KIND_LABELS.get(code, code_words(code))


def object_type_label(code: str) -> str:
    return OBJECT_TYPE_LABELS.get(code, code_words(code))


def object_label(object_type: str, object_id: str, patient_codes: dict[str, str] | None = None) -> str:
    """An event's object in words: "patient P-0007" (the pseudonymous code, not the internal id), "export 12",
    "portal page audit"; the id as stored when no code is known."""
    if object_type == "patient" and patient_codes and object_id in patient_codes:
        return f"patient {patient_codes[object_id]}"
    words = object_type_label(object_type)
    return f"{words} {code_words(object_id)}" if object_id else words


def denied_reason_label(code: str) -> str:
    return _DENIED_LABELS.get(code, code_words(code))


# --- The accounting ------------------------------------------------------------------------------------


class EntryKind:
    VIEW = "view"
    EMERGENCY_VIEW = "emergency_view"
    EMERGENCY_GRANT = "emergency_grant"
    DENIED = "denied"
    DISCLOSURE = "disclosure"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class AccessEntry:
    """One line of a patient's accounting of access and disclosure: words for people, ids for auditors."""

    seq: int  # the audit event that proves it
    when: datetime
    who: str
    role: str  # words, for example "Compliance officer"
    role_code: str
    kind: str  # an EntryKind
    action: str
    what: str
    why: str
    grant_id: int | None = None  # the break-glass grant, for emergency access
    export_id: int | None = None  # the export, for disclosures and downloads


_PATIENT_ACTIONS = (
    AuditAction.PATIENT_RECORD_VIEWED,
    AuditAction.BREAK_GLASS,
    AuditAction.EXPORT_CREATED,
    AuditAction.ACCESS_DENIED,
)


def patient_by_code(code: str) -> Patient | None:
    """The patient with this pseudonymous code (case-insensitive), or None."""
    code = (code or "").strip().upper()
    return Patient.objects.filter(code=code).first() if code else None


def _in_range(events: QuerySet[AuditEvent], start: datetime | None, end: datetime | None) -> QuerySet[AuditEvent]:
    if start is not None:
        events = events.filter(recorded_at__gte=start)
    if end is not None:
        events = events.filter(recorded_at__lt=end)
    return events


def _grant_for(grants: list[BreakGlassGrant], actor_id: int | None, when: datetime) -> BreakGlassGrant | None:
    for grant in grants:
        if grant.user_id == actor_id and grant.granted_at <= when <= grant.expires_at:
            return grant
    return None


def _entry(event: AuditEvent, grants: dict[int, BreakGlassGrant], patient_grants: list[BreakGlassGrant]) -> AccessEntry:
    data: dict[str, Any] = event.payload_data

    def entry(
        kind: str, action: str, what: str, why: str, *, grant: int | None = None, export: int | None = None
    ) -> AccessEntry:
        return AccessEntry(
            seq=event.seq, when=event.recorded_at, who=event.actor.signature_name if event.actor else "system",
            role=role_label(event.actor_role), role_code=event.actor_role, kind=kind, action=action, what=what,
            why=why, grant_id=grant, export_id=export,
        )  # fmt: skip

    if event.action == AuditAction.BREAK_GLASS:
        found = grants.get(int(data.get("grant_id") or 0))
        return entry(
            EntryKind.EMERGENCY_GRANT, "emergency (break-glass) access", "the whole record",
            found.reason if found else "", grant=found.pk if found else None,
        )  # fmt: skip
    if event.action == AuditAction.ACCESS_DENIED:
        return entry(
            EntryKind.DENIED, "was refused access", "the record", denied_reason_label(str(data.get("reason", "")))
        )
    if event.action == AuditAction.EXPORT_CREATED:
        export_id = _int_or_none(data.get("export_id"))
        return entry(
            EntryKind.DISCLOSURE, "disclosed in an export",
            f"{export_kind_label(str(data.get('export', '')))} (export #{export_id})",
            purpose_label(str(data.get("purpose", "oversight"))), export=export_id,
        )  # fmt: skip
    view = str(data.get("view", ""))
    what = _VIEW_LABELS.get(view, code_words(view))
    # Issue 7 defect 4: a clinician outside the care team reads the record only under a break-glass grant. The view
    # event names the grant when the portal records it; older events are matched to the grant that covered them.
    grant = grants.get(int(data.get("grant_id") or 0)) if data.get("grant_id") else None
    if grant is None and event.actor_role == Role.CLINICIAN:
        grant = _grant_for(patient_grants, event.actor_id, event.recorded_at)
    if grant is not None:
        return entry(
            EntryKind.EMERGENCY_VIEW, "viewed the record", what,
            f"emergency access (grant #{grant.pk}): {grant.reason}", grant=grant.pk,
        )  # fmt: skip
    why = "care team" if event.actor_role == Role.CLINICIAN else purpose_label(str(data.get("purpose", "oversight")))
    return entry(EntryKind.VIEW, "viewed the record", what, why)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _download_entry(event: AuditEvent, kinds: dict[int, str]) -> AccessEntry:
    data = event.payload_data
    export_id = int(event.object_id)
    return AccessEntry(
        seq=event.seq, when=event.recorded_at, who=event.actor.signature_name if event.actor else "system",
        role=role_label(event.actor_role), role_code=event.actor_role, kind=EntryKind.DOWNLOAD,
        action="downloaded an export", what=f"{export_kind_label(kinds.get(export_id, ''))} (export #{export_id})",
        why=purpose_label(str(data.get("purpose", "oversight"))), export_id=export_id,
    )  # fmt: skip


def access_accounting_iter(
    *, patient: Patient, start: datetime | None = None, end: datetime | None = None
) -> Iterator[AccessEntry]:
    """The accounting for `patient` within [start, end), newest first, streamed from the ledger (a server-side
    cursor on PostgreSQL), so an export of years of history stays in constant memory."""
    events = _in_range(
        AuditEvent.objects.filter(object_type="patient", object_id=str(patient.pk), action__in=list(_PATIENT_ACTIONS)),
        start,
        end,
    ).select_related("actor")
    grants_list = list(BreakGlassGrant.objects.filter(patient=patient))
    grants = {grant.pk: grant for grant in grants_list}
    # The exports that disclosed this patient: their downloads are recorded once on the export, not per patient.
    kinds: dict[int, str] = {}
    for payload in AuditEvent.objects.filter(
        object_type="patient", object_id=str(patient.pk), action=AuditAction.EXPORT_CREATED
    ).values_list("payload", flat=True):
        data = AuditEvent(payload=payload).payload_data
        export_id = _int_or_none(data.get("export_id"))
        if export_id is not None:
            kinds[export_id] = str(data.get("export", ""))
    downloads: Iterable[AccessEntry] = ()
    if kinds:
        download_events = _in_range(
            AuditEvent.objects.filter(
                object_type="export", object_id__in=[str(i) for i in kinds], action=AuditAction.EXPORT_DOWNLOADED
            ),
            start,
            end,
        ).select_related("actor")
        downloads = (_download_entry(e, kinds) for e in download_events.order_by("-seq").iterator(chunk_size=500))
    own = (_entry(e, grants, grants_list) for e in events.order_by("-seq").iterator(chunk_size=500))
    yield from heapq.merge(own, downloads, key=lambda entry: -entry.seq)


def access_accounting(
    *, patient: Patient, start: datetime | None = None, end: datetime | None = None, limit: int | None = 500
) -> list[AccessEntry]:
    """The newest `limit` lines of the accounting (all of them with limit=None)."""
    entries: list[AccessEntry] = []
    for entry in access_accounting_iter(patient=patient, start=start, end=end):
        if limit is not None and len(entries) >= limit:
            break
        entries.append(entry)
    return entries


@transaction.atomic
def patient_record_read(
    *, actor: User, patient_id: int, view: str = "access_accounting", purpose: str = "compliance_review"
) -> None:
    """A staff read of a patient's record outside the clinical pages (their accounting, a decision record) is itself
    accounted for (DESIGN §4), with the purpose the reader works under."""
    audit_record(
        action=AuditAction.PATIENT_RECORD_VIEWED,
        object_type="patient",
        object_id=patient_id,
        actor=actor,
        payload={"view": view, "purpose": purpose},
    )
