"""Clinician–AI loop: a clinician on the patient's care team accepts, modifies or rejects a major proposal. The
decision is an e-signature (DESIGN §4), is delivered to the patient and becomes a training label.

Signing is refused under emergency access (clinaiops.care.access says why), and a decision, once signed, is
final: a second attempt is told who decided and when.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.access import care_team_clinician_require
from clinaiops.core.errors import InvalidTransition, ValidationFailed
from clinaiops.core.models import User
from clinaiops.core.regimen import MAX_STEP, MIN_STEP
from clinaiops.loops.models import DecisionOutcome, Recommendation, RecommendationStatus, ReviewDecision
from clinaiops.loops.services.transitions import recommendation_transition
from governance.models import SignatureMeaning
from governance.services import signature_create, signature_reauthenticate
from inference.models import LabelProvenance
from inference.monitoring.services.predictions import decision_outcome_record
from inference.services.datasets import label_record

_MEANING = {
    DecisionOutcome.ACCEPTED: SignatureMeaning.APPROVED,
    DecisionOutcome.MODIFIED: SignatureMeaning.MODIFIED,
    DecisionOutcome.REJECTED: SignatureMeaning.REJECTED,
}
MAX_REASON_LENGTH = 2000


class AlreadyDecided(InvalidTransition):
    code = "already_decided"


def decision_content(decision: ReviewDecision) -> dict[str, Any]:
    """The canonical content an e-signature on a review decision is bound to."""
    return {
        "recommendation_id": decision.recommendation_id,
        "model_sha256": decision.recommendation.model_version.sha256,
        "proposed_step": decision.recommendation.to_step,
        "outcome": decision.outcome,
        "to_step": decision.to_step,
        "reason": decision.reason,
        "clinician_id": decision.clinician_id,
        "decided_at": decision.decided_at,
    }


def review_pending_require(*, recommendation: Recommendation) -> None:
    """Refuse a decision on a recommendation that no longer waits for review, saying what happened to it: who
    decided it and when (in UTC, as the signature records it), or that a newer proposal replaced it."""
    if recommendation.status == RecommendationStatus.PENDING_REVIEW:
        return
    decision = ReviewDecision.objects.select_related("signature").filter(recommendation=recommendation).first()
    if decision is not None:
        signature = decision.signature
        raise AlreadyDecided(
            f"This recommendation was already decided ({decision.get_outcome_display().lower()}) by "
            f"{signature.printed_name} at {signature.signed_at.astimezone(UTC):%d %b %Y %H:%M} UTC; "
            "a signed decision is final."
        )
    if recommendation.status == RecommendationStatus.SUPERSEDED:
        raise InvalidTransition("A newer proposal replaced this one before anyone decided it; review that one.")
    raise InvalidTransition(
        f"This recommendation is {recommendation.get_status_display().lower()} and no longer waits for review."
    )


def _decision_problems(
    *, recommendation: Recommendation, outcome: str, reason: str, to_step: int | None
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if outcome not in DecisionOutcome.values:
        problems["outcome"] = ["Choose accepted, modified or rejected."]
    if not reason:
        problems["reason"] = ["Give a reason for the decision."]
    elif len(reason) > MAX_REASON_LENGTH:
        problems["reason"] = [f"Keep the reason under {MAX_REASON_LENGTH} characters."]
    if outcome == DecisionOutcome.MODIFIED:
        if to_step is None or not MIN_STEP <= to_step <= MAX_STEP:
            problems["to_step"] = [f"Choose a step between {MIN_STEP} and {MAX_STEP}."]
        elif to_step == recommendation.to_step:
            problems["to_step"] = ["That is the proposed step; choose accept instead."]
    return problems


def review_decide(
    *, actor: User, recommendation: Recommendation, outcome: str, reason: str, password: str, to_step: int | None = None
) -> ReviewDecision:
    """Accept, modify or reject a major recommendation, signed with the clinician's password. The decision
    is delivered to the patient and becomes a training label."""
    care_team_clinician_require(
        actor=actor, patient=recommendation.patient, action=AuditAction.REVIEW_DECIDED,
        object_type="recommendation", object_id=recommendation.pk,
    )  # fmt: skip
    review_pending_require(recommendation=recommendation)
    reason = (reason or "").strip()
    problems = _decision_problems(recommendation=recommendation, outcome=outcome, reason=reason, to_step=to_step)
    if problems:
        raise ValidationFailed("The decision is incomplete.", fields=problems)
    signature_reauthenticate(signer=actor, password=password, record_type="recommendation", record_id=recommendation.pk)
    final_step = {
        DecisionOutcome.ACCEPTED: recommendation.to_step,
        DecisionOutcome.MODIFIED: to_step,
        DecisionOutcome.REJECTED: recommendation.from_step,
    }[DecisionOutcome(outcome)]
    assert final_step is not None
    with transaction.atomic():
        # The recommendation and its patient, not the model version: every sign-off on one model would queue behind
        # every other otherwise.
        rec = (
            Recommendation.objects.select_for_update(of=("self", "patient"))
            .select_related("model_version", "patient")
            .get(pk=recommendation.pk)
        )
        # Again under the lock: another clinician may have signed while this one typed the password.
        review_pending_require(recommendation=rec)
        now = timezone.now()
        recommendation_transition(rec, RecommendationStatus.DELIVERED, final_step=final_step, delivered_at=now)
        decision = ReviewDecision(
            recommendation=rec, clinician=actor, outcome=outcome, to_step=final_step, reason=reason, decided_at=now
        )
        decision.signature = signature_create(
            signer=actor,
            meaning=_MEANING[DecisionOutcome(outcome)],
            record_type="review_decision",
            record_id=f"recommendation:{rec.pk}",
            content=decision_content(decision),
        )
        decision.save()
        audit_record(
            action=AuditAction.REVIEW_DECIDED,
            object_type="recommendation",
            object_id=rec.pk,
            actor=actor,
            payload={
                "decision_id": decision.pk,
                "outcome": outcome,
                "final_step": final_step,
                "reason_hmac": audit_digest(reason),
                "signature_id": decision.signature.pk,
            },
        )
        label_record(
            patient=rec.patient,
            as_of=rec.created_at,
            from_step=rec.from_step,
            to_step=final_step,
            provenance=LabelProvenance.CLINICIAN,
            source_ref=f"review_decision:{decision.pk}",
        )
        decision_outcome_record(
            recommendation_id=rec.pk,
            outcome=outcome,
            overridden=outcome != DecisionOutcome.ACCEPTED,
            final_step=final_step,
            decided_at=now,
        )
    recommendation.refresh_from_db()
    return decision
