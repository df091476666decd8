"""Serving pointers: which version serves each arm (an alias, separate from approval), promotion, rollback and
the history that says which version served when (DESIGN §3 "Serving", "Deployment arms")."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from inference.models import ApprovalState, Arm, ModelVersion, ServingPointer, ServingPointerEvent

# Who may move a serving pointer by hand, and who may roll one back.
PROMOTER_ROLES = frozenset({Role.ML_ENGINEER})
ROLLBACK_ROLES = frozenset({Role.ML_ENGINEER, Role.SAFETY_OFFICER})
# DESIGN §3: production and canary reach patients, so they serve only versions with both sign-offs; shadow is
# logged and never shown, so a validated candidate may run there to gather evidence before sign-off.
SERVABLE_STATES: dict[str, frozenset[str]] = {
    Arm.PRODUCTION: frozenset({ApprovalState.APPROVED}),
    Arm.CANARY: frozenset({ApprovalState.APPROVED}),
    Arm.SHADOW: frozenset({ApprovalState.VALIDATED, ApprovalState.APPROVED}),
}


def _servable_or_refuse(arm: str, version: ModelVersion) -> None:
    allowed = SERVABLE_STATES[arm]
    if version.approval_state in allowed:
        return
    if version.approval_state == ApprovalState.VALIDATED:
        raise InvalidTransition(
            f"The {arm} arm serves only approved versions; {version.short_hash} is validated and needs two "
            "sign-offs first (an ML engineer and a clinical safety officer)."
        )
    raise InvalidTransition(
        f"A {version.approval_state} model cannot serve on the {arm} arm; it must be {' or '.join(sorted(allowed))}."
    )


def _pointer_move(
    *,
    arm: str,
    version: ModelVersion | None,
    actor: User | None,
    reason: str,
    is_rollback: bool = False,
    note: str = "",
    system_reason: str = "",
) -> ServingPointerEvent:
    """Move one arm's pointer and record the move. Caller holds the transaction and the pointer lock."""
    current = ServingPointer.objects.filter(arm=arm).first()
    previous = current.model_version if current else None
    now = timezone.now()
    if version is None:
        ServingPointer.objects.filter(arm=arm).delete()
    else:
        ServingPointer.objects.update_or_create(arm=arm, defaults={"model_version": version, "since": now})
    event = ServingPointerEvent.objects.create(
        arm=arm, model_version=version, previous_version=previous, set_at=now, set_by=actor, reason=reason,
        is_rollback=is_rollback, note=note,
    )  # fmt: skip
    payload: dict[str, str | int | bool | None] = {
        "to_sha256": version.sha256 if version else None,
        "from_sha256": previous.sha256 if previous else None,
        "reason": reason,
        "event_id": event.pk,
    }
    if is_rollback:
        payload["rollback"] = True
        # The words stay on the event; the ledger gets a keyed digest, which whoever holds the key can match to
        # the event's note and nobody else can reverse (DESIGN §4).
        payload["note_hmac"] = audit_digest(note)
    audit_record(
        action=AuditAction.SERVING_POINTER_SET,
        object_type="serving_pointer",
        object_id=arm,
        actor=actor,
        system_reason="" if actor else (system_reason or reason),
        payload=payload,
    )
    return event


def _pointer_move_refused(*, arm: str, actor: User, reason: str) -> None:
    audit_record_denied(
        action=AuditAction.SERVING_POINTER_SET, object_type="serving_pointer", object_id=arm, actor=actor, reason=reason
    )


def _arm_or_refuse(arm: str) -> None:
    if arm not in Arm.values:
        raise ValidationFailed("Unknown arm.", fields={"arm": [f"Choose one of {', '.join(Arm.values)}."]})


def serving_pointer_set(*, arm: str, version: ModelVersion | None, actor: User | None, reason: str) -> None:
    """Point an arm at a version (or clear it). Production and canary take only approved versions; shadow also
    takes validated ones (SERVABLE_STATES)."""
    _arm_or_refuse(arm)
    with transaction.atomic():
        ServingPointer.objects.select_for_update().filter(arm=arm).first()
        if version is not None:
            # Re-read under the lock: a version retired a moment ago must not start serving.
            version = ModelVersion.objects.select_for_update().get(pk=version.pk)
            _servable_or_refuse(arm, version)
        _pointer_move(arm=arm, version=version, actor=actor, reason=reason)


def model_version_promote(*, version: ModelVersion, arm: str, actor: User) -> None:
    """An ML engineer points an arm at a version (DESIGN §3: promotion is a pointer move, separate from
    approval). Refusals are audited."""
    _arm_or_refuse(arm)
    if actor.role not in PROMOTER_ROLES:
        _pointer_move_refused(arm=arm, actor=actor, reason="wrong_role")
        raise PermissionRefused("Only an ML engineer can promote a model version.")
    try:
        serving_pointer_set(arm=arm, version=version, actor=actor, reason="promote")
    except InvalidTransition:
        _pointer_move_refused(arm=arm, actor=actor, reason=f"not_servable_{version.approval_state}")
        raise


def _served_before(arm: str) -> tuple[bool, ModelVersion | None]:
    """Replay the arm's history as a stack: a move pushes, a rollback pops. The entry under the top is what
    served before the current version. Returns (anything to roll back to?, that version or None)."""
    stack: list[int | None] = []
    events = (
        ServingPointerEvent.objects.filter(arm=arm)
        .order_by("set_at", "pk")
        .values_list("model_version_id", "is_rollback")
    )
    for version_id, is_rollback in events:
        if is_rollback and stack:
            stack.pop()
            if stack and stack[-1] == version_id:
                continue
        stack.append(version_id)
    if len(stack) < 2:
        # One entry: the arm has served only what it serves now. Rolling that back leaves the arm empty,
        # which is the safe state (rules only, every proposal to review); nothing at all: nothing to undo.
        return (bool(stack) and stack[-1] is not None), None
    target_id = stack[-2]
    return True, None if target_id is None else ModelVersion.objects.get(pk=target_id)


def serving_rollback(*, arm: str, actor: User, reason: str) -> ServingPointerEvent:
    """Point an arm back at the version that served before the current one (from the pointer history), in one
    audited action. Only an ML engineer or a clinical safety officer may do it."""
    _arm_or_refuse(arm)
    if actor.role not in ROLLBACK_ROLES:
        _pointer_move_refused(arm=arm, actor=actor, reason="rollback_wrong_role")
        raise PermissionRefused("Only an ML engineer or a clinical safety officer can roll back a deployment.")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why you are rolling back.", fields={"reason": ["This field is required."]})
    return _rollback(arm=arm, actor=actor, note=reason[:200])


def serving_rollback_automatic(*, arm: str, system_reason: str) -> ServingPointerEvent:
    """The system's rollback, for the canary circuit breaker (inference.monitoring): the same move as
    `serving_rollback`, recorded as a rollback by the system with `system_reason` as its code. Recording it as a
    rollback keeps a later human rollback from re-deploying the version the breaker took down."""
    _arm_or_refuse(arm)
    return _rollback(arm=arm, actor=None, note=system_reason[:200])


def _rollback(*, arm: str, actor: User | None, note: str) -> ServingPointerEvent:
    with transaction.atomic():
        ServingPointer.objects.select_for_update().filter(arm=arm).first()
        possible, target = _served_before(arm)
        if not possible:
            raise InvalidTransition(f"Nothing serves on the {arm} arm, so there is nothing to roll back.")
        if target is not None:
            target = ModelVersion.objects.select_for_update().get(pk=target.pk)
            _servable_or_refuse(arm, target)
        return _pointer_move(
            arm=arm, version=target, actor=actor, reason="rollback", is_rollback=True, note=note,
            system_reason="" if actor else note,
        )  # fmt: skip
