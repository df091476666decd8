"""Change-control plans are declared and e-signed by the clinical safety officer (issue 7), like the other safety
declarations: password re-entry, a signature bound to the plan's content, an audit event that says what happened."""

from __future__ import annotations

import pytest
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import User
from governance.change_control import (
    change_control_plan_declare,
    change_control_plan_signature,
    change_control_plan_verify,
)
from governance.services import SignatureRefused
from inference.models import ChangeControlPlan, ModelVersion
from inference.training import LOGISTIC
from tests.conftest import audit_actions
from tests.factories import PASSWORD
from tests.inference.lifecycle_helpers import cohort_labels, cohort_patients, train


def _declare(actor: User, *, password: str = PASSWORD, floor: float = 0.5) -> ChangeControlPlan:
    return change_control_plan_declare(
        actor=actor, password=password, allowed_families=[LOGISTIC], allowed_feature_set_versions=["bp-features/2"],
        performance_floor=floor, fairness_ceiling=0.2,
    )  # fmt: skip


def test_a_safety_officer_declares_a_plan_e_signed_over_its_content(safety_officer: User) -> None:
    plan = _declare(safety_officer)

    signature = change_control_plan_signature(plan)
    assert signature is not None
    assert (signature.signer, signature.meaning, signature.printed_name) == (
        safety_officer, "approved", safety_officer.signature_name,
    )  # fmt: skip
    assert (signature.record_type, signature.record_id) == ("change_control_plan", "bp-titration/v1")
    assert change_control_plan_verify(plan)
    declared = AuditEvent.objects.get(action="change_control.plan_declared", outcome="success")
    assert (declared.object_id, declared.actor) == (str(plan.pk), safety_officer)
    assert declared.payload_data["signature_id"] == signature.pk and declared.payload_data["performance_floor"] == 0.5
    # One transaction: the signature's own event comes just before the plan's.
    assert audit_actions(actor=safety_officer)[-2:] == ["signature.created", "change_control.plan_declared"]


def test_plans_are_versioned_never_edited_and_an_edit_breaks_the_signature(safety_officer: User) -> None:
    first, second = _declare(safety_officer, floor=0.5), _declare(safety_officer, floor=0.6)

    assert list(ChangeControlPlan.objects.values_list("version", "performance_floor")) == [(2, 0.6), (1, 0.5)]
    assert change_control_plan_verify(first) and change_control_plan_verify(second)
    ChangeControlPlan.objects.filter(pk=first.pk).update(performance_floor=0.1)  # an edit in SQL
    assert not change_control_plan_verify(ChangeControlPlan.objects.get(pk=first.pk))


def test_only_a_safety_officer_declares_and_a_wrong_password_signs_nothing(
    ml_engineer: User, safety_officer: User
) -> None:
    with pytest.raises(PermissionRefused, match="Only a clinical safety officer"):
        _declare(ml_engineer)
    assert audit_actions(object_type="change_control_plan", outcome="denied") == ["change_control.plan_declared"]
    with pytest.raises(ValidationFailed):
        change_control_plan_declare(
            actor=safety_officer, password=PASSWORD, allowed_families=["random_forest"],
            allowed_feature_set_versions=["bp-features/2"], performance_floor=1.5, fairness_ceiling=0.2,
        )  # fmt: skip
    with pytest.raises(SignatureRefused):
        _declare(safety_officer, password="not the password")

    assert not ChangeControlPlan.objects.exists()
    assert audit_actions(action="signature.refused") == ["signature.refused"]
    assert audit_actions(action="change_control.plan_declared", outcome="success") == []


@pytest.mark.usefixtures("fit_once_per_session")
def test_a_plan_nobody_signed_does_not_waive_a_full_review(ml_engineer: User, safety_officer: User) -> None:
    # Declared before plans were signed: the same terms a retrain stays inside, but no signature.
    ChangeControlPlan.objects.create(
        version=1, allowed_families=[LOGISTIC], allowed_feature_set_versions=["bp-features/2"],
        performance_floor=0.5, fairness_ceiling=0.5, created_at=timezone.now(), created_by=safety_officer,
    )  # fmt: skip
    cohort_labels(cohort_patients())

    version: ModelVersion = train(ml_engineer, family=LOGISTIC)

    gate = version.gates["change_control"]
    assert not gate["passed"] and gate["status"] == "needs full review"
    assert version.review_reasons == [
        "change control: plan bp-titration v1 is not e-signed by a clinical safety officer"
    ]
