"""Governance writes: e-signatures, the approval policy and per-patient autonomy bounds."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.audit.models import AuditAction
from governance.audit.services import audit_record, audit_record_denied
from governance.models import ApprovalPolicy, AutonomyBounds, Signature, SignatureMeaning
from governance.policy import EffectiveBounds, bounds_violations


class SignatureRefused(PermissionRefused):
    code = "signature_refused"


def signature_reauthenticate(*, signer: User, password: str, record_type: str, record_id: object) -> None:
    """Check the re-entered password before anything is written (21 CFR 11.200(a)). A wrong password is
    refused and audited in its own transaction, so the record of the refusal survives."""
    if not password or not signer.is_active or not signer.check_password(password):
        audit_record_denied(
            action=AuditAction.SIGNATURE_REFUSED,
            object_type=record_type,
            object_id=record_id,
            actor=signer,
            reason="bad_password",
        )
        raise SignatureRefused(
            "The password did not match; nothing was signed.", fields={"password": ["Incorrect password."]}
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


def policy_ceiling(policy: ApprovalPolicy) -> EffectiveBounds:
    return EffectiveBounds(
        max_step_change=policy.max_step_change,
        min_step=policy.min_step,
        max_step=policy.max_step,
        min_confidence=policy.min_confidence,
        min_readings=policy.min_readings,
        autonomy_enabled=True,
    )


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
    """Create a new signed version of a patient's bounds. Refused if wider than the global policy."""
    if actor.role != Role.CLINICIAN or not patient.care_team.members.filter(pk=actor.pk).exists():
        audit_record_denied(
            action=AuditAction.BOUNDS_SET,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            reason="not_assigned",
        )
        raise PermissionRefused("Only a clinician on this patient's care team can set autonomy bounds.")
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
            max_step_change=requested.max_step_change,
            min_step=requested.min_step,
            max_step=requested.max_step,
            min_confidence=requested.min_confidence,
            min_readings=requested.min_readings,
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
            payload={"bounds_id": bounds.pk, "version": bounds.version, "content_sha256": canonical_sha256(content)},
        )
    return bounds
