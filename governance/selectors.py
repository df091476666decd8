from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.care.models import BreakGlassGrant, Patient
from governance.models import ApprovalPolicy, AutonomyBounds
from governance.policy import EffectiveBounds


def autonomy_bounds_current(*, patient: Patient) -> AutonomyBounds | None:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature").order_by("-version").first()


def autonomy_bounds_history(*, patient: Patient) -> QuerySet[AutonomyBounds]:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature", "set_by").order_by("-version")


def effective_bounds(*, patient: Patient, policy: ApprovalPolicy) -> EffectiveBounds:
    """The bounds that apply now: the patient's signed bounds, clamped again to the current policy in case
    the policy tightened after they were set; the policy defaults if none were set."""
    bounds = autonomy_bounds_current(patient=patient)
    if bounds is None:
        return EffectiveBounds(
            max_step_change=policy.max_step_change,
            min_step=policy.min_step,
            max_step=policy.max_step,
            min_confidence=policy.min_confidence,
            min_readings=policy.min_readings,
            autonomy_enabled=True,
        )
    return EffectiveBounds(
        max_step_change=min(bounds.max_step_change, policy.max_step_change),
        min_step=max(bounds.min_step, policy.min_step),
        max_step=min(bounds.max_step, policy.max_step),
        min_confidence=max(bounds.min_confidence, policy.min_confidence),
        min_readings=max(bounds.min_readings, policy.min_readings),
        autonomy_enabled=bounds.autonomy_enabled,
    )


@dataclass(frozen=True)
class AccessEntry:
    """One line of a patient's accounting of access and disclosure (DESIGN §4, HIPAA §164.528-style)."""

    when: datetime
    who: str
    role: str
    action: str
    what: str
    why: str


_ACCESS_LABELS = {
    AuditAction.PATIENT_RECORD_VIEWED: "viewed the record",
    AuditAction.BREAK_GLASS: "emergency (break-glass) access",
    AuditAction.EXPORT_CREATED: "disclosed in an export",
    AuditAction.ACCESS_DENIED: "was refused access",
}


def access_accounting(*, patient: Patient, limit: int = 500) -> list[AccessEntry]:
    """Who accessed or disclosed what of this patient's record, when and why, newest first."""
    events = list(
        AuditEvent.objects.filter(object_type="patient", object_id=str(patient.pk), action__in=list(_ACCESS_LABELS))
        .select_related("actor")
        .order_by("-seq")[:limit]
    )
    grant_ids = [event.payload_data.get("grant_id") for event in events if event.action == AuditAction.BREAK_GLASS]
    reasons = dict(BreakGlassGrant.objects.filter(pk__in=[g for g in grant_ids if g]).values_list("pk", "reason"))
    entries = []
    for event in events:
        data = event.payload_data
        if event.action == AuditAction.BREAK_GLASS:
            why = reasons.get(int(data.get("grant_id") or 0), "")
        elif event.action == AuditAction.ACCESS_DENIED:
            why = str(data.get("reason", ""))
        else:
            why = (
                "care team"
                if event.actor and event.actor.role == "clinician"
                else str(data.get("purpose", "oversight"))
            )
        entries.append(
            AccessEntry(
                when=event.recorded_at,
                who=event.actor.signature_name if event.actor else "system",
                role=event.actor_role,
                action=_ACCESS_LABELS[AuditAction(event.action)],
                what=str(data.get("view", data.get("export", ""))).replace("_", " "),
                why=why,
            )
        )
    return entries
