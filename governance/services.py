"""Governance writes: e-signatures, the approval policy and per-patient autonomy bounds."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.access import administrator_require, care_team_clinician_require
from clinaiops.care.models import Patient
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import Conflict, InvalidTransition, NotFound, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.models import (
    ApprovalPolicy,
    AutonomyBounds,
    PolicyChange,
    PolicyChangeStatus,
    Signature,
    SignatureMeaning,
)
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


# The policy in force, kept by each process with the marker of the row it was read from: every call still asks the
# database which row is newest, but only for that marker (its id and row version: PostgreSQL's xmin and ctid), and
# reads and decrypts the whole row only when the marker differs. That check is what makes the cache safe: a version
# published by any process, on any host, is seen by the first statement after its commit, exactly as when the row
# was read each time (a stale crisis threshold would be a safety failure, not a slow page). There is nothing to
# invalidate, so no publish path can forget to. The row version changes with any write, so even an edit in place
# (never made: a change is a new version) or a restored database is not served from the cache; a version created
# in a transaction that rolls back is no longer the newest for the next call, which then reads the row again.
_policy_in_force: tuple[tuple[object, ...], ApprovalPolicy] | None = None


def _policy_newest() -> QuerySet[ApprovalPolicy]:
    newest = ApprovalPolicy.objects.order_by("-version")
    if connection.vendor == "postgresql":
        # xmin: the transaction that wrote this row version; ctid: where it lies, new with every write, even a
        # second write in that same transaction.
        return newest.annotate(row_version=RawSQL("xmin::text || '/' || ctid::text", ()))
    return newest  # SQLite has no row version: the version and its creation time stand for it (rows are immutable)


def _marker_fields() -> tuple[str, ...]:
    return ("pk", "row_version") if connection.vendor == "postgresql" else ("pk", "version", "created_at")


def approval_policy_current() -> ApprovalPolicy:
    """The newest policy version (one query for its marker; the row itself only when it changed). The first call
    on an empty database creates version 1 with the documented defaults (DESIGN §2), audited as a system bootstrap.
    Each caller gets its own copy, so that nothing a caller sets on it reaches the next."""
    global _policy_in_force
    marker = _policy_newest().values_list(*_marker_fields()).first()
    cached = _policy_in_force
    if marker is not None and cached is not None and cached[0] == marker:
        return copy.copy(cached[1])
    policy = _policy_newest().first() if marker is not None else None
    if policy is None:
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
            policy = _policy_newest().first()  # with its marker, to cache it below (once per database)
            assert policy is not None
    # Keyed by the marker of the row read, not by the one asked for first: a version landing in between is newer
    # than that marker, and must not answer for it.
    _policy_in_force = (tuple(getattr(policy, name) for name in _marker_fields()), copy.copy(policy))
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
    """What a policy version's signature covers: its settings, whether later changes need a second signer and
    why it was made. (Versions signed before migration governance 0004 covered the settings only.)"""
    return {
        "version": policy.version,
        **{name: getattr(policy, name) for name in POLICY_FIELDS},
        "requires_second_signer": policy.requires_second_signer,
        "reason": policy.change_reason,
    }


def _policy_editor_require(actor: User) -> None:
    if actor.role != Role.SAFETY_OFFICER:
        audit_record_denied(
            action=AuditAction.POLICY_CREATED, object_type="approval_policy", actor=actor, reason="not_safety_officer"
        )
        raise PermissionRefused("Only a clinical safety officer can change the approval policy.")


def approval_policy_values_check(
    *, current: ApprovalPolicy, changes: dict[str, Any], requires_second_signer: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """The settings of the next version (`current` with `changes`) and its second-signer flag; refuses values
    outside POLICY_FIELDS' ranges and a change that changes nothing. Also what the portal's preview runs."""
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
    flag = current.requires_second_signer if requires_second_signer is None else requires_second_signer
    if flag == current.requires_second_signer and all(values[name] == getattr(current, name) for name in POLICY_FIELDS):
        raise ValidationFailed("Nothing changed.", fields={"__all__": ["Change at least one setting."]})
    return values, flag


def approval_policy_revise(
    *,
    actor: User,
    changes: dict[str, Any],
    password: str,
    reason: str = "",
    requires_second_signer: bool | None = None,
) -> ApprovalPolicy:
    """Create the next policy version from the current one with `changes`, signed by a clinical safety
    officer. Policies are never edited in place; every recommendation keeps the version that tiered it. When the
    policy in force requires a second signer this is refused: `approval_policy_change_propose` instead."""
    _policy_editor_require(actor)
    current = approval_policy_current()
    if current.requires_second_signer:
        raise InvalidTransition(
            "The policy in force requires a second signer: the change waits until another clinical safety officer "
            "countersigns it.",
            code="policy_needs_second_signer",
        )
    values, flag = approval_policy_values_check(
        current=current, changes=changes, requires_second_signer=requires_second_signer
    )
    signature_reauthenticate(signer=actor, password=password, record_type="approval_policy", record_id="next")
    with transaction.atomic():
        latest = ApprovalPolicy.objects.select_for_update().order_by("-version").first()
        policy = ApprovalPolicy(
            version=(latest.version if latest else 0) + 1, created_at=timezone.now(), created_by=actor,
            requires_second_signer=flag, change_reason=reason.strip(), **values,
        )  # fmt: skip
        content = policy_content(policy)
        policy.signature = signature_create(
            signer=actor,
            meaning=SignatureMeaning.APPROVED,
            record_type="approval_policy",
            record_id=f"v{policy.version}",
            content=content,
        )
        policy.save()
        _policy_created_record(policy=policy, previous=current, actor=actor, content=content)
    return policy


def _policy_changed(values: dict[str, Any], flag: bool, previous: ApprovalPolicy) -> list[str]:
    changed = [name for name in POLICY_FIELDS if values[name] != getattr(previous, name)]
    if flag != previous.requires_second_signer:
        changed.append("requires_second_signer")
    return sorted(changed)


def _policy_created_record(
    *, policy: ApprovalPolicy, previous: ApprovalPolicy, actor: User, content: dict[str, Any], change_id: int = 0
) -> None:
    payload: dict[str, Any] = {
        "version": policy.version,
        "previous_version": previous.version,
        "changed": _policy_changed(
            {name: getattr(policy, name) for name in POLICY_FIELDS}, policy.requires_second_signer, previous
        ),
        "content_sha256": canonical_sha256(content),
        "requires_second_signer": policy.requires_second_signer,
    }
    if policy.change_reason:
        payload["reason_hmac"] = audit_digest(policy.change_reason)
    if change_id:
        payload["countersigned_change_id"] = change_id
    audit_record(
        action=AuditAction.POLICY_CREATED, object_type="approval_policy", object_id=policy.pk, actor=actor,
        payload=payload,
    )  # fmt: skip


def approval_policy_change_submit(
    *, actor: User, changes: dict[str, Any], password: str, reason: str, requires_second_signer: bool | None = None
) -> ApprovalPolicy | PolicyChange:
    """The portal's policy change: a new version in force at once, or, when the policy in force requires a
    second signer, a signed change that waits for one (`approval_policy_change_countersign`)."""
    _policy_editor_require(actor)
    if not reason.strip():
        raise ValidationFailed("Say why the policy changes.", fields={"reason": ["This field is required."]})
    if approval_policy_current().requires_second_signer:
        return approval_policy_change_propose(
            actor=actor, changes=changes, password=password, reason=reason,
            requires_second_signer=requires_second_signer,
        )  # fmt: skip
    return approval_policy_revise(
        actor=actor, changes=changes, password=password, reason=reason, requires_second_signer=requires_second_signer
    )


def approval_policy_change_propose(
    *, actor: User, changes: dict[str, Any], password: str, reason: str, requires_second_signer: bool | None = None
) -> PolicyChange:
    """Sign a change as its first signer; it comes into force when a different clinical safety officer
    countersigns it. One change waits at a time."""
    _policy_editor_require(actor)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why the policy changes.", fields={"reason": ["This field is required."]})
    current = approval_policy_current()
    values, flag = approval_policy_values_check(
        current=current, changes=changes, requires_second_signer=requires_second_signer
    )
    if PolicyChange.objects.filter(status=PolicyChangeStatus.PENDING).exists():
        raise Conflict(_PENDING_MESSAGE, code="policy_change_pending")
    signature_reauthenticate(signer=actor, password=password, record_type="approval_policy", record_id="next")
    with transaction.atomic():
        latest = ApprovalPolicy.objects.select_for_update().order_by("-version").first()
        if latest is None or latest.pk != current.pk:
            raise Conflict("The policy changed while you edited it; review the new version first.")
        if PolicyChange.objects.filter(status=PolicyChangeStatus.PENDING).exists():
            raise Conflict(_PENDING_MESSAGE, code="policy_change_pending")
        draft = ApprovalPolicy(version=latest.version + 1, requires_second_signer=flag, change_reason=reason, **values)
        content = policy_content(draft)
        signature = signature_create(
            signer=actor, meaning=SignatureMeaning.APPROVED, record_type="approval_policy",
            record_id=f"v{draft.version}", content=content,
        )  # fmt: skip
        change = PolicyChange.objects.create(
            base_policy=latest, values=values, requires_second_signer=flag, reason=reason, proposed_by=actor,
            proposed_at=signature.signed_at, proposer_signature=signature,
        )  # fmt: skip
        audit_record(
            action=AuditAction.POLICY_CHANGE_PROPOSED, object_type="approval_policy_change", object_id=change.pk,
            actor=actor,
            payload={
                "base_version": latest.version, "changed": _policy_changed(values, flag, latest),
                "content_sha256": canonical_sha256(content), "reason_hmac": audit_digest(reason),
            },
        )  # fmt: skip
    return change


_PENDING_MESSAGE = "Another policy change is waiting for a second signer; countersign or withdraw it first."


def _pending_change_locked(change_id: int) -> PolicyChange:
    change = PolicyChange.objects.select_for_update().filter(pk=change_id).first()
    if change is None:
        raise NotFound("No such policy change.")
    if change.status != PolicyChangeStatus.PENDING:
        raise InvalidTransition(f"This change is already {change.get_status_display().lower()}.")
    return change


def approval_policy_change_countersign(*, actor: User, change_id: int, password: str) -> ApprovalPolicy:
    """A second clinical safety officer, not the proposer, countersigns a pending change, which creates the
    policy version the proposer signed. Refused if another version landed since it was proposed."""
    _policy_editor_require(actor)
    change = PolicyChange.objects.filter(pk=change_id).first()
    if change is None:
        raise NotFound("No such policy change.")
    if change.proposed_by_id == actor.pk:
        audit_record_denied(
            action=AuditAction.POLICY_CREATED, object_type="approval_policy_change", object_id=change.pk,
            actor=actor, reason="same_signer",
        )  # fmt: skip
        raise PermissionRefused(
            "You proposed this change; a different clinical safety officer must countersign it.",
            code="policy_same_signer",
        )
    signature_reauthenticate(signer=actor, password=password, record_type="approval_policy_change", record_id=change_id)
    with transaction.atomic():
        latest = ApprovalPolicy.objects.select_for_update().order_by("-version").first()
        change = _pending_change_locked(change_id)
        if latest is None or latest.pk != change.base_policy_id:
            raise InvalidTransition(
                "The policy has changed since this was proposed, so it cannot apply; withdraw it and propose again.",
                code="policy_change_stale",
            )
        policy = ApprovalPolicy(
            version=latest.version + 1, created_at=timezone.now(), created_by=change.proposed_by,
            requires_second_signer=change.requires_second_signer, change_reason=change.reason,
            signature=change.proposer_signature, **change.values,
        )  # fmt: skip
        content = policy_content(policy)
        if not signature_verify(
            signature=change.proposer_signature, record_type="approval_policy", record_id=f"v{policy.version}",
            content=content,
        ):  # fmt: skip
            raise InvalidTransition(
                "The proposer's signature no longer matches this change.", code="policy_change_stale"
            )
        policy.second_signature = signature_create(
            signer=actor, meaning=SignatureMeaning.APPROVED, record_type="approval_policy",
            record_id=f"v{policy.version}", content=content,
        )  # fmt: skip
        policy.save()
        PolicyChange.objects.filter(pk=change.pk).update(
            status=PolicyChangeStatus.APPLIED, decided_by=actor, decided_at=policy.second_signature.signed_at,
            decision_signature=policy.second_signature, policy=policy,
        )  # fmt: skip
        _policy_created_record(policy=policy, previous=latest, actor=actor, content=content, change_id=change.pk)
    return policy


def approval_policy_change_withdraw(*, actor: User, change_id: int, password: str, reason: str) -> PolicyChange:
    """Withdraw a pending change (the proposer or another clinical safety officer), signed, with a reason."""
    _policy_editor_require(actor)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why it is withdrawn.", fields={"reason": ["This field is required."]})
    if not PolicyChange.objects.filter(pk=change_id).exists():
        raise NotFound("No such policy change.")
    signature_reauthenticate(signer=actor, password=password, record_type="approval_policy_change", record_id=change_id)
    with transaction.atomic():
        change = _pending_change_locked(change_id)
        signature = signature_create(
            signer=actor, meaning=SignatureMeaning.REJECTED, record_type="approval_policy_change",
            record_id=change.pk, content={"change_id": change.pk, "reason": reason},
        )  # fmt: skip
        change.status = PolicyChangeStatus.WITHDRAWN
        change.decided_by, change.decided_at, change.decision_signature = actor, signature.signed_at, signature
        change.withdraw_reason = reason
        change.save(update_fields=["status", "decided_by", "decided_at", "decision_signature", "withdraw_reason"])
        audit_record(
            action=AuditAction.POLICY_CHANGE_WITHDRAWN, object_type="approval_policy_change", object_id=change.pk,
            actor=actor, payload={"reason_hmac": audit_digest(reason)},
        )  # fmt: skip
    return change


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
