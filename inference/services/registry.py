"""The model registry: registering a trained candidate (gates, signed manifest), its approval transitions,
the approval that governance's sign-offs grant, version lookup, and storing change-control plans."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.canonical import canonical_sha256
from clinaiops.core.errors import InvalidTransition, NotFound, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from inference.artifacts import artifact_put
from inference.features import FEATURE_NAMES
from inference.gates.evaluation import gates_evaluate
from inference.gates.onnx_parity import OnnxParityGateResult
from inference.gates.outcome import GateOutcome
from inference.manifest import (
    ApprovalSignoff,
    SignedManifest,
    approval_attest,
    approval_revoke,
    manifest_content,
    manifest_sign,
)
from inference.models import (
    APPROVAL_TRANSITIONS,
    CLASS_ORDER,
    TITRATION_LINE,
    ApprovalState,
    ChangeControlPlan,
    ModelFamily,
    ModelVersion,
    TrainingRun,
)
from inference.selectors import SnapshotRow
from inference.training import FittedModel

# A transition's extra audit payload: ids, codes and gate names only (no free text, DESIGN §4).
TransitionDetail = dict[str, str | int | bool | list[str] | list[int]]


@dataclass(frozen=True)
class PreparedRegistration:
    """A candidate's artifacts stored and its gates and manifest computed, ready to register."""

    run: TrainingRun
    sha256: str
    sklearn_sha256: str
    background_sha256: str
    metrics: dict[str, float]
    outcome: GateOutcome | None  # None: the registry already holds these bytes
    manifest: SignedManifest | None


def registration_prepare(*, run: TrainingRun, fitted: FittedModel, rows: list[SnapshotRow]) -> PreparedRegistration:
    """Store the artifacts content-addressed, run every gate and sign the manifest. Takes seconds, so it runs
    before the transaction that registers (the audit ledger serializes writers)."""
    buffer = io.BytesIO()
    np.save(buffer, fitted.background)
    sha256 = artifact_put(fitted.onnx_bytes, suffix=".onnx")
    sklearn_sha256 = artifact_put(fitted.sklearn_bytes, suffix=".joblib")
    background_sha256 = artifact_put(buffer.getvalue(), suffix=".npy")
    if ModelVersion.objects.filter(sha256=sha256).exists():
        return PreparedRegistration(run, sha256, sklearn_sha256, background_sha256, fitted.metrics, None, None)
    outcome = gates_evaluate(
        run=run, feature_names=list(FEATURE_NAMES), onnx_bytes=fitted.onnx_bytes,
        sklearn_bytes=fitted.sklearn_bytes, candidate_sha256=sha256, rows=rows,
    )  # fmt: skip
    signed = manifest_sign(
        manifest_content(
            run=run, sha256=sha256, sklearn_sha256=sklearn_sha256, background_sha256=background_sha256,
            feature_names=list(FEATURE_NAMES), classes=list(CLASS_ORDER), metrics=fitted.metrics,
            gates=outcome.stored(),
        )
    )  # fmt: skip
    return PreparedRegistration(run, sha256, sklearn_sha256, background_sha256, fitted.metrics, outcome, signed)


def registration_commit(prepared: PreparedRegistration) -> ModelVersion:
    """Create the version with its gates and signed manifest, then move it to validated (every hard gate
    passed) or rejected (naming the failed gates). Runs in the caller's transaction, so the version, its audit
    events and the run's status commit together. The same ONNX bytes registered again are the same version."""
    existing = ModelVersion.objects.filter(sha256=prepared.sha256).first()
    if existing is not None:
        return existing
    outcome, signed = prepared.outcome, prepared.manifest
    if outcome is None or signed is None:  # registered by a concurrent run after the check in prepare
        return ModelVersion.objects.get(sha256=prepared.sha256)
    parity = outcome.get(OnnxParityGateResult)
    if parity is None:
        raise ValueError("a candidate cannot be registered without its ONNX parity gate")
    gates = outcome.stored()
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                sha256=prepared.sha256,
                sklearn_sha256=prepared.sklearn_sha256,
                background_sha256=prepared.background_sha256,
                family=prepared.run.family,
                feature_set_version=prepared.run.snapshot.feature_set_version,
                feature_names=list(FEATURE_NAMES),
                classes=list(CLASS_ORDER),
                training_run=prepared.run,
                metrics=prepared.metrics,
                gates=gates,
                parity_max_abs_diff=parity.max_abs_diff,
                created_at=timezone.now(),
                manifest_text=signed.text,
                manifest_sha256=signed.sha256,
                manifest_signature=signed.signature,
                manifest_key_id=signed.key_id,
            )
    except IntegrityError:  # the same bytes registered concurrently: content addressing makes them one version
        return ModelVersion.objects.get(sha256=prepared.sha256)
    audit_record(
        action=AuditAction.MODEL_REGISTERED,
        object_type="model_version",
        object_id=version.pk,
        system_reason="training_task",
        payload={
            "sha256": version.sha256,
            "run_id": prepared.run.pk,
            "manifest_sha256": signed.sha256,
            "manifest_key_id": signed.key_id,
            "gates_digest": canonical_sha256(gates),
        },
    )
    model_version_transition(
        version=version,
        to_state=ApprovalState.VALIDATED if outcome.validated else ApprovalState.REJECTED,
        actor=None,
        reason="gates",
        detail={"failed_gates": outcome.failed, "needs_full_review": bool(outcome.findings)},
    )
    return version


def model_version_transition(
    *, version: ModelVersion, to_state: str, actor: User | None, reason: str, detail: TransitionDetail | None = None
) -> ModelVersion:
    """Move a version along APPROVAL_TRANSITIONS (the only edit a registered version ever gets). Approval is
    not reachable from here: it takes the two sign-offs (governance.signoffs → `model_version_approve`)."""
    if to_state == ApprovalState.APPROVED:
        raise InvalidTransition(
            "A model version is approved only by two sign-offs (an ML engineer and a clinical safety officer); "
            "use `manage.py signoff`."
        )
    return _transition(version=version, to_state=to_state, actor=actor, reason=reason, detail=detail)


def _transition(
    *, version: ModelVersion, to_state: str, actor: User | None, reason: str, detail: TransitionDetail | None
) -> ModelVersion:
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if to_state not in APPROVAL_TRANSITIONS[locked.approval_state]:
            allowed = sorted(APPROVAL_TRANSITIONS[locked.approval_state]) or ["none"]
            raise InvalidTransition(
                f"A {locked.approval_state} model cannot become {to_state}; allowed: {', '.join(allowed)}."
            )
        previous = locked.approval_state
        ModelVersion.objects.filter(pk=version.pk).update(approval_state=to_state)
        if previous == ApprovalState.APPROVED:
            approval_revoke(locked)  # a retired version's approval no longer lets it serve, whatever the row says
        audit_record(
            action=AuditAction.MODEL_TRANSITIONED,
            object_type="model_version",
            object_id=version.pk,
            actor=actor,
            system_reason="" if actor else reason,
            payload={"from": previous, "to": to_state, "reason": reason, **(detail or {})},
        )
    version.approval_state = to_state
    return version


def model_version_approve(*, version: ModelVersion, actor: User, signoffs: list[ApprovalSignoff]) -> ModelVersion:
    """validated → approved, for governance.signoffs only: it calls this in the transaction that records the
    second sign-off (inference may not import governance, so the sign-offs themselves are checked there). Writes
    the signed approval attestation that production and canary require (inference.manifest.approval_trusted)."""
    if len(signoffs) != 2:
        raise InvalidTransition("Approval needs exactly two sign-offs.")
    approved = _transition(
        version=version,
        to_state=ApprovalState.APPROVED,
        actor=actor,
        reason="two_signoffs",
        detail={"signoff_ids": sorted(s.signoff_id for s in signoffs)},
    )
    approval_attest(version=approved, signoffs=signoffs)
    return approved


def model_version_find(prefix: str) -> ModelVersion:
    """The one version whose ONNX hash starts with `prefix` (at least 6 characters)."""
    if len(prefix) < 6:
        raise ValidationFailed("Give at least 6 characters of the model hash.", fields={"version": ["Too short."]})
    matches = list(ModelVersion.objects.filter(sha256__startswith=prefix.lower())[:2])
    if not matches:
        raise NotFound(f"No model version starts with {prefix}.")
    if len(matches) > 1:
        raise ValidationFailed("That prefix matches more than one version.", fields={"version": ["Ambiguous."]})
    return matches[0]


@dataclass(frozen=True)
class ChangeControlPlanTerms:
    """What a clinical safety officer declares a retrain of `model_line` may change without a full review."""

    model_line: str
    allowed_families: tuple[str, ...]
    allowed_feature_set_versions: tuple[str, ...]
    performance_floor: float
    fairness_ceiling: float


def change_control_plan_check(
    *,
    actor: User,
    allowed_families: list[str],
    allowed_feature_set_versions: list[str],
    performance_floor: float,
    fairness_ceiling: float,
    model_line: str = TITRATION_LINE,
) -> ChangeControlPlanTerms:
    """The declared terms, normalised, if `actor` may declare them: a clinical safety officer (a refusal is
    audited) and valid terms. Nothing is written; governance.change_control signs and stores the plan."""
    if actor.role != Role.SAFETY_OFFICER:
        audit_record_denied(
            action=AuditAction.CHANGE_CONTROL_PLAN_DECLARED, object_type="change_control_plan", object_id=model_line,
            actor=actor, reason="wrong_role",
        )  # fmt: skip
        raise PermissionRefused("Only a clinical safety officer can declare a change-control plan.")
    problems: dict[str, list[str]] = {}
    unknown = sorted(set(allowed_families) - set(ModelFamily.values))
    if not allowed_families or unknown:
        problems["allowed_families"] = [f"Choose from {', '.join(ModelFamily.values)}."]
    if not allowed_feature_set_versions:
        problems["allowed_feature_set_versions"] = ["Name at least one feature-set version."]
    if not 0.0 <= performance_floor <= 1.0:
        problems["performance_floor"] = ["A balanced accuracy between 0 and 1."]
    if not 0.0 <= fairness_ceiling <= 1.0:
        problems["fairness_ceiling"] = ["An equalized-odds difference between 0 and 1."]
    if problems:
        raise ValidationFailed("This change-control plan is not valid.", fields=problems)
    return ChangeControlPlanTerms(
        model_line=model_line,
        allowed_families=tuple(sorted(set(allowed_families))),
        allowed_feature_set_versions=tuple(sorted(set(allowed_feature_set_versions))),
        performance_floor=performance_floor,
        fairness_ceiling=fairness_ceiling,
    )


def change_control_plan_draft(*, actor: User, terms: ChangeControlPlanTerms) -> ChangeControlPlan:
    """The next version of the line's plan, not saved yet, so that it can be signed before it is stored.
    Caller holds the transaction: the line stays locked until the plan is stored, so two declarations cannot
    take the same version."""
    latest = (
        ChangeControlPlan.objects.select_for_update().filter(model_line=terms.model_line).order_by("-version").first()
    )
    return ChangeControlPlan(
        model_line=terms.model_line,
        version=(latest.version + 1) if latest else 1,
        allowed_families=list(terms.allowed_families),
        allowed_feature_set_versions=list(terms.allowed_feature_set_versions),
        performance_floor=terms.performance_floor,
        fairness_ceiling=terms.fairness_ceiling,
        created_at=timezone.now(),
        created_by=actor,
    )


def change_control_plan_content(plan: ChangeControlPlan) -> dict[str, str | int | float | list[str]]:
    """What the safety officer's signature covers: the line, the version and every term."""
    return {
        "model_line": plan.model_line,
        "version": plan.version,
        "allowed_families": list(plan.allowed_families),
        "allowed_feature_set_versions": list(plan.allowed_feature_set_versions),
        "performance_floor": plan.performance_floor,
        "fairness_ceiling": plan.fairness_ceiling,
    }


def change_control_plan_store(*, plan: ChangeControlPlan, signature_id: int) -> ChangeControlPlan:
    """Store a drafted plan with the e-signature that covers it, and audit the declaration. Plans are never
    edited: each declaration adds the next version, and the gates use the newest. Caller holds the
    transaction in which it signed the plan (governance.change_control)."""
    if plan.pk is not None:
        raise InvalidTransition("A change-control plan is never edited; declare a new version.")
    plan.signature_id = signature_id
    plan.save()
    content = change_control_plan_content(plan)
    audit_record(
        action=AuditAction.CHANGE_CONTROL_PLAN_DECLARED,
        object_type="change_control_plan",
        object_id=plan.pk,
        actor=plan.created_by,
        payload={**content, "signature_id": signature_id},
    )
    return plan
