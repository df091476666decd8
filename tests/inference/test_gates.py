"""The gates before *validated*: each stored with its numbers and pass/fail (DESIGN §3, issue 4)."""

from __future__ import annotations

from typing import Any

import pytest

from clinaiops.audit.models import AuditEvent
from clinaiops.core.models import User
from governance.change_control import change_control_plan_declare
from inference.gates.calibration import CalibrationGateResult
from inference.gates.evaluation import model_version_gates_recompute
from inference.models import ApprovalState, ModelVersion
from inference.services.serving import serving_pointer_set
from inference.training import GRADIENT_BOOSTING, LOGISTIC
from tests.conftest import audit_actions, model_approve
from tests.factories import PASSWORD
from tests.inference.lifecycle_helpers import cohort_labels, cohort_patients, train

HARD_GATES = {"data_quality", "onnx_parity", "non_inferiority", "calibration", "fairness"}


@pytest.fixture
def fair_model(ml_engineer: User, fit_once_per_session: object) -> ModelVersion:
    cohort_labels(cohort_patients())
    return train(ml_engineer, family=LOGISTIC)


def test_every_gate_is_stored_with_its_numbers_and_a_verdict(fair_model: ModelVersion) -> None:
    gates = fair_model.gates

    assert set(gates) == HARD_GATES | {"change_control"}
    assert all(gates[name]["hard"] for name in HARD_GATES) and not gates["change_control"]["hard"]
    assert all(gate["status"] in {"pass", "fail", "needs full review"} for gate in gates.values())
    assert gates["onnx_parity"]["max_abs_diff"] <= gates["onnx_parity"]["bound"] == 1e-5
    assert gates["calibration"]["ece"] <= gates["calibration"]["bound"] == 0.10
    assert gates["calibration"]["n"] == 320 and gates["calibration"]["bins"]
    assert gates["non_inferiority"]["note"] == "no incumbent"
    assert gates["non_inferiority"]["candidate"]["balanced_accuracy"] > 0.8
    assert gates["fairness"]["max_equalized_odds_difference"] <= 0.15
    assert {a["attribute"] for a in gates["fairness"]["report"]["attributes"]} >= {"sex", "skin_tone", "age_band"}
    assert gates["data_quality"]["snapshot_sha256"] == fair_model.training_run.snapshot.sha256
    assert fair_model.approval_state == ApprovalState.VALIDATED
    assert fair_model.failed_gates == []


def test_a_candidate_trained_on_labels_biased_by_skin_tone_is_rejected_by_the_fairness_gate(
    ml_engineer: User,
) -> None:
    cohort_labels(cohort_patients(), biased_against_dark_skin=True)

    version = train(ml_engineer, family=LOGISTIC)

    assert version.approval_state == ApprovalState.REJECTED
    assert version.failed_gates == ["fairness"]
    fairness = version.gates["fairness"]
    assert fairness["status"] == "fail"
    # By skin tone or one of its intersections (sex×skin_tone), whichever has enough positives to judge.
    assert any("skin_tone" in failure.split(":")[0] for failure in fairness["failures"])
    transition = audit_actions(object_type="model_version", action="model.transitioned")
    assert transition == ["model.transitioned"]

    payload = AuditEvent.objects.get(object_type="model_version", action="model.transitioned").payload_data
    assert payload["to"] == "rejected" and payload["failed_gates"] == ["fairness"]


def test_an_unenforced_fairness_gate_records_the_failures_for_the_safety_review(
    ml_engineer: User, settings: Any
) -> None:
    settings.MODEL_GATE_FAIRNESS_ENFORCED = False
    cohort_labels(cohort_patients(), biased_against_dark_skin=True)

    version = train(ml_engineer, family=LOGISTIC)

    assert version.approval_state == ApprovalState.VALIDATED
    assert not version.gates["fairness"]["passed"] and not version.gates["fairness"]["hard"]
    assert version.gates["fairness"]["status"] == "needs full review"
    assert any(
        reason.startswith("fairness (not enforced): ") and "skin_tone" in reason.split(":")[1]
        for reason in version.review_reasons
    )


def test_fairness_that_cannot_be_judged_needs_full_review_instead_of_passing(trained_model: ModelVersion) -> None:
    # One patient: every sensitive attribute has a single group, so nothing can be compared.
    fairness = trained_model.gates["fairness"]

    assert fairness["passed"] and fairness["status"] == "needs full review"
    assert fairness["max_equalized_odds_difference"] is None
    assert any("skin_tone could not be judged" in reason for reason in trained_model.review_reasons)


def test_an_overconfident_model_fails_the_calibration_gate(ml_engineer: User) -> None:
    # Noisy labels and boosting with no shrinkage: near-certain probabilities that are right ~75 % of the time.
    cohort_labels(cohort_patients(), label_noise=0.35)
    overfit = {
        "learning_rate": 1.0,
        "max_iter": 300,
        "min_samples_leaf": 1,
        "max_leaf_nodes": 63,
        "l2_regularization": 0.0,
    }

    version = train(ml_engineer, family=GRADIENT_BOOSTING, params=overfit)

    calibration = version.gates["calibration"]
    assert calibration["ece"] > calibration["bound"]
    assert not calibration["passed"] and calibration["status"] == "fail"
    assert "calibration" in version.failed_gates
    assert version.approval_state == ApprovalState.REJECTED


def test_the_calibration_bound_comes_from_settings(fair_model: ModelVersion, settings: Any) -> None:
    settings.MODEL_GATE_MAX_ECE = 0.001
    outcome = model_version_gates_recompute(fair_model)
    calibration = outcome.get(CalibrationGateResult)
    assert calibration is not None and calibration.bound == 0.001 and calibration.status == "fail"
    assert "calibration" in outcome.failed
    assert any(failure.startswith("calibration: expected calibration error") for failure in outcome.rejections)
    # Recomputing never edits the stored, signed gates.
    assert ModelVersion.objects.get(pk=fair_model.pk).gates["calibration"]["passed"]


def test_a_candidate_worse_than_production_fails_non_inferiority_on_both_comparisons(
    fair_model: ModelVersion, ml_engineer: User, safety_officer: User
) -> None:
    serving_pointer_set(
        arm="production", version=model_approve(fair_model, ml_engineer, safety_officer), actor=ml_engineer,
        reason="test",
    )  # fmt: skip

    # Heavily regularised: it can barely tell the classes apart.
    weak = train(ml_engineer, family=LOGISTIC, seed=1, params={"C": 1e-5})

    gate = weak.gates["non_inferiority"]
    assert gate["incumbent_sha256"] == fair_model.sha256
    assert not gate["passed"] and "non_inferiority" in weak.failed_gates
    recorded = {c["metric"]: c for c in gate["against_recorded_metrics"]}
    assert recorded["balanced_accuracy"]["candidate"] < recorded["balanced_accuracy"]["incumbent"] - 0.02
    assert not recorded["balanced_accuracy"]["passed"]
    rescored = gate["rescored_on_held_out_rows"]
    # Same snapshot, another seed: some of the candidate's validation rows were production's training rows,
    # and those are left out of the like-for-like comparison.
    assert rescored["held_out_from_both"] and 30 <= rescored["rows"] < 320
    assert not all(c["passed"] for c in rescored["comparisons"])
    assert weak.approval_state == ApprovalState.REJECTED


def test_a_comparable_candidate_passes_non_inferiority_against_production(
    fair_model: ModelVersion, ml_engineer: User, safety_officer: User
) -> None:
    serving_pointer_set(
        arm="production", version=model_approve(fair_model, ml_engineer, safety_officer), actor=ml_engineer,
        reason="test",
    )  # fmt: skip

    # Same recipe, another split seed: as good as production, within sampling noise.
    peer = train(ml_engineer, family=LOGISTIC, seed=1)

    gate = peer.gates["non_inferiority"]
    assert gate["passed"] and gate["incumbent_sha256"] == fair_model.sha256
    assert all(c["incumbent"] is not None for c in gate["against_recorded_metrics"])
    assert gate["rescored_on_held_out_rows"]["comparisons"]


def _plan_declare(safety_officer: User, *, family: str, floor: float, ceiling: float) -> None:
    change_control_plan_declare(
        actor=safety_officer, password=PASSWORD, allowed_families=[family],
        allowed_feature_set_versions=["bp-features/2"], performance_floor=floor, fairness_ceiling=ceiling,
    )  # fmt: skip


@pytest.mark.usefixtures("fit_once_per_session")
def test_a_retrain_inside_the_change_control_plan_is_within_plan(ml_engineer: User, safety_officer: User) -> None:
    _plan_declare(safety_officer, family=LOGISTIC, floor=0.7, ceiling=0.15)
    cohort_labels(cohort_patients())

    version = train(ml_engineer, family=LOGISTIC)

    gate = version.gates["change_control"]
    assert gate["passed"] and gate["outcome"] == "within plan" and gate["status"] == "pass"
    assert gate["plan"]["version"] == 1
    assert version.review_reasons == []


@pytest.mark.usefixtures("fit_once_per_session")
def test_a_retrain_outside_the_change_control_plan_is_marked_needs_full_review_not_rejected(
    ml_engineer: User, safety_officer: User
) -> None:
    _plan_declare(safety_officer, family=GRADIENT_BOOSTING, floor=0.99, ceiling=0.01)
    cohort_labels(cohort_patients())

    version = train(ml_engineer, family=LOGISTIC)

    gate = version.gates["change_control"]
    assert not gate["passed"] and gate["outcome"] == "needs full review" and not gate["hard"]
    reasons = " | ".join(gate["review_reasons"])
    assert "family logistic is not in the plan" in reasons
    assert "below the plan's floor 0.99" in reasons
    assert "above the plan's ceiling 0.01" in reasons
    assert version.approval_state == ApprovalState.VALIDATED  # recorded and shown, not a failure


def test_without_a_plan_every_candidate_needs_full_review(fair_model: ModelVersion) -> None:
    assert fair_model.gates["change_control"]["plan"] is None
    assert fair_model.review_reasons == ["change control: no change-control plan is declared for this model line"]
