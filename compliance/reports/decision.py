"""Decision record, one per recommendation: the features and top factors with their direction, the probabilities,
the model version and arm, the policy version, the tier and why, the clinician's decision with its signature
manifestation, the patient's response, and the audit events that prove each step, each checked against the record.
Schema: docs/compliance-exports.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q

from clinaiops.audit.chain import TIMESTAMP_FORMAT, event_hash
from clinaiops.audit.digests import audit_digest_matches
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.care.access import care_access_for
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import DecisionOutcome, Recommendation, RecommendationStatus, ReviewDecision
from clinaiops.loops.services.review import decision_content
from compliance.charts import bar_chart_svg
from compliance.errors import ExportInvalid, ExportNotFound
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.wording import TIER_WORDS, words
from governance.accounting import audit_action_label, role_label
from governance.ledger_search import checkpoint_latest
from governance.policy import REASON_TEXT
from governance.services import signature_verify
from inference.features import FEATURE_LABELS, FEATURE_NAMES
from inference.models import ApprovalState, ModelVersion

# What each audited step proves, in words (the decision record lists them in seq order).
_PROVES = {
    AuditAction.RECOMMENDATION_CREATED: "the proposal: model version, arm, policy version, features and tier",
    AuditAction.RECOMMENDATION_QUEUED: "it went to the clinician review queue",
    AuditAction.RECOMMENDATION_DELIVERED: "it was delivered to the patient",
    AuditAction.REVIEW_DECIDED: "the clinician's decision",
    AuditAction.SIGNATURE_CREATED: "the electronic signature over the decision",
    AuditAction.RECOMMENDATION_RESPONDED: "the patient's response",
    AuditAction.REGIMEN_CHANGED: "the regimen change it caused",
    AuditAction.RECOMMENDATION_SUPERSEDED: "it was superseded",
    AuditAction.LABEL_RECORDED: "the decision became a training label",
}

_STATUS_WORDS = {
    RecommendationStatus.ACKNOWLEDGED: "acknowledged it (and acts on it)",
    RecommendationStatus.DECLINED: "declined it",
}


_TRIGGER_WORDS = {"scheduled": "the scheduled evaluation", "on_demand": "an evaluation on demand"}


def _recommendation(recommendation_id: object) -> Recommendation:
    try:
        pk = int(str(recommendation_id))
    except ValueError as exc:
        raise ExportInvalid(
            "A recommendation id is a number.", fields={"recommendation_id": ["Give a number."]}
        ) from exc
    rec = (
        Recommendation.objects.select_related("patient", "patient__care_team", "policy", "policy__signature", "bounds")
        .filter(pk=pk)
        .first()
    )
    if rec is None:
        raise ExportNotFound("No such recommendation.")
    return rec


def recommendation_in_scope(actor: User, rec: Recommendation) -> bool:
    """Officers: any. Clinicians: their care teams' patients only (emergency access reads, it does not export)."""
    if actor.role in {Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER}:
        return True
    return actor.role == Role.CLINICIAN and care_access_for(user=actor, patient=rec.patient).on_care_team


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    rec = _recommendation(raw.get("recommendation_id"))
    if not recommendation_in_scope(actor, rec):
        raise ExportNotFound("No such recommendation.")
    return {"recommendation_id": rec.pk}


def _digest_matches(value: Any, stored: object) -> bool | None:
    """Whether an audited digest (keyed HMAC, or a bare SHA-256 in events older than the keyed digests) was made
    from `value`; None when the event holds no such digest."""
    if not isinstance(stored, str) or not stored:
        return None
    if stored.startswith("hmac-sha256:"):
        return audit_digest_matches(value, stored)
    return canonical_sha256(value) == stored


def _hash_ok(event: AuditEvent) -> bool:
    return (
        event_hash(
            event.seq, event.recorded_at.strftime(TIMESTAMP_FORMAT), event.actor_id, event.actor_role, event.action,
            event.object_type, event.object_id, event.outcome, event.request_id, event.ip, event.payload,
            event.prev_hash,
        )
        == event.hash
    )  # fmt: skip


def _checks(event: AuditEvent, rec: Recommendation, model: ModelVersion, decision: ReviewDecision | None) -> list[str]:
    """What of the record this event's payload confirms (failures are listed as "MISMATCH: …")."""
    data = event.payload_data
    results: list[tuple[str, bool | None]] = []
    if event.action == AuditAction.RECOMMENDATION_CREATED:
        results += [
            ("model version", data.get("model_sha256") == model.sha256 if "model_sha256" in data else None),
            ("arm", data.get("arm") == rec.arm if "arm" in data else None),
            ("policy version", data.get("policy_version") == rec.policy.version if "policy_version" in data else None),
            ("proposed action", data.get("action") == rec.action if "action" in data else None),
            ("tier", data.get("tier") == rec.tier if "tier" in data else None),
            ("features", _digest_matches(rec.features, data.get("features_sha256") or data.get("features_hmac"))),
        ]
    elif event.action == AuditAction.REVIEW_DECIDED and decision is not None:
        results += [
            ("decision", data.get("outcome") == decision.outcome if "outcome" in data else None),
            ("final step", data.get("final_step") == decision.to_step if "final_step" in data else None),
            ("signature", data.get("signature_id") == decision.signature_id if "signature_id" in data else None),
            ("reason", _digest_matches(decision.reason, data.get("reason_sha256") or data.get("reason_hmac"))),
        ]
    elif event.action == AuditAction.SIGNATURE_CREATED and decision is not None:
        results.append(("signed record", data.get("record_sha256") == decision.signature.record_sha256))
    return [name if ok else f"MISMATCH: {name}" for name, ok in results if ok is not None]


def build(request: BuildRequest) -> ReportDocument:
    rec = _recommendation(request.parameters["recommendation_id"])
    # Only the columns the record shows: the version's gates and manifest are large (issue 13).
    model = ModelVersion.objects.only(
        "sha256", "family", "feature_set_version", "approval_state", "manifest_sha256", "manifest_key_id"
    ).get(pk=rec.model_version_id)
    decision = ReviewDecision.objects.select_related("signature", "clinician").filter(recommendation=rec).first()
    factors = [
        {
            "feature": f.get("feature"),
            "label": f.get("label") or FEATURE_LABELS.get(str(f.get("feature")), ""),
            "value": f.get("value"),
            "contribution": f.get("contribution"),
            "direction": "toward" if float(f.get("contribution") or 0) > 0 else "against",
            "direction_words": (
                f"pushed toward “{rec.action}”"
                if float(f.get("contribution") or 0) > 0
                else f"pushed away from “{rec.action}”"
            ),
        }
        for f in rec.top_factors
    ]
    names = [n for n in FEATURE_NAMES if n in rec.features] + sorted(set(rec.features) - set(FEATURE_NAMES))
    features = [{"name": n, "label": FEATURE_LABELS.get(n, n), "value": rec.features[n]} for n in names]
    signature = decision.signature if decision else None
    decision_data = None
    if decision is not None and signature is not None:
        decision_data = {
            "outcome": decision.outcome,
            "outcome_label": DecisionOutcome(decision.outcome).label,
            "final_step": decision.to_step,
            "final_regimen": regimen_label(decision.to_step),
            "decided_at": decision.decided_at.strftime(TIMESTAMP_FORMAT),
            "clinician": decision.clinician.signature_name,
            "reason": decision.reason,
            "signature": {
                "id": signature.pk,
                "manifestation": signature.manifestation,
                "printed_name": signature.printed_name,
                "signed_at": signature.signed_at.strftime(TIMESTAMP_FORMAT),
                "meaning": signature.meaning,
                "signer_role": role_label(signature.signer_role),
                "record_type": signature.record_type,
                "record_id": signature.record_id,
                "record_sha256": signature.record_sha256,
                "bound_to_this_decision": signature_verify(
                    signature=signature,
                    record_type="review_decision",
                    record_id=f"recommendation:{rec.pk}",
                    content=decision_content(decision),
                ),
            },
        }
    events_q = Q(object_type="recommendation", object_id=str(rec.pk)) | Q(
        object_type="patient", object_id=str(rec.patient_id), action=AuditAction.REGIMEN_CHANGED,
        payload__contains=f'"cause":"recommendation:{rec.pk}"',
    )  # fmt: skip
    if signature is not None:
        events_q |= Q(object_type="signature", object_id=str(signature.pk))
    if decision is not None:
        # The decision became a training label (DESIGN §2); the label names its source decision.
        events_q |= Q(object_type="training_label", payload__contains=f'"source_ref":"review_decision:{decision.pk}"')
    events = list(AuditEvent.objects.filter(events_q).select_related("actor").order_by("seq"))
    newest = events[-1].seq if events else 0
    cover = AuditCheckpoint.objects.filter(seq__gte=newest).order_by("seq").first() if events else None
    latest_checkpoint = checkpoint_latest()
    policy = rec.policy
    data = document_header(SPEC, request) | {
        "recommendation": {
            "id": rec.pk,
            "created_at": rec.created_at.strftime(TIMESTAMP_FORMAT),
            "trigger": rec.trigger,
            "trigger_label": _TRIGGER_WORDS.get(rec.trigger, rec.trigger.replace("_", " ")),
            "evaluation_date": rec.evaluation_date.isoformat(),
            "status": rec.status,
            "status_label": RecommendationStatus(rec.status).label,
            "patient_code": rec.patient.code,
        },
        "features": {"feature_set_version": rec.feature_set_version, "values": features},
        "top_factors": factors,
        "probabilities": [
            {"class": name, "probability": p, "percent": f"{100 * p:.0f} %"}
            for name, p in sorted(rec.probabilities.items(), key=lambda item: -item[1])
        ],
        "proposal": {
            "action": rec.action,
            "from_step": rec.from_step,
            "from_regimen": regimen_label(rec.from_step),
            "to_step": rec.to_step,
            "to_regimen": regimen_label(rec.to_step),
            "confidence": rec.confidence,
        },
        "model": {
            "sha256": model.sha256,
            "family": model.family,
            "approval_state": model.approval_state,
            "approval_state_label": str(ApprovalState(model.approval_state).label).lower(),
            "arm": rec.arm,
            "manifest_sha256": model.manifest_sha256,
            "manifest_key_id": model.manifest_key_id,
        },
        "policy": {
            "version": policy.version,
            "signature": policy.signature.manifestation if policy.signature else None,
            "bounds_version": rec.bounds.version if rec.bounds else None,
        },
        "tier": {
            "tier": rec.tier,
            "label": words(TIER_WORDS, rec.tier),
            "reasons": [{"code": c, "text": REASON_TEXT.get(c, c.replace("_", " "))} for c in rec.tier_reasons],
            "summary": (
                "Every condition for delivery without review held."
                if rec.tier == "minor"
                else "No change was proposed and no safety reason held, so it was delivered as feedback."
                if rec.tier == "feedback"
                else "At least one condition for delivery without review failed, so a clinician had to decide."
            ),
        },
        "decision": decision_data,
        "delivered": {
            "at": rec.delivered_at.strftime(TIMESTAMP_FORMAT) if rec.delivered_at else None,
            "final_step": rec.final_step,
            "final_regimen": regimen_label(rec.final_step) if rec.final_step is not None else None,
            "patient_wording": rec.reason_text,
        },
        "patient_response": {
            "status": rec.status if rec.status in _STATUS_WORDS else None,
            "words": _STATUS_WORDS.get(RecommendationStatus(rec.status), "no response yet"),
            "responded_at": rec.responded_at.strftime(TIMESTAMP_FORMAT) if rec.responded_at else None,
        },
        "audit_events": [
            {
                "seq": e.seq,
                "recorded_at": e.recorded_at.strftime(TIMESTAMP_FORMAT),
                "action": e.action,
                "action_label": audit_action_label(e.action),
                "proves": _PROVES.get(AuditAction(e.action), "") if e.action in AuditAction.values else "",
                "actor": e.actor.signature_name if e.actor else "system",
                "actor_role": role_label(e.actor_role),
                "outcome": e.outcome,
                "payload": e.payload,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
                "hash_ok": _hash_ok(e),
                "confirms": _checks(e, rec, model, decision),
            }
            for e in events
        ],
        "proof": {
            "covered_by_checkpoint_seq": cover.seq if cover else None,
            "latest_checkpoint_signature_valid": latest_checkpoint.signature_valid if latest_checkpoint else None,
            "note": (
                f"The events above are covered by the signed checkpoint at seq {cover.seq}."
                if cover
                else "The newest event is after the newest signed checkpoint; the next checkpoint will cover it."
            ),
        },
    }
    charts = {
        "probabilities": bar_chart_svg(
            [(row["class"], round(100 * row["probability"], 1)) for row in data["probabilities"]],
            title="Class probabilities (%)", highlight=rec.action,
        ),
        "factors": bar_chart_svg(
            [(f"{f['label']} ({f['direction']})", abs(float(f["contribution"] or 0))) for f in factors],
            title="Top factors (|contribution|, log-odds)",
        ),
    }  # fmt: skip
    return ReportDocument(data=data, patient_ids=frozenset({rec.patient_id}), charts=charts)


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.DECISION_RECORD,
        title="Decision record",
        schema="decision_record",
        schema_version="1.0",
        template="compliance/reports/decision.html",
        formats=frozenset({ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF}),
        file_stem="decision-record",
        prepare=prepare,
        build=build,
    )
)
