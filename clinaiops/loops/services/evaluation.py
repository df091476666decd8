"""Patient–AI loop: an evaluation. The model of the patient's arm (or, when it cannot be trusted, the rules
alone) proposes one titration step, the approval policy tiers it, and the recommendation is stored with
everything needed to reconstruct why (DESIGN §2, §3).

Three rules keep clinicians' work safe from evaluations:
- a decided (signed) recommendation is never superseded. While one waits for the patient's response, a
  clinician's "Evaluate now" is refused with a message, and a scheduled evaluation is *held*: it is stored, but
  goes to the review queue (reason "decision_awaiting_response") instead of replacing the decision or reaching
  the patient beside it;
- evaluations of one patient are serialized on the patient row, so two of them cannot both supersede, or both
  be created, from the same state;
- one click is one evaluation: an on-demand evaluation within ON_DEMAND_REPEAT_SECONDS of the last one, with
  no reading received since, returns that one instead of making another.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.access import care_team_clinician_require
from clinaiops.care.models import Patient, Reading
from clinaiops.care.selectors import alerts_open_for, readings_recent
from clinaiops.core.errors import Conflict
from clinaiops.core.models import User
from clinaiops.core.regimen import MAX_STEP, MIN_STEP
from clinaiops.loops.models import (
    DELIVERED_AT_ONCE,
    Recommendation,
    RecommendationStatus,
    ReviewDecision,
    Tier,
    Trigger,
)
from clinaiops.loops.services.transitions import recommendation_transition
from clinaiops.loops.wording import patient_reason
from governance.models import ApprovalPolicy, AutonomyBounds
from governance.policy import TierInput, proposal_tier
from governance.selectors import autonomy_bounds_current, effective_bounds_of
from governance.services import approval_policy_current
from governance.stop import ai_stop_barrier, ai_stop_in_force
from inference.artifacts import ArtifactMissing, ArtifactTampered
from inference.feature_source import feature_window_load
from inference.features import FEATURE_SET_VERSION, WINDOW_DAYS, FeatureWindow, feature_vector
from inference.manifest import approval_trusted
from inference.models import ModelVersion
from inference.monitoring.models import RULES_ONLY_ARM
from inference.monitoring.routing import Routing, routing_for_patient
from inference.monitoring.services.integrity import model_integrity_failure_record, model_integrity_hold_seen
from inference.monitoring.services.predictions import prediction_log_record, shadow_score_record
from inference.runtime import model_explain, model_score

# A double click, or two clinicians pressing "Evaluate now" together, arrives well within this; a deliberate
# second evaluation after new data is not held back, because a reading received since always allows one.
ON_DEMAND_REPEAT_SECONDS = 60
_STEP_DELTA = {"decrease": -1, "maintain": 0, "increase": 1}
_RULES_ONLY_REASON = "Your care team will review your recent readings and decide whether your medicine should change."


class EvaluationRefused(Conflict):
    code = "evaluation_refused"


@dataclass(frozen=True)
class EvaluationOutcome:
    """What an evaluation request came to: a new recommendation, the one it repeats, or none (with why)."""

    recommendation: Recommendation | None
    created: bool
    skipped_reason: str = ""


@dataclass(frozen=True)
class _Proposal:
    """What the model (or the rules alone) proposes, before the policy tiers it and it is stored."""

    arm: str
    probabilities: dict[str, float]
    top_factors: list[dict[str, Any]]
    action: str
    to_step: int
    confidence: float
    tier: str
    tier_reasons: tuple[str, ...]
    reason_text: str
    # Rules only: the ledger also records the arm the patient was routed to and why the model was refused.
    audit_extra: dict[str, Any] = field(default_factory=dict)
    queued_reason: str = "major_needs_review"
    shadow: ModelVersion | None = None
    shadow_probabilities: dict[str, float] | None = None
    shadow_failure: str = ""
    integrity_failure: str = ""


def _feasible_action(probabilities: dict[str, float], from_step: int) -> str:
    """The most probable action that stays on the regimen ladder."""
    feasible = dict(probabilities)
    if from_step <= MIN_STEP:
        feasible.pop("decrease", None)
    if from_step >= MAX_STEP:
        feasible.pop("increase", None)
    return max(feasible, key=lambda name: feasible[name])


def _skip(patient: Patient, reason: str, actor: User | None) -> EvaluationOutcome:
    with transaction.atomic():
        audit_record(
            action=AuditAction.EVALUATION_SKIPPED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            system_reason="" if actor else "scheduled_evaluation",
            payload={"reason": reason},
        )
    return EvaluationOutcome(recommendation=None, created=False, skipped_reason=reason)


def _repeat_and_awaiting(
    patient: Patient, trigger: str, as_of: datetime
) -> tuple[Recommendation | None, Recommendation | None]:
    """(repeat, decided) from one query. The evaluation this request repeats: today's scheduled one, or an
    on-demand one moments ago with no reading received since. The signed decision delivered to the patient and not
    yet answered, if any. Read under the patient's lock, which every evaluation takes first."""
    if trigger == Trigger.SCHEDULED:
        repeats = Q(evaluation_date=as_of.date(), trigger=Trigger.SCHEDULED)
    else:
        # No upper bound: a concurrent click that took its clock a moment later may have stored it first.
        repeats = Q(trigger=Trigger.ON_DEMAND, created_at__gte=as_of - timedelta(seconds=ON_DEMAND_REPEAT_SECONDS))
    signed = ReviewDecision.objects.filter(recommendation=OuterRef("pk"))
    rows = list(
        Recommendation.objects.filter(patient=patient)
        .annotate(signed=Exists(signed))
        .filter(repeats | Q(status=RecommendationStatus.DELIVERED, signed=True))
        .order_by("-created_at", "-pk")
    )
    awaiting = [r for r in rows if r.status == RecommendationStatus.DELIVERED and r.signed]  # type: ignore[attr-defined]
    decided = max(awaiting, key=lambda rec: rec.delivered_at or rec.created_at) if awaiting else None
    if trigger == Trigger.SCHEDULED:
        repeat = next((r for r in rows if r.trigger == Trigger.SCHEDULED and r.evaluation_date == as_of.date()), None)
        return repeat, decided
    since = as_of - timedelta(seconds=ON_DEMAND_REPEAT_SECONDS)
    last = next((r for r in rows if r.trigger == Trigger.ON_DEMAND and r.created_at >= since), None)
    if last is not None and Reading.objects.filter(patient=patient, received_at__gt=last.created_at).exists():
        last = None
    return last, decided


def _awaiting_message(decided: Recommendation) -> str:
    delivered = decided.delivered_at or decided.created_at
    return (
        f"A signed decision delivered {delivered.astimezone(UTC):%d %b %Y %H:%M} UTC is waiting for the patient's "
        "response. A new evaluation now would replace it, so evaluate again once the patient has responded."
    )


def _model_proposal(
    *, routing: Routing, version: ModelVersion, patient: Patient, features: dict[str, float]
) -> _Proposal:
    """Score and explain with the served model. A model whose artifact fails its hash, or that lacks a valid
    approval attestation, is never served (DESIGN §3 "Serving"): the proposal is then the rules-only one. The
    shadow costs one more ONNX run and no SHAP, needs no approval (its output never reaches a patient), and a
    broken shadow never stops the served arm."""
    try:
        probabilities = model_score(version, features)
        # Production and canary reach the patient: the version must carry the approval its two sign-offs signed
        # (ModelNotApproved, a ModelUntrusted), not just a row that says "approved" (issue 8 §2).
        approval_trusted(version)
    except (ArtifactTampered, ArtifactMissing) as exc:
        return _rules_only_proposal(patient=patient, routed_arm=routing.arm, failure=type(exc).__name__)
    action = _feasible_action(probabilities, patient.current_step)
    to_step = patient.current_step + _STEP_DELTA[action]
    shadow_probabilities: dict[str, float] | None = None
    shadow_failure = ""
    if routing.shadow is not None:
        try:
            shadow_probabilities = model_score(routing.shadow, features)
        except (ArtifactTampered, ArtifactMissing) as exc:
            shadow_failure = type(exc).__name__
    try:
        explained = model_explain(version, features, action)
    except (ArtifactTampered, ArtifactMissing) as exc:  # an explainer file swapped between scoring and explaining
        return _rules_only_proposal(patient=patient, routed_arm=routing.arm, failure=type(exc).__name__)
    factors = [
        {"feature": f.feature, "label": f.label, "value": round(f.value, 3), "contribution": round(f.contribution, 4)}
        for f in explained
    ]
    return _Proposal(
        arm=routing.arm,
        probabilities=probabilities,
        top_factors=factors,
        action=action,
        to_step=to_step,
        confidence=probabilities[action],
        tier="",
        tier_reasons=(),
        reason_text=patient_reason(
            action=action,
            to_step=to_step,
            features=features,
            target=(patient.target_sbp, patient.target_dbp),
            factors=factors,
        ),
        shadow=routing.shadow,
        shadow_probabilities=shadow_probabilities,
        shadow_failure=shadow_failure,
    )


def _rules_only_proposal(*, patient: Patient, routed_arm: str, failure: str) -> _Proposal:
    """Safe behaviour when the routed model cannot be trusted: its artifact failed its hash (`failure` names
    the error) or an open integrity alert still holds it ("integrity_hold").

    No model output is used. The safety rules have already run on every reading; the recommendation proposes
    no change and goes to the review queue with reason "no_model", so a clinician decides. It records the
    refused version with the arm "rules_only". ML engineers are alerted once per version; the version stays
    held until one of them acknowledges the alert, which is refused while its artifacts still fail."""
    return _Proposal(
        arm=RULES_ONLY_ARM,
        probabilities={},
        top_factors=[],
        action="maintain",
        to_step=patient.current_step,
        confidence=0.0,
        tier=Tier.MAJOR,
        tier_reasons=("no_model",),
        reason_text=_RULES_ONLY_REASON,
        audit_extra={"routed_arm": routed_arm, "fallback": "model_integrity_failure", "failure": failure},
        queued_reason="rules_only_fallback",
        integrity_failure=failure,
    )


def _ai_stopped_proposal(*, patient: Patient, routed_arm: str, stop_id: int) -> _Proposal:
    """A clinical safety officer has stopped the AI for the patient's clinic or for everyone (governance.stop;
    EU AI Act art. 14(4)(e)). As for an untrusted model: no model output is used, the safety rules have run on
    every reading, and the proposal (no change) goes to a clinician with reason "ai_stopped"."""
    return replace(
        _rules_only_proposal(patient=patient, routed_arm=routed_arm, failure=""),
        tier_reasons=("ai_stopped",),
        audit_extra={"routed_arm": routed_arm, "fallback": "ai_stopped", "ai_stop_id": stop_id},
        queued_reason="ai_stopped",
    )


def _tiered(
    proposal: _Proposal,
    *,
    patient: Patient,
    as_of: datetime,
    policy: ApprovalPolicy,
    bounds: AutonomyBounds | None,
    features: dict[str, float],
    window: FeatureWindow,
) -> _Proposal:
    if proposal.arm == RULES_ONLY_ARM:
        return proposal
    tiering = proposal_tier(
        TierInput(
            from_step=patient.current_step,
            to_step=proposal.to_step,
            confidence=proposal.confidence,
            open_safety_alert=alerts_open_for(patient=patient).exists(),
            autonomy_paused=patient.autonomy_paused,
            recent_readings=_readings_in_last(window, patient=patient, days=policy.min_readings_window_days),
            sbp_excess=features["sbp_excess_7d"],
            dbp_excess=features["dbp_excess_7d"],
        ),
        effective_bounds_of(bounds, policy),
    )
    return replace(proposal, tier=tiering.tier, tier_reasons=tiering.reasons)


def _readings_in_last(window: FeatureWindow, *, patient: Patient, days: int) -> int:
    """The readings taken in the `days` up to the window's end (both ends included), counted in the feature window
    already loaded when it covers them; a policy's longer window is counted in the database."""
    if days > WINDOW_DAYS:
        return readings_recent(patient=patient, end=window.as_of, window=timedelta(days=days)).count()
    start = (window.as_of - timedelta(days=days)).timestamp()
    return int(np.count_nonzero(window.taken_at >= start))


def _held_for_review(proposal: _Proposal) -> _Proposal:
    """A scheduled evaluation while a signed decision awaits the patient: kept, but only for a clinician."""
    return replace(
        proposal,
        tier=Tier.MAJOR,
        tier_reasons=(*proposal.tier_reasons, "decision_awaiting_response"),
        queued_reason="decision_awaiting_response",
    )


def _supersede_open(patient: Patient) -> None:
    """A newer proposal replaces any that still waits for review, or that reached the patient without a
    clinician's decision. A signed decision is never replaced (the caller has held or refused the evaluation)."""
    stale = Recommendation.objects.select_for_update().filter(
        patient=patient, status__in=[RecommendationStatus.PENDING_REVIEW, RecommendationStatus.DELIVERED]
    )
    for rec in stale:
        if ReviewDecision.objects.filter(recommendation=rec).exists():
            continue
        recommendation_transition(rec, RecommendationStatus.SUPERSEDED)
        audit_record(
            action=AuditAction.RECOMMENDATION_SUPERSEDED,
            object_type="recommendation",
            object_id=rec.pk,
            system_reason="newer_recommendation",
            payload={"patient_id": patient.pk},
        )


def _recommendation_create(
    *,
    patient: Patient,
    trigger: str,
    as_of: datetime,
    actor: User | None,
    version: ModelVersion,
    policy: ApprovalPolicy,
    bounds: AutonomyBounds | None,
    features: dict[str, float],
    proposal: _Proposal,
) -> Recommendation:
    """Store one tiered proposal with its audit events (created, then delivered or queued) and its monitoring
    records, after superseding what it replaces. The one place a recommendation is made. Caller holds the
    transaction and the patient's lock."""
    _supersede_open(patient)
    minor = proposal.tier in DELIVERED_AT_ONCE
    rec = Recommendation.objects.create(
        patient=patient,
        created_at=as_of,
        trigger=trigger,
        evaluation_date=as_of.date(),
        model_version=version,
        arm=proposal.arm,
        policy=policy,
        bounds=bounds,
        feature_set_version=FEATURE_SET_VERSION,
        features=features,
        probabilities=proposal.probabilities,
        top_factors=proposal.top_factors,
        action=proposal.action,
        from_step=patient.current_step,
        to_step=proposal.to_step,
        confidence=proposal.confidence,
        tier=proposal.tier,
        tier_reasons=list(proposal.tier_reasons),
        status=RecommendationStatus.DELIVERED if minor else RecommendationStatus.PENDING_REVIEW,
        final_step=proposal.to_step if minor else None,
        reason_text=proposal.reason_text,
        delivered_at=as_of if minor else None,
    )
    audit_record(
        action=AuditAction.RECOMMENDATION_CREATED,
        object_type="recommendation",
        object_id=rec.pk,
        actor=actor,
        system_reason="" if actor else "scheduled_evaluation",
        payload={
            "patient_id": patient.pk,
            "model_sha256": version.sha256,
            "arm": proposal.arm,
            **proposal.audit_extra,
            "policy_version": policy.version,
            # Features are clinical values: a keyed digest, never a bare hash (DESIGN §4).
            "features_hmac": audit_digest(features),
            "action": proposal.action,
            "tier": proposal.tier,
            "tier_reasons": list(proposal.tier_reasons),
        },
    )
    audit_record(
        action=AuditAction.RECOMMENDATION_DELIVERED if minor else AuditAction.RECOMMENDATION_QUEUED,
        object_type="recommendation",
        object_id=rec.pk,
        system_reason=(
            "maintain_feedback"
            if proposal.tier == Tier.FEEDBACK
            else "minor_within_bounds"
            if minor
            else proposal.queued_reason
        ),
        payload={"patient_id": patient.pk},
    )
    if proposal.arm == RULES_ONLY_ARM:
        return rec  # no model output exists to monitor
    prediction_log_record(
        recommendation_id=rec.pk,
        patient=patient,
        arm=proposal.arm,
        model_version=version,
        feature_set_version=FEATURE_SET_VERSION,
        features=features,
        probabilities=proposal.probabilities,
        action=proposal.action,
        from_step=rec.from_step,
        proposed_step=proposal.to_step,
        tier=proposal.tier,
        created_at=as_of,
    )
    if proposal.shadow is not None and proposal.shadow_probabilities is not None:
        shadow_score_record(
            recommendation_id=rec.pk,
            patient=patient,
            shadow_version=proposal.shadow,
            probabilities=proposal.shadow_probabilities,
            action=_feasible_action(proposal.shadow_probabilities, rec.from_step),
            served_version=version,
            served_arm=proposal.arm,
            served_action=proposal.action,
            scored_at=as_of,
        )
    if proposal.shadow is not None and proposal.shadow_failure:
        model_integrity_failure_record(version=proposal.shadow, arm="shadow", error=proposal.shadow_failure)
    return rec


def _refuse(patient: Patient, decided: Recommendation, actor: User | None) -> NoReturn:
    audit_record_denied(
        action=AuditAction.EVALUATION_REFUSED, object_type="patient", object_id=patient.pk, actor=actor,
        reason="decision_awaiting_response",
    )  # fmt: skip
    raise EvaluationRefused(_awaiting_message(decided))


def _evaluate(*, patient: Patient, trigger: str, as_of: datetime, actor: User | None) -> EvaluationOutcome:
    decided: Recommendation | None = None
    with transaction.atomic():  # a savepoint when nested
        # Serialize evaluations of this patient on its row, read afresh with the lock (its step, targets and
        # autonomy as they are now), so that everything below, from the repeat check to the supersede, sees one
        # state. A repeat or a refusal is found before any scoring.
        patient.refresh_from_db(from_queryset=Patient.objects.select_for_update())
        # Before the stop's looks and any audit event: a stop committing now waits for this transaction, or this
        # waits for the stop and sees it (governance.stop).
        ai_stop_barrier(exclusive=False)
        repeat, decided = _repeat_and_awaiting(patient, trigger, as_of)
        if repeat is not None:
            return EvaluationOutcome(recommendation=repeat, created=False)
        if decided is None or trigger != Trigger.ON_DEMAND:
            return _evaluate_locked(patient=patient, trigger=trigger, as_of=as_of, actor=actor, decided=decided)
    # Refused outside the transaction, so that the refusal's own audit event stays.
    assert decided is not None
    _refuse(patient, decided, actor)


def _evaluate_locked(
    *, patient: Patient, trigger: str, as_of: datetime, actor: User | None, decided: Recommendation | None
) -> EvaluationOutcome:
    """The evaluation proper, under the patient's lock and the stop's barrier. `decided`: a signed decision that
    awaits the patient, beside which a scheduled evaluation is held for review."""
    routing = routing_for_patient(patient.pk)
    version = routing.version
    if version is None:
        return _skip(patient, "no_model_serving", actor)
    window = feature_window_load(patient=patient, as_of=as_of)
    if not len(window.taken_at):  # no reading in the last WINDOW_DAYS (14) days
        return _skip(patient, "no_recent_readings", actor)
    features = feature_vector(window)
    stop = ai_stop_in_force(patient=patient)
    if routing.version_held:
        proposal = _rules_only_proposal(patient=patient, routed_arm=routing.arm, failure="integrity_hold")
        model_integrity_hold_seen(version=version)
    elif stop is None:  # stopped: the model is not even run
        proposal = _model_proposal(routing=routing, version=version, patient=patient, features=features)
        if proposal.integrity_failure:  # a changed artifact must be seen: engineers are alerted
            model_integrity_failure_record(version=version, arm=routing.arm, error=proposal.integrity_failure)
    if stop is not None:
        proposal = _ai_stopped_proposal(patient=patient, routed_arm=routing.arm, stop_id=stop.pk)
    policy = approval_policy_current()
    bounds = autonomy_bounds_current(patient=patient)
    tiered = _tiered(
        proposal, patient=patient, as_of=as_of, policy=policy, bounds=bounds, features=features, window=window
    )
    # Looked at again right before storing. Another process's stop cannot land in between (it waits for the barrier
    # this transaction holds), but this one's can, and SQLite (the demo) has no barrier.
    if stop is None and (stop := ai_stop_in_force(patient=patient)) is not None:
        tiered = _ai_stopped_proposal(patient=patient, routed_arm=routing.arm, stop_id=stop.pk)
    rec = _recommendation_create(
        patient=patient, trigger=trigger, as_of=as_of, actor=actor, version=version, policy=policy,
        bounds=bounds, features=features, proposal=tiered if decided is None else _held_for_review(tiered),
    )  # fmt: skip
    return EvaluationOutcome(recommendation=rec, created=True)


def evaluation_run(
    *, patient: Patient, trigger: str = Trigger.SCHEDULED, as_of: datetime | None = None, actor: User | None = None
) -> Recommendation | None:
    """Score the patient's feature window with the model of the arm the patient is routed to (production, or
    the canary for its sticky share), explain it, tier it and store the recommendation with its arm and
    version. A shadow model, if deployed, scores the same window; its output is logged, never shown. A model
    whose artifact fails its hash is never used: the evaluation falls back to rules only. Idempotent for
    scheduled runs: at most one per patient per day. None when nothing could be evaluated (no model serving,
    no recent readings); the skip is audited."""
    return _evaluate(patient=patient, trigger=trigger, as_of=as_of or timezone.now(), actor=actor).recommendation


def evaluate_on_demand(*, actor: User, patient: Patient) -> EvaluationOutcome:
    """A clinician on the care team asks for an evaluation now ("Evaluate now"). Refused under emergency
    access (clinaiops.care.access) and while a signed decision waits for the patient (EvaluationRefused, with
    the reason); a repeat within ON_DEMAND_REPEAT_SECONDS returns the evaluation it repeats."""
    care_team_clinician_require(actor=actor, patient=patient, action=AuditAction.EVALUATION_REFUSED)
    return _evaluate(patient=patient, trigger=Trigger.ON_DEMAND, as_of=timezone.now(), actor=actor)


def patients_due_for_evaluation(*, as_of: datetime) -> list[int]:
    """Patients whose last scheduled evaluation is at least EVALUATION_INTERVAL_DAYS old (or never)."""
    interval = timedelta(days=settings.EVALUATION_INTERVAL_DAYS)
    recent = Recommendation.objects.filter(
        trigger=Trigger.SCHEDULED, created_at__gt=as_of - interval, created_at__lte=as_of
    ).values("patient_id")
    return list(Patient.objects.exclude(pk__in=recent).order_by("pk").values_list("pk", flat=True))
