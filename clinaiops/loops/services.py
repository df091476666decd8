"""The three loops as services (DESIGN §2). Each state change writes its audit event in its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.models import Alert, AlertKind, AlertStatus, Patient, Reading, SymptomKind
from clinaiops.care.selectors import alerts_open_for, readings_recent, symptoms_recent
from clinaiops.care.services import (
    ReadingInput,
    alert_open,
    autonomy_pause,
    reading_store,
    regimen_change,
    symptom_store,
)
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import InvalidTransition, NotFound, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import MAX_STEP, MIN_STEP
from clinaiops.loops.models import (
    RECOMMENDATION_TRANSITIONS,
    DecisionOutcome,
    Recommendation,
    RecommendationStatus,
    ReviewDecision,
    Tier,
    Trigger,
)
from clinaiops.loops.safety import CRISIS, HYPOTENSION, SafetyThresholds, is_low, safety_findings
from clinaiops.loops.wording import patient_reason
from governance.models import ApprovalPolicy, SignatureMeaning
from governance.policy import TierInput, proposal_tier
from governance.selectors import autonomy_bounds_current, effective_bounds
from governance.services import approval_policy_current, signature_create, signature_reauthenticate
from inference.artifacts import ArtifactMissing, ArtifactTampered
from inference.deployment import routing_for_patient
from inference.feature_source import features_for_patient
from inference.features import FEATURE_SET_VERSION
from inference.models import LabelProvenance, ModelVersion
from inference.monitoring.models import RULES_ONLY_ARM
from inference.monitoring.services import (
    decision_outcome_record,
    model_integrity_failure_record,
    model_integrity_hold_seen,
    prediction_log_record,
    shadow_score_record,
)
from inference.runtime import model_explain, model_score
from inference.services import label_record

_SYMPTOMS_WITH_LOW_BP = (SymptomKind.DIZZINESS, SymptomKind.SYNCOPE)


def safety_thresholds(policy: ApprovalPolicy) -> SafetyThresholds:
    return SafetyThresholds(
        crisis_sbp=policy.crisis_sbp,
        crisis_dbp=policy.crisis_dbp,
        hypotension_sbp=policy.hypotension_sbp,
        hypotension_dbp=policy.hypotension_dbp,
        hypotension_min_readings=policy.hypotension_min_readings,
    )


@dataclass(frozen=True)
class IngestResult:
    reading: Reading
    created: bool
    alerts: list[Alert] = field(default_factory=list)


def _alerts_raise(*, patient: Patient, findings: list[str], reading: Reading | None, now: datetime) -> list[Alert]:
    opened = []
    for finding in findings:
        kind = AlertKind.HYPERTENSIVE_CRISIS if finding == CRISIS else AlertKind.SUSTAINED_HYPOTENSION
        alert, created = alert_open(patient=patient, kind=kind, reading=reading, now=now)
        if created:
            opened.append(alert)
        autonomy_pause(patient=patient, cause=finding)
    return opened


def reading_ingest(*, actor: User, patient: Patient, data: ReadingInput, now: datetime | None = None) -> IngestResult:
    """Validate and store a reading exactly once, then run the safety rules in the same transaction. An
    implausible reading stores nothing; the refusal itself is audited (field names only, no values)."""
    now = now or timezone.now()
    try:
        return _reading_ingest(actor=actor, patient=patient, data=data, now=now)
    except ValidationFailed as exc:
        audit_record_denied(
            action=AuditAction.READING_REFUSED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            reason="implausible:" + ",".join(sorted(exc.fields)),
        )
        raise


@transaction.atomic
def _reading_ingest(*, actor: User, patient: Patient, data: ReadingInput, now: datetime) -> IngestResult:
    reading, created = reading_store(patient=patient, data=data, now=now)
    if not created:
        return IngestResult(reading=reading, created=False)
    audit_record(
        action=AuditAction.READING_INGESTED,
        object_type="reading",
        object_id=reading.pk,
        actor=actor,
        payload={
            "patient_id": patient.pk,
            "source": reading.source,
            "values_sha256": canonical_sha256([reading.systolic, reading.diastolic, reading.heart_rate]),
        },
    )
    policy = approval_policy_current()
    thresholds = safety_thresholds(policy)
    window = timedelta(hours=policy.hypotension_window_hours)
    low_count = 0
    symptomatic = False
    if is_low(reading.systolic, reading.diastolic, thresholds):
        recent = readings_recent(patient=patient, end=reading.taken_at, window=window)
        low_count = sum(1 for r in recent.only("systolic", "diastolic") if is_low(r.systolic, r.diastolic, thresholds))
        symptomatic = (
            symptoms_recent(patient=patient, end=reading.taken_at + window, window=2 * window)
            .filter(kind__in=_SYMPTOMS_WITH_LOW_BP)
            .exists()
        )
    findings = safety_findings(
        systolic=reading.systolic,
        diastolic=reading.diastolic,
        low_readings_in_window=low_count,
        symptomatic=symptomatic,
        t=thresholds,
    )
    alerts = _alerts_raise(patient=patient, findings=findings, reading=reading, now=now)
    return IngestResult(reading=reading, created=True, alerts=alerts)


@transaction.atomic
def symptom_report(*, actor: User, patient: Patient, kind: str, reported_at: datetime | None = None) -> list[Alert]:
    """Store a symptom; dizziness or syncope with a low reading in the window is sustained hypotension."""
    if kind not in SymptomKind.values:
        raise ValidationFailed("Unknown symptom.", fields={"kind": [f"Choose one of {', '.join(SymptomKind.values)}."]})
    now = timezone.now()
    reported_at = reported_at or now
    symptom = symptom_store(patient=patient, kind=kind, reported_at=reported_at)
    audit_record(
        action=AuditAction.SYMPTOM_REPORTED,
        object_type="symptom",
        object_id=symptom.pk,
        actor=actor,
        payload={"patient_id": patient.pk, "kind": kind},
    )
    if kind not in _SYMPTOMS_WITH_LOW_BP:
        return []
    policy = approval_policy_current()
    thresholds = safety_thresholds(policy)
    recent = readings_recent(patient=patient, end=reported_at, window=timedelta(hours=policy.hypotension_window_hours))
    low = [r for r in recent if is_low(r.systolic, r.diastolic, thresholds)]
    if not low:
        return []
    return _alerts_raise(patient=patient, findings=[HYPOTENSION], reading=low[-1], now=now)


# --- Patient–AI loop: evaluation ------------------------------------------------------------------------


def _feasible_action(probabilities: dict[str, float], from_step: int) -> str:
    """The most probable action that stays on the regimen ladder."""
    feasible = dict(probabilities)
    if from_step <= MIN_STEP:
        feasible.pop("decrease", None)
    if from_step >= MAX_STEP:
        feasible.pop("increase", None)
    return max(feasible, key=lambda name: feasible[name])


def _skip(patient: Patient, reason: str, actor: User | None) -> None:
    with transaction.atomic():
        audit_record(
            action=AuditAction.EVALUATION_SKIPPED,
            object_type="patient",
            object_id=patient.pk,
            actor=actor,
            system_reason="" if actor else "scheduled_evaluation",
            payload={"reason": reason},
        )


def evaluation_run(
    *, patient: Patient, trigger: str = Trigger.SCHEDULED, as_of: datetime | None = None, actor: User | None = None
) -> Recommendation | None:
    """Score the patient's feature window with the model of the arm the patient is routed to (production, or
    the canary for its sticky share), explain it, tier it and store the recommendation with its arm and
    version. A shadow model, if deployed, scores the same window; its output is logged, never shown. A model
    whose artifact fails its hash is never used: the evaluation falls back to rules only. Idempotent for
    scheduled runs: at most one per patient per day."""
    as_of = as_of or timezone.now()
    if trigger == Trigger.SCHEDULED:
        existing = Recommendation.objects.filter(
            patient=patient, evaluation_date=as_of.date(), trigger=Trigger.SCHEDULED
        ).first()
        if existing is not None:
            return existing
    routing = routing_for_patient(patient.pk)
    version = routing.version
    if version is None:
        _skip(patient, "no_model_serving", actor)
        return None
    if not readings_recent(patient=patient, end=as_of, window=timedelta(days=14)).exists():
        _skip(patient, "no_recent_readings", actor)
        return None
    patient.refresh_from_db()
    features = features_for_patient(patient=patient, as_of=as_of)
    rules_only = partial(
        evaluation_rules_only,
        patient=patient,
        trigger=trigger,
        as_of=as_of,
        actor=actor,
        version=version,
        routed_arm=routing.arm,
        features=features,
    )
    if routing.version_held:
        return rules_only(failure="integrity_hold")
    try:
        probabilities = model_score(version, features)
    except (ArtifactTampered, ArtifactMissing) as exc:
        # Never serve a model whose bytes changed: alert, and let a clinician decide (DESIGN §3 "Serving").
        return rules_only(failure=type(exc).__name__)
    action = _feasible_action(probabilities, patient.current_step)
    to_step = patient.current_step + {"decrease": -1, "maintain": 0, "increase": 1}[action]
    # The shadow costs one more ONNX run and no SHAP; a broken shadow artifact never stops the served arm.
    shadow_probabilities: dict[str, float] | None = None
    shadow_failure = ""
    if routing.shadow is not None:
        try:
            shadow_probabilities = model_score(routing.shadow, features)
        except (ArtifactTampered, ArtifactMissing) as exc:
            shadow_failure = type(exc).__name__
    factors = [
        {"feature": f.feature, "label": f.label, "value": round(f.value, 3), "contribution": round(f.contribution, 4)}
        for f in model_explain(version, features, action)
    ]
    policy = approval_policy_current()
    bounds = effective_bounds(patient=patient, policy=policy)
    recent_readings = readings_recent(
        patient=patient, end=as_of, window=timedelta(days=policy.min_readings_window_days)
    ).count()
    tiering = proposal_tier(
        TierInput(
            from_step=patient.current_step,
            to_step=to_step,
            confidence=probabilities[action],
            open_safety_alert=alerts_open_for(patient=patient).exists(),
            autonomy_paused=patient.autonomy_paused,
            recent_readings=recent_readings,
        ),
        bounds,
    )
    minor = tiering.tier == Tier.MINOR
    try:
        with transaction.atomic():  # a savepoint when nested
            _supersede_open(patient)
            rec = Recommendation.objects.create(
                patient=patient,
                created_at=as_of,
                trigger=trigger,
                evaluation_date=as_of.date(),
                model_version=version,
                arm=routing.arm,
                policy=policy,
                bounds=autonomy_bounds_current(patient=patient),
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                probabilities=probabilities,
                top_factors=factors,
                action=action,
                from_step=patient.current_step,
                to_step=to_step,
                confidence=probabilities[action],
                tier=tiering.tier,
                tier_reasons=list(tiering.reasons),
                status=RecommendationStatus.DELIVERED if minor else RecommendationStatus.PENDING_REVIEW,
                final_step=to_step if minor else None,
                reason_text=patient_reason(
                    action=action,
                    to_step=to_step,
                    features=features,
                    target=(patient.target_sbp, patient.target_dbp),
                    factors=factors,
                ),
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
                    "arm": routing.arm,
                    "policy_version": policy.version,
                    "features_sha256": canonical_sha256(features),
                    "action": action,
                    "tier": tiering.tier,
                    "tier_reasons": list(tiering.reasons),
                },
            )
            audit_record(
                action=AuditAction.RECOMMENDATION_DELIVERED if minor else AuditAction.RECOMMENDATION_QUEUED,
                object_type="recommendation",
                object_id=rec.pk,
                system_reason="minor_within_bounds" if minor else "major_needs_review",
                payload={"patient_id": patient.pk},
            )
            prediction_log_record(
                recommendation_id=rec.pk,
                patient=patient,
                arm=routing.arm,
                model_version=version,
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                probabilities=probabilities,
                action=action,
                from_step=rec.from_step,
                proposed_step=to_step,
                tier=tiering.tier,
                created_at=as_of,
            )
            if routing.shadow is not None and shadow_probabilities is not None:
                shadow_score_record(
                    recommendation_id=rec.pk,
                    patient=patient,
                    shadow_version=routing.shadow,
                    probabilities=shadow_probabilities,
                    action=_feasible_action(shadow_probabilities, rec.from_step),
                    served_version=version,
                    served_arm=routing.arm,
                    served_action=action,
                    scored_at=as_of,
                )
            if routing.shadow is not None and shadow_failure:
                model_integrity_failure_record(version=routing.shadow, arm="shadow", error=shadow_failure)
    except IntegrityError:
        if trigger != Trigger.SCHEDULED:
            raise
        # A concurrent delivery of the same scheduled evaluation won the race; its row is today's.
        return Recommendation.objects.get(patient=patient, evaluation_date=as_of.date(), trigger=Trigger.SCHEDULED)
    return rec


def evaluation_rules_only(
    *,
    patient: Patient,
    trigger: str,
    as_of: datetime,
    actor: User | None,
    version: ModelVersion,
    routed_arm: str,
    features: dict[str, float],
    failure: str,
) -> Recommendation:
    """Safe behaviour when the routed model cannot be trusted: its artifact failed its hash (`failure` names
    the error) or an open integrity alert still holds it ("integrity_hold").

    No model output is used. The safety rules have already run on every reading; the recommendation proposes
    no change and goes to the review queue with reason "no_model", so a clinician decides. It records the
    refused version with the arm "rules_only". ML engineers are alerted once per version; the version stays
    held until one of them acknowledges the alert, which is refused while its artifacts still fail.
    """
    policy = approval_policy_current()
    try:
        with transaction.atomic():
            if failure == "integrity_hold":
                model_integrity_hold_seen(version=version)
            else:
                model_integrity_failure_record(version=version, arm=routed_arm, error=failure)
            _supersede_open(patient)
            rec = Recommendation.objects.create(
                patient=patient,
                created_at=as_of,
                trigger=trigger,
                evaluation_date=as_of.date(),
                model_version=version,
                arm=RULES_ONLY_ARM,
                policy=policy,
                bounds=autonomy_bounds_current(patient=patient),
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                probabilities={},
                top_factors=[],
                action="maintain",
                from_step=patient.current_step,
                to_step=patient.current_step,
                confidence=0.0,
                tier=Tier.MAJOR,
                tier_reasons=["no_model"],
                status=RecommendationStatus.PENDING_REVIEW,
                final_step=None,
                reason_text="Your care team will review your recent readings and decide whether your medicine "
                "should change.",
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
                    "arm": RULES_ONLY_ARM,
                    "routed_arm": routed_arm,
                    "fallback": "model_integrity_failure",
                    "failure": failure,
                    "policy_version": policy.version,
                    "features_sha256": canonical_sha256(features),
                    "action": "maintain",
                    "tier": Tier.MAJOR,
                    "tier_reasons": ["no_model"],
                },
            )
            audit_record(
                action=AuditAction.RECOMMENDATION_QUEUED,
                object_type="recommendation",
                object_id=rec.pk,
                system_reason="rules_only_fallback",
                payload={"patient_id": patient.pk},
            )
    except IntegrityError:
        if trigger != Trigger.SCHEDULED:
            raise
        return Recommendation.objects.get(patient=patient, evaluation_date=as_of.date(), trigger=Trigger.SCHEDULED)
    return rec


def _supersede_open(patient: Patient) -> None:
    """A newer proposal replaces any that is still waiting for review or for the patient."""
    stale = Recommendation.objects.select_for_update().filter(
        patient=patient, status__in=[RecommendationStatus.PENDING_REVIEW, RecommendationStatus.DELIVERED]
    )
    for rec in stale:
        _transition(rec, RecommendationStatus.SUPERSEDED)
        audit_record(
            action=AuditAction.RECOMMENDATION_SUPERSEDED,
            object_type="recommendation",
            object_id=rec.pk,
            system_reason="newer_recommendation",
            payload={"patient_id": patient.pk},
        )


def _transition(rec: Recommendation, to_status: str, **changes: Any) -> None:
    if to_status not in RECOMMENDATION_TRANSITIONS[rec.status]:
        raise InvalidTransition(f"This recommendation is {rec.get_status_display().lower()} and cannot change now.")
    updated = Recommendation.objects.filter(pk=rec.pk, status=rec.status).update(status=to_status, **changes)
    if updated != 1:
        raise InvalidTransition("This recommendation was changed by someone else; reload and try again.")
    rec.status = to_status
    for name, value in changes.items():
        setattr(rec, name, value)


def patients_due_for_evaluation(*, as_of: datetime) -> list[int]:
    """Patients whose last scheduled evaluation is at least EVALUATION_INTERVAL_DAYS old (or never)."""
    interval = timedelta(days=settings.EVALUATION_INTERVAL_DAYS)
    recent = Recommendation.objects.filter(
        trigger=Trigger.SCHEDULED, created_at__gt=as_of - interval, created_at__lte=as_of
    ).values("patient_id")
    return list(Patient.objects.exclude(pk__in=recent).order_by("pk").values_list("pk", flat=True))


# --- Clinician–AI loop: review -------------------------------------------------------------------------

_MEANING = {
    DecisionOutcome.ACCEPTED: SignatureMeaning.APPROVED,
    DecisionOutcome.MODIFIED: SignatureMeaning.MODIFIED,
    DecisionOutcome.REJECTED: SignatureMeaning.REJECTED,
}
MAX_REASON_LENGTH = 2000


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


def review_decide(
    *, actor: User, recommendation: Recommendation, outcome: str, reason: str, password: str, to_step: int | None = None
) -> ReviewDecision:
    """Accept, modify or reject a major recommendation, signed with the clinician's password. The decision
    is delivered to the patient and becomes a training label."""
    if actor.role != Role.CLINICIAN or not recommendation.patient.care_team.members.filter(pk=actor.pk).exists():
        audit_record_denied(
            action=AuditAction.REVIEW_DECIDED,
            object_type="recommendation",
            object_id=recommendation.pk,
            actor=actor,
            reason="not_assigned_clinician",
        )
        raise NotFound("No such recommendation.")
    problems: dict[str, list[str]] = {}
    if outcome not in DecisionOutcome.values:
        problems["outcome"] = ["Choose accepted, modified or rejected."]
    reason = (reason or "").strip()
    if not reason:
        problems["reason"] = ["Give a reason for the decision."]
    elif len(reason) > MAX_REASON_LENGTH:
        problems["reason"] = [f"Keep the reason under {MAX_REASON_LENGTH} characters."]
    if outcome == DecisionOutcome.MODIFIED:
        if to_step is None or not MIN_STEP <= to_step <= MAX_STEP:
            problems["to_step"] = [f"Choose a step between {MIN_STEP} and {MAX_STEP}."]
        elif to_step == recommendation.to_step:
            problems["to_step"] = ["That is the proposed step; choose accept instead."]
    if problems:
        raise ValidationFailed("The decision is incomplete.", fields=problems)
    if recommendation.status != RecommendationStatus.PENDING_REVIEW:
        raise InvalidTransition("This recommendation is no longer waiting for review.")
    signature_reauthenticate(signer=actor, password=password, record_type="recommendation", record_id=recommendation.pk)
    final_step = {
        DecisionOutcome.ACCEPTED: recommendation.to_step,
        DecisionOutcome.MODIFIED: to_step,
        DecisionOutcome.REJECTED: recommendation.from_step,
    }[DecisionOutcome(outcome)]
    assert final_step is not None
    with transaction.atomic():
        rec = (
            Recommendation.objects.select_for_update()
            .select_related("model_version", "patient")
            .get(pk=recommendation.pk)
        )
        now = timezone.now()
        _transition(rec, RecommendationStatus.DELIVERED, final_step=final_step, delivered_at=now)
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
                "reason_sha256": canonical_sha256(reason),
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


# --- Patient responds ----------------------------------------------------------------------------------


def recommendation_respond(*, actor: User, recommendation: Recommendation, response: str) -> Recommendation:
    """The patient acknowledges (and acts on) or declines a delivered recommendation."""
    if actor.role != Role.PATIENT or recommendation.patient.user_id != actor.pk:
        raise PermissionRefused("Only the patient can respond to this recommendation.")
    if response not in {"acknowledge", "decline"}:
        raise ValidationFailed("Unknown response.", fields={"response": ["Use acknowledge or decline."]})
    to_status = RecommendationStatus.ACKNOWLEDGED if response == "acknowledge" else RecommendationStatus.DECLINED
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().select_related("patient").get(pk=recommendation.pk)
        _transition(rec, to_status, responded_at=timezone.now())
        audit_record(
            action=AuditAction.RECOMMENDATION_RESPONDED,
            object_type="recommendation",
            object_id=rec.pk,
            actor=actor,
            payload={"response": response},
        )
        if to_status == RecommendationStatus.ACKNOWLEDGED and rec.final_step is not None:
            regimen_change(patient=rec.patient, to_step=rec.final_step, actor=actor, cause=f"recommendation:{rec.pk}")
    return rec


def alerts_escalate(*, now: datetime | None = None) -> int:
    """Mark P0 alerts nobody acknowledged in time as escalated (DESIGN §2), once each."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ALERT_ESCALATION_MINUTES)
    escalated = 0
    for alert_id in Alert.objects.filter(
        status=AlertStatus.OPEN, escalated_at__isnull=True, opened_at__lte=cutoff
    ).values_list("pk", flat=True):
        with transaction.atomic():
            if Alert.objects.filter(pk=alert_id, escalated_at__isnull=True).update(escalated_at=now) == 1:
                audit_record(
                    action=AuditAction.ALERT_ESCALATED,
                    object_type="alert",
                    object_id=alert_id,
                    system_reason="unacknowledged_timeout",
                )
                escalated += 1
    return escalated


def evaluate_on_demand(*, actor: User, patient: Patient) -> Recommendation | None:
    if actor.role != Role.CLINICIAN or not patient.care_team.members.filter(pk=actor.pk).exists():
        raise NotFound("No such patient.")
    return evaluation_run(patient=patient, trigger=Trigger.ON_DEMAND, actor=actor)
