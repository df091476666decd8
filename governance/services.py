"""Governance writes: e-signatures, the approval policy and per-patient autonomy bounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.access import care_team_clinician_require
from clinaiops.care.models import Patient
from clinaiops.care.services import administrator_require
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.models import ApprovalPolicy, AutonomyBounds, Signature, SignatureMeaning
from governance.policy import BOUND_LIMITS, EffectiveBounds, bounds_violations
from governance.selectors import policy_ceiling


class SignatureRefused(PermissionRefused):
    code = "signature_refused"


def signature_reauthenticate(*, signer: User, password: str, record_type: str, record_id: object) -> None:
    """Check the re-entered password before anything is written (21 CFR 11.200(a)). A wrong password is
    refused and audited in its own transaction, so the record of the refusal survives; repeated failures lock
    the account (11.300(d)). A locked account cannot sign even with the right password."""
    if signer.is_locked:
        audit_record_denied(
            action=AuditAction.SIGNATURE_REFUSED, object_type=record_type, object_id=record_id, actor=signer,
            reason="account_locked",
        )  # fmt: skip
        raise SignatureRefused(
            "This account is locked after repeated failed signatures; ask an administrator or wait.",
            fields={"password": ["Account locked."]},
            code="account_locked",
        )
    if password and signer.is_active and signer.check_password(password):
        return
    audit_record_denied(
        action=AuditAction.SIGNATURE_REFUSED, object_type=record_type, object_id=record_id, actor=signer,
        reason="bad_password",
    )  # fmt: skip
    _lock_after_repeated_failures(signer)
    raise SignatureRefused(
        "The password did not match; nothing was signed.", fields={"password": ["Incorrect password."]}
    )


def _lock_after_repeated_failures(signer: User) -> None:
    """Counts the signer's refused signatures in the window from the ledger itself, so the count cannot
    disagree with what auditors see."""
    now = timezone.now()
    window_start = now - timedelta(minutes=settings.SIGNATURE_FAILURE_WINDOW_MINUTES)
    failures = AuditEvent.objects.filter(
        actor=signer, action=AuditAction.SIGNATURE_REFUSED, outcome="denied", recorded_at__gte=window_start
    ).count()
    if failures < settings.SIGNATURE_MAX_FAILURES:
        return
    with transaction.atomic():
        until = now + timedelta(minutes=settings.SIGNATURE_LOCKOUT_MINUTES)
        User.objects.filter(pk=signer.pk).update(locked_until=until)
        signer.locked_until = until
        # A lock revokes every API token of the account too (issue 8 §4), not only new sign-ins.
        signer.tokens_revoke()
        audit_record(
            action=AuditAction.ACCOUNT_LOCKED,
            object_type="user",
            object_id=signer.pk,
            system_reason="repeated_signature_failures",
            payload={
                "failures": failures,
                "minutes": settings.SIGNATURE_LOCKOUT_MINUTES,
                "api_tokens_revoked": True,
            },
        )


def signature_create(
    *, signer: User, meaning: SignatureMeaning, record_type: str, record_id: object, content: dict[str, Any]
) -> Signature:
    """Bind a signature to the canonical content of a record. Call `signature_reauthenticate` first, outside
    the transaction; call this inside the transaction that writes the record."""
    signature = Signature.objects.create(
        signer=signer,
        printed_name=signer.signature_name,
        signer_role=signer.role,
        signed_at=timezone.now(),
        meaning=meaning,
        record_type=record_type,
        record_id=str(record_id),
        record_sha256=canonical_sha256(content),
    )
    audit_record(
        action=AuditAction.SIGNATURE_CREATED,
        object_type="signature",
        object_id=signature.pk,
        actor=signer,
        payload={
            "record_type": record_type,
            "record_id": str(record_id),
            "record_sha256": signature.record_sha256,
            "meaning": str(meaning),
        },
    )
    return signature


def signature_verify(*, signature: Signature, record_type: str, record_id: object, content: dict[str, Any]) -> bool:
    return (
        signature.record_type == record_type
        and signature.record_id == str(record_id)
        and signature.record_sha256 == canonical_sha256(content)
    )


def approval_policy_current() -> ApprovalPolicy:
    """The newest policy version. The first call on an empty database creates version 1 with the documented
    defaults (DESIGN §2), audited as a system bootstrap."""
    policy = ApprovalPolicy.objects.order_by("-version").first()
    if policy is not None:
        return policy
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().order_by("-version").first()
        if policy is None:
            policy = ApprovalPolicy.objects.create(version=1, created_at=timezone.now())
            audit_record(
                action=AuditAction.POLICY_CREATED,
                object_type="approval_policy",
                object_id=policy.pk,
                system_reason="default_policy_bootstrap",
                payload={"version": 1},
            )
    return policy


def bounds_content(bounds: AutonomyBounds) -> dict[str, Any]:
    return {
        "patient_id": bounds.patient_id,
        "version": bounds.version,
        "autonomy_enabled": bounds.autonomy_enabled,
        "max_step_change": bounds.max_step_change,
        "min_step": bounds.min_step,
        "max_step": bounds.max_step,
        "min_confidence": bounds.min_confidence,
        "min_readings": bounds.min_readings,
        "policy_version": bounds.policy.version,
    }


def autonomy_bounds_set(*, actor: User, patient: Patient, requested: EffectiveBounds, password: str) -> AutonomyBounds:
    """Create a new signed version of a patient's bounds. Refused if wider than the global policy, and for
    anyone but a clinician on the patient's care team (emergency access included: clinaiops.care.access)."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.BOUNDS_SET)
    policy = approval_policy_current()
    problems = bounds_violations(requested, policy_ceiling(policy))
    if problems:
        raise ValidationFailed("These bounds are wider than the global approval policy allows.", fields=problems)
    signature_reauthenticate(signer=actor, password=password, record_type="patient", record_id=patient.pk)
    with transaction.atomic():
        latest = AutonomyBounds.objects.select_for_update().filter(patient=patient).order_by("-version").first()
        bounds = AutonomyBounds(
            patient=patient,
            version=(latest.version + 1) if latest else 1,
            autonomy_enabled=requested.autonomy_enabled,
            **{name: getattr(requested, name) for name in BOUND_LIMITS},
            policy=policy,
            set_at=timezone.now(),
            set_by=actor,
        )
        content = bounds_content(bounds)
        bounds.signature = signature_create(
            signer=actor,
            meaning=SignatureMeaning.APPROVED,
            record_type="autonomy_bounds",
            record_id=f"{patient.pk}/v{bounds.version}",
            content=content,
        )
        bounds.save()
        audit_record(
            action=AuditAction.BOUNDS_SET,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            # A patient's bounds are clinical settings: keyed digest only (DESIGN §4).
            payload={"bounds_id": bounds.pk, "version": bounds.version, "content_hmac": audit_digest(content)},
        )
    return bounds


POLICY_FIELDS: dict[str, tuple[float, float]] = {
    # field: (lowest, highest) a safety officer may set; outside these the policy stops being safe to run.
    "crisis_sbp": (160, 220),
    "crisis_dbp": (100, 140),
    "hypotension_sbp": (70, 110),
    "hypotension_dbp": (40, 70),
    "hypotension_window_hours": (1, 72),
    "hypotension_min_readings": (1, 5),
    "max_step_change": (0, 2),
    "min_step": (0, 6),
    "max_step": (0, 6),
    "min_confidence": (0.5, 0.99),
    "min_readings": (1, 30),
    "min_readings_window_days": (1, 30),
}


def policy_content(policy: ApprovalPolicy) -> dict[str, Any]:
    return {"version": policy.version, **{name: getattr(policy, name) for name in POLICY_FIELDS}}


def approval_policy_revise(*, actor: User, changes: dict[str, Any], password: str) -> ApprovalPolicy:
    """Create the next policy version from the current one with `changes`, signed by a clinical safety
    officer. Policies are never edited in place; every recommendation keeps the version that tiered it."""
    if actor.role != Role.SAFETY_OFFICER:
        audit_record_denied(
            action=AuditAction.POLICY_CREATED, object_type="approval_policy", actor=actor, reason="not_safety_officer"
        )
        raise PermissionRefused("Only a clinical safety officer can change the approval policy.")
    current = approval_policy_current()
    problems: dict[str, list[str]] = {}
    values = {name: getattr(current, name) for name in POLICY_FIELDS}
    for name, raw in changes.items():
        if name not in POLICY_FIELDS:
            problems[name] = ["Not a policy setting."]
            continue
        low, high = POLICY_FIELDS[name]
        try:
            value = float(raw) if name == "min_confidence" else int(raw)
        except (TypeError, ValueError):
            problems[name] = ["Enter a number."]
            continue
        if not low <= value <= high:
            problems[name] = [f"Must be between {low:g} and {high:g}."]
        values[name] = value
    if values["min_step"] > values["max_step"]:
        problems.setdefault("min_step", []).append("The lowest step must not be above the highest step.")
    if problems:
        raise ValidationFailed("The policy change was not saved.", fields=problems)
    if all(values[name] == getattr(current, name) for name in POLICY_FIELDS):
        raise ValidationFailed("Nothing changed.", fields={"__all__": ["Change at least one setting."]})
    signature_reauthenticate(signer=actor, password=password, record_type="approval_policy", record_id="next")
    with transaction.atomic():
        latest = ApprovalPolicy.objects.select_for_update().order_by("-version").first()
        policy = ApprovalPolicy(
            version=(latest.version if latest else 0) + 1, created_at=timezone.now(), created_by=actor, **values
        )
        content = policy_content(policy)
        policy.signature = signature_create(
            signer=actor,
            meaning=SignatureMeaning.APPROVED,
            record_type="approval_policy",
            record_id=f"v{policy.version}",
            content=content,
        )
        policy.save()
        audit_record(
            action=AuditAction.POLICY_CREATED,
            object_type="approval_policy",
            object_id=policy.pk,
            actor=actor,
            payload={
                "version": policy.version,
                "previous_version": current.version,
                "changed": sorted(name for name in POLICY_FIELDS if values[name] != getattr(current, name)),
                "content_sha256": canonical_sha256(content),
            },
        )
    return policy


ASSIGNABLE_ROLES = tuple(role for role in Role if role != Role.SYSTEM)


def user_role_set(*, actor: User | None, user: User, role: str) -> bool:
    """Give an account its role, which decides the surface and the records it may use. Only an administrator
    does this (or the system seeding the demo), never on their own account, and an enrolled patient's account
    stays a patient's. Returns False if the account already had the role."""
    administrator_require(actor=actor, action=AuditAction.USER_ROLE_SET, object_type="user", object_id=user.pk)
    with transaction.atomic():
        if role not in ASSIGNABLE_ROLES:
            raise ValidationFailed("Unknown role.", fields={"role": [f"Choose one of {', '.join(ASSIGNABLE_ROLES)}."]})
        if actor is not None and actor.pk == user.pk:
            raise PermissionRefused("Nobody changes their own role; ask another administrator.")
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.role == role:
            return False
        if role != Role.PATIENT and Patient.objects.filter(user=locked).exists():
            raise ValidationFailed(
                "This account is an enrolled patient's.",
                fields={"role": ["An enrolled patient's account stays a patient's."]},
            )
        User.objects.filter(pk=user.pk).update(role=role)
        audit_record(
            action=AuditAction.USER_ROLE_SET,
            object_type="user",
            object_id=user.pk,
            actor=actor,
            system_reason="cohort_seed" if actor is None else "",
            payload={"from_role": locked.role, "to_role": role},
        )
        user.role = role
        return True
