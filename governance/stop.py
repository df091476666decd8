"""The stop switch (issue 10; EU AI Act art. 14(4)(e): a human can "interrupt the system through a 'stop' button
or a similar procedure that allows the system to come to a halt in a safe state").

A clinical safety officer stops the AI for everyone, or for one clinic (care team), with one electronic signature
(governance.services: password re-entry, printed name, UTC time, meaning "stopped") bound to the stop's content;
resuming is a second signature (meaning "resumed") on the same stop. Each is audited in the transaction that
writes it. While a stop is in force, evaluations of the patients in its scope use the rules alone: the safety
rules still run on every reading, the model is not used, and every proposal goes to a clinician
(clinaiops.loops.services.evaluation checks `ai_stop_in_force` under the patient's lock, right before it stores a
recommendation, so an evaluation already under way when the stop lands respects it too).

Refused, and audited as denied: anyone but a clinical safety officer; a second stop of a scope already stopped; a
resume of a stop already resumed. A wrong password is refused and audited by `signature_reauthenticate` itself.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.errors import (
    ApplicationError,
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionRefused,
    ValidationFailed,
)
from clinaiops.core.models import Role, User
from governance.models import AIStop, AIStopScope, SignatureMeaning
from governance.services import signature_create, signature_reauthenticate, signature_verify

RECORD_TYPE = "ai_stop"
REASON_MAX_LENGTH = 2000
# Arbitrary constant naming "the stop switch" among PostgreSQL advisory locks (the ledger's is another).
_STOP_LOCK_KEY = 0x41495354  # "AIST"


def ai_stop_barrier(*, exclusive: bool) -> None:
    """Order a stop against evaluations in flight, on PostgreSQL, with a transaction-scoped advisory lock.

    A stop takes it exclusively before it writes; an evaluation takes it shared, under the patient's lock, before
    its last look at the stop and holds it until it commits. So an evaluation that looked before the stop
    committed also commits before it (the stop waits for it), and one that looks later waits for the stop and
    sees it: no recommendation made without the stop is committed after the stop. The evaluation must take it
    before it writes any audit event, so both take the stop's lock before the ledger's and cannot deadlock.
    SQLite (the demo) runs one writer at a time and has no advisory locks; there it is a no-op."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)" if exclusive else "SELECT pg_advisory_xact_lock_shared(%s)",
            [_STOP_LOCK_KEY],
        )


# --- reads -------------------------------------------------------------------------------------------------------


def ai_stop_in_force(*, patient: Patient | None = None, care_team: CareTeam | int | None = None) -> AIStop | None:
    """The stop that holds for this patient's clinic (or this clinic) now: a global one, or the clinic's own. One
    query, on the patient's `care_team_id` (no join). With neither argument, only a global stop counts."""
    team_id: int | None
    if patient is not None:
        team_id = patient.care_team_id
    elif isinstance(care_team, CareTeam):
        team_id = care_team.pk
    else:
        team_id = care_team
    scope = Q(scope=AIStopScope.GLOBAL)
    if team_id is not None:
        scope |= Q(scope=AIStopScope.CARE_TEAM, care_team_id=team_id)
    # A global stop first: it is the one that says most about why the AI is off.
    return AIStop.objects.filter(scope, resumed_at__isnull=True).order_by("scope", "stopped_at").first()


def ai_stop_in_force_exact(*, scope: str, care_team: CareTeam | None) -> AIStop | None:
    """The stop in force for exactly this scope (not a global one covering a clinic)."""
    stops = AIStop.objects.filter(scope=scope, resumed_at__isnull=True)
    if scope == AIStopScope.CARE_TEAM:
        stops = stops.filter(care_team=care_team)
    return stops.first()


def ai_stops_in_force() -> list[AIStop]:
    """Every stop in force, for the banner on every portal page (one query)."""
    return list(
        AIStop.objects.filter(resumed_at__isnull=True)
        .select_related("care_team", "stop_signature")
        .order_by("scope", "stopped_at")
    )


def ai_stop_exists(*, stop_id: int) -> bool:
    return AIStop.objects.filter(pk=stop_id).exists()


def ai_stop_history(*, limit: int = 50) -> QuerySet[AIStop]:
    return AIStop.objects.select_related(
        "care_team", "stopped_by", "resumed_by", "stop_signature", "resume_signature"
    ).order_by("-stopped_at")[:limit]


def ai_stop_content(stop: AIStop) -> dict[str, Any]:
    """What the stop signature covers: which stop, its scope and the officer's reason."""
    return {
        "ai_stop": str(stop.uuid),
        "scope": stop.scope,
        "care_team_id": stop.care_team_id,
        "reason": stop.reason,
    }


def ai_resume_content(stop: AIStop) -> dict[str, Any]:
    """What the resume signature covers: the stop it ends (and so that stop's signature) and the reason."""
    return {
        "ai_stop": str(stop.uuid),
        "stop_signature_sha256": stop.stop_signature.record_sha256,
        "resume_reason": stop.resume_reason,
    }


def ai_stop_verify(stop: AIStop) -> bool:
    """Both signatures (the resume one, if resumed) still match the stop as stored."""
    record_id = str(stop.uuid)
    stopped = signature_verify(
        signature=stop.stop_signature, record_type=RECORD_TYPE, record_id=record_id, content=ai_stop_content(stop)
    )
    if stop.resume_signature is None:
        return stopped
    return stopped and signature_verify(
        signature=stop.resume_signature, record_type=RECORD_TYPE, record_id=record_id,
        content=ai_resume_content(stop),
    )  # fmt: skip


# --- writes ------------------------------------------------------------------------------------------------------


def _refuse(*, action: AuditAction, actor: User, object_id: object, error: ApplicationError) -> NoReturn:
    audit_record_denied(action=action, object_type=RECORD_TYPE, object_id=object_id, actor=actor, reason=error.code)
    raise error


def _safety_officer_require(*, actor: User, action: AuditAction, object_id: object) -> None:
    if actor.role != Role.SAFETY_OFFICER:
        _refuse(
            action=action,
            actor=actor,
            object_id=object_id,
            error=PermissionRefused(
                "Only a clinical safety officer can stop or resume the AI.", code="not_safety_officer"
            ),
        )


def _reason_clean(reason: str, *, field: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("Say why.", fields={field: ["A reason is required."]})
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationFailed("The reason is too long.", fields={field: [f"At most {REASON_MAX_LENGTH} characters."]})
    return text


def _already_stopped(scope: str, care_team: CareTeam | None) -> Conflict:
    where = "everyone" if scope == AIStopScope.GLOBAL else f"the clinic {care_team}"
    return Conflict(f"The AI is already stopped for {where}; resume that stop first.", code="ai_already_stopped")


def ai_stop(*, actor: User, password: str, scope: str, care_team: CareTeam | None = None, reason: str) -> AIStop:
    """A clinical safety officer stops the AI for everyone (scope "global") or for one clinic (scope
    "care_team", with `care_team`), e-signing with their password. From the commit on, evaluations in that scope
    use the rules alone and every proposal goes to review. Refused, and audited, for anyone else, and while the
    same scope is already stopped."""
    object_id = care_team.pk if care_team is not None else "global"
    _safety_officer_require(actor=actor, action=AuditAction.AI_STOPPED, object_id=object_id)
    if scope not in AIStopScope.values:
        raise ValidationFailed("Unknown scope.", fields={"scope": [f"Choose one of {', '.join(AIStopScope.values)}."]})
    if scope == AIStopScope.CARE_TEAM and care_team is None:
        raise ValidationFailed("Choose the clinic to stop.", fields={"care_team": ["Required for one clinic."]})
    if scope == AIStopScope.GLOBAL and care_team is not None:
        raise ValidationFailed("A stop for everyone names no clinic.", fields={"care_team": ["Leave it empty."]})
    text = _reason_clean(reason, field="reason")
    if ai_stop_in_force_exact(scope=scope, care_team=care_team) is not None:
        _refuse(
            action=AuditAction.AI_STOPPED, actor=actor, object_id=object_id, error=_already_stopped(scope, care_team)
        )
    signature_reauthenticate(signer=actor, password=password, record_type=RECORD_TYPE, record_id=object_id)
    try:
        with transaction.atomic():
            ai_stop_barrier(exclusive=True)  # waits for evaluations in flight to commit
            stop = AIStop(
                uuid=uuid.uuid4(),
                scope=scope,
                care_team=care_team,
                reason=text,
                stopped_by=actor,
                stopped_at=timezone.now(),
            )
            stop.stop_signature = signature_create(
                signer=actor,
                meaning=SignatureMeaning.STOPPED,
                record_type=RECORD_TYPE,
                record_id=stop.uuid,
                content=ai_stop_content(stop),
            )
            stop.save()
            audit_record(
                action=AuditAction.AI_STOPPED,
                object_type=RECORD_TYPE,
                object_id=stop.pk,
                actor=actor,
                # The reason is free text: a keyed digest only (DESIGN §4).
                payload={
                    "scope": scope,
                    "care_team_id": stop.care_team_id,
                    "signature_id": stop.stop_signature.pk,
                    "reason_hmac": audit_digest({"reason": text}),
                },
            )
    except IntegrityError:
        # Another officer stopped the same scope between the check above and this insert (the partial unique
        # constraints): this one is refused, the other stands.
        _refuse(
            action=AuditAction.AI_STOPPED, actor=actor, object_id=object_id, error=_already_stopped(scope, care_team)
        )
    return stop


def ai_resume(*, actor: User, password: str, stop_id: int, reason: str) -> AIStop:
    """A clinical safety officer resumes the AI that a stop halted, e-signing with their password. Autonomy
    comes back within the bounds as before for the next evaluation (unless another stop still covers the
    clinic). Refused, and audited, for anyone else and for a stop already resumed."""
    _safety_officer_require(actor=actor, action=AuditAction.AI_RESUMED, object_id=stop_id)
    stored = AIStop.objects.filter(pk=stop_id).first()
    if stored is None:
        raise NotFound("No such stop.", code="ai_stop_not_found")
    text = _reason_clean(reason, field="reason")

    def already_resumed() -> InvalidTransition:
        return InvalidTransition("This stop has already been resumed.", code="ai_stop_already_resumed")

    if stored.resumed_at is not None:
        _refuse(action=AuditAction.AI_RESUMED, actor=actor, object_id=stop_id, error=already_resumed())
    signature_reauthenticate(signer=actor, password=password, record_type=RECORD_TYPE, record_id=stop_id)
    with transaction.atomic():
        # Two officers resuming at once: one signs, the other finds it resumed under the lock.
        stop = AIStop.objects.select_for_update().select_related("stop_signature").get(pk=stop_id)
        if stop.resumed_at is not None:
            error: ApplicationError | None = already_resumed()
        else:
            error = None
            stop.resumed_by = actor
            stop.resumed_at = timezone.now()
            stop.resume_reason = text
            stop.resume_signature = signature_create(
                signer=actor,
                meaning=SignatureMeaning.RESUMED,
                record_type=RECORD_TYPE,
                record_id=stop.uuid,
                content=ai_resume_content(stop),
            )
            stop.save(update_fields=["resumed_by", "resumed_at", "resume_reason", "resume_signature"])
            audit_record(
                action=AuditAction.AI_RESUMED,
                object_type=RECORD_TYPE,
                object_id=stop.pk,
                actor=actor,
                payload={
                    "scope": stop.scope,
                    "care_team_id": stop.care_team_id,
                    "signature_id": stop.resume_signature.pk,
                    "stopped_for_seconds": int((stop.resumed_at - stop.stopped_at).total_seconds()),
                    "reason_hmac": audit_digest({"reason": text}),
                },
            )
    if error is not None:
        _refuse(action=AuditAction.AI_RESUMED, actor=actor, object_id=stop_id, error=error)
    return stop
