"""Governance reads: the approval policy's history and each patient's autonomy bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from governance.models import ApprovalPolicy, AutonomyBounds
from governance.policy import BOUND_LIMITS, EffectiveBounds, bounds_in_force, bounds_of


def approval_policy_history(*, limit: int = 20) -> QuerySet[ApprovalPolicy]:
    return ApprovalPolicy.objects.select_related("signature").order_by("-version")[:limit]


def _bounds_of(record: ApprovalPolicy | AutonomyBounds, *, autonomy_enabled: bool) -> EffectiveBounds:
    return bounds_of({name: getattr(record, name) for name in BOUND_LIMITS}, autonomy_enabled=autonomy_enabled)


def policy_ceiling(policy: ApprovalPolicy) -> EffectiveBounds:
    """The widest bounds the policy allows, which are also its defaults (governance.policy.bounds_in_force)."""
    return _bounds_of(policy, autonomy_enabled=True)


def autonomy_bounds_values(bounds: AutonomyBounds) -> EffectiveBounds:
    """A signed bounds version as it was set, before any clamping."""
    return _bounds_of(bounds, autonomy_enabled=bounds.autonomy_enabled)


def autonomy_bounds_current(*, patient: Patient) -> AutonomyBounds | None:
    return AutonomyBounds.objects.filter(patient=patient).select_related("signature").order_by("-version").first()


def autonomy_bounds_history(*, patient: Patient, limit: int = 10) -> list[AutonomyBounds]:
    return list(
        AutonomyBounds.objects.filter(patient=patient)
        .select_related("signature", "set_by")
        .order_by("-version")[:limit]
    )


def effective_bounds_of(bounds: AutonomyBounds | None, policy: ApprovalPolicy) -> EffectiveBounds:
    """The bounds that apply to the patient under `policy` (governance.policy.bounds_in_force)."""
    return bounds_in_force(None if bounds is None else autonomy_bounds_values(bounds), policy_ceiling(policy))


@dataclass(frozen=True)
class PatientBounds:
    """A patient's bounds for the patient page, from one query: the signed versions (newest first), the bounds
    in force, and what a new version starts from (the current one as signed, or the policy's defaults)."""

    history: list[AutonomyBounds]
    effective: EffectiveBounds
    proposed: EffectiveBounds


def patient_bounds(*, patient: Patient, policy: ApprovalPolicy, limit: int = 10) -> PatientBounds:
    history = autonomy_bounds_history(patient=patient, limit=limit)
    current = history[0] if history else None
    return PatientBounds(
        history=history,
        effective=effective_bounds_of(current, policy),
        proposed=policy_ceiling(policy) if current is None else autonomy_bounds_values(current),
    )


@dataclass(frozen=True)
class SignatureAttempts:
    """How close a signer is to the signature lock-out (21 CFR 11.300(d)), for the signing forms to say so."""

    left: int  # wrong passwords still allowed before the account locks; 0 while locked
    limit: int  # SIGNATURE_MAX_FAILURES
    window_minutes: int  # the failures counted are those of this last stretch of time
    lockout_minutes: int
    locked_until: datetime | None


def signature_attempts_left(*, signer: User) -> SignatureAttempts:
    """Counted from the ledger as governance.services._lock_after_repeated_failures counts them: refused
    signatures by this signer in the window. The lock falls on the failure that reaches the limit."""
    limit = settings.SIGNATURE_MAX_FAILURES
    window = settings.SIGNATURE_FAILURE_WINDOW_MINUTES
    locked_until = signer.locked_until if signer.is_locked else None
    failures = 0
    if locked_until is None:
        failures = AuditEvent.objects.filter(
            actor=signer,
            action=AuditAction.SIGNATURE_REFUSED,
            outcome="denied",
            recorded_at__gte=timezone.now() - timedelta(minutes=window),
        ).count()
    return SignatureAttempts(
        left=0 if locked_until is not None else max(0, limit - failures),
        limit=limit,
        window_minutes=window,
        lockout_minutes=settings.SIGNATURE_LOCKOUT_MINUTES,
        locked_until=locked_until,
    )
