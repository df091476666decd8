"""Change-control plans, e-signed by the clinical safety officer like the other safety declarations (DESIGN §3
"the change-control plan envelope", §4 "Electronic signatures").

A plan says what a retrain of a model line may change without a full re-review. Declaring one is an electronic
signature (password re-entry, printed name, UTC time, meaning "approved") bound to the plan's canonical content,
written in the transaction that stores the plan through inference, so a plan never exists unsigned. The
change-control gate (inference.gates.change_control) does not let an unsigned plan waive a full review.
"""

from __future__ import annotations

from django.db import transaction

from clinaiops.core.models import User
from governance.models import Signature, SignatureMeaning
from governance.services import signature_create, signature_reauthenticate, signature_verify
from inference.models import TITRATION_LINE, ChangeControlPlan
from inference.services.registry import (
    change_control_plan_check,
    change_control_plan_content,
    change_control_plan_draft,
    change_control_plan_store,
)

RECORD_TYPE = "change_control_plan"


def _record_id(plan: ChangeControlPlan) -> str:
    # Line and version, not the row id: the plan is signed before it is stored, and this names it for good.
    return f"{plan.model_line}/v{plan.version}"


def change_control_plan_declare(
    *,
    actor: User,
    password: str,
    allowed_families: list[str],
    allowed_feature_set_versions: list[str],
    performance_floor: float,
    fairness_ceiling: float,
    model_line: str = TITRATION_LINE,
) -> ChangeControlPlan:
    """A clinical safety officer declares and e-signs the next version of a model line's change-control plan.
    Refused, and audited, for anyone else; a wrong password is refused and audited by the re-authentication."""
    terms = change_control_plan_check(
        actor=actor,
        allowed_families=allowed_families,
        allowed_feature_set_versions=allowed_feature_set_versions,
        performance_floor=performance_floor,
        fairness_ceiling=fairness_ceiling,
        model_line=model_line,
    )
    signature_reauthenticate(signer=actor, password=password, record_type=RECORD_TYPE, record_id=model_line)
    with transaction.atomic():
        plan = change_control_plan_draft(actor=actor, terms=terms)
        signature = signature_create(
            signer=actor,
            meaning=SignatureMeaning.APPROVED,
            record_type=RECORD_TYPE,
            record_id=_record_id(plan),
            content=change_control_plan_content(plan),
        )
        return change_control_plan_store(plan=plan, signature_id=signature.pk)


def change_control_plan_signature(plan: ChangeControlPlan) -> Signature | None:
    if plan.signature_id is None:
        return None
    return Signature.objects.select_related("signer").filter(pk=plan.signature_id).first()


def change_control_plan_verify(plan: ChangeControlPlan) -> bool:
    """The plan carries a signature, and the signature still matches the plan's content as stored now."""
    signature = change_control_plan_signature(plan)
    return signature is not None and signature_verify(
        signature=signature, record_type=RECORD_TYPE, record_id=_record_id(plan),
        content=change_control_plan_content(plan),
    )  # fmt: skip
