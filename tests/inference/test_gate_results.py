"""Typed gate results (issue 7): every gate reads back from the JSON signed into a version's manifest, the
failures, findings and summary come from one place, and versions registered before the types keep their shape."""

from __future__ import annotations

import copy
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import User
from governance.signoffs import model_signoff_create
from inference.gates.change_control import ChangeControlGateResult
from inference.gates.fairness import FairnessGateResult
from inference.gates.non_inferiority import NonInferiorityGateResult, RescoreFailed
from inference.gates.outcome import UnknownGateResult, gate_outcome_load
from inference.gates.result import GateStatus, StoredGateInvalid
from inference.manifest import manifest_verify
from inference.models import ModelVersion
from tests.factories import PASSWORD

# The stored keys of each gate as the untyped code wrote them (inference/gates.py before issue 7).
LEGACY_KEYS = {
    "data_quality": {"snapshot_sha256", "failed_checks"},
    "onnx_parity": {"max_abs_diff", "bound", "rows"},
    "non_inferiority": {"margin", "incumbent_sha256", "candidate", "against_recorded_metrics",
                        "rescored_on_held_out_rows", "note"},
    "calibration": {"ece", "bound", "n", "bins"},
    "fairness": {"enforced", "failures", "max_equalized_odds_difference", "report"},
    "change_control": {"plan"},
}  # fmt: skip
COMMON_KEYS = {"hard", "passed", "status", "review_reasons", "evaluated_at"}

# Gates as a version registered before issue 7 stored them: a fairness failure that was not enforced, a
# non-inferiority gate whose production re-scoring failed, a plan the retrain stayed inside.
LEGACY_GATES = {
    "data_quality": {"hard": True, "passed": True, "status": "pass", "review_reasons": [],
                     "snapshot_sha256": "ab" * 32, "failed_checks": [], "evaluated_at": "2026-03-01T00:00:00.000000Z"},
    "onnx_parity": {"hard": True, "passed": True, "status": "pass", "review_reasons": [], "max_abs_diff": 2.9e-07,
                    "bound": 1e-05, "rows": 1113, "evaluated_at": "2026-03-01T00:00:00.000000Z"},
    "non_inferiority": {"hard": True, "passed": False, "status": "fail", "review_reasons": [], "margin": 0.02,
                        "incumbent_sha256": "cd" * 32, "candidate": {"balanced_accuracy": 0.71, "macro_auroc": 0.8},
                        "against_recorded_metrics": [
                            {"metric": "balanced_accuracy", "candidate": 0.71, "incumbent": 0.7, "margin": 0.02,
                             "passed": True, "note": ""},
                            {"metric": "macro_auroc", "candidate": 0.8, "incumbent": 0.79, "margin": 0.02,
                             "passed": True, "note": ""}],
                        "rescored_on_held_out_rows": {"error": "artifact cd… no longer matches its hash"},
                        "evaluated_at": "2026-03-01T00:00:00.000000Z"},
    "calibration": {"hard": True, "passed": True, "status": "pass", "review_reasons": [], "ece": 0.041,
                    "bound": 0.1, "n": 223, "bins": [[0.3, 0.35, 0.4, 10], [0.8, 0.85, 0.9, 213]],
                    "evaluated_at": "2026-03-01T00:00:00.000000Z"},
    "fairness": {"hard": False, "passed": False, "status": "needs full review",
                 "review_reasons": ["fairness (not enforced): skin_tone: equalized-odds difference 0.31 > 0.15"],
                 "enforced": False, "failures": ["skin_tone: equalized-odds difference 0.31 > 0.15"],
                 "max_equalized_odds_difference": 0.31,
                 "report": {"passed": False, "attributes": [],
                            "bounds": {"max_equalized_odds_difference": 0.15, "max_demographic_parity_difference": 0.15,
                                       "min_group_ratio": 0.8, "min_group_size": 20}},
                 "evaluated_at": "2026-03-01T00:00:00.000000Z"},
    "change_control": {"hard": False, "passed": True, "status": "pass", "review_reasons": [],
                       "plan": {"id": 3, "model_line": "bp-titration", "version": 2}, "outcome": "within plan",
                       "evaluated_at": "2026-03-01T00:00:00.000000Z"},
}  # fmt: skip


def test_a_registered_version_stores_the_shape_versions_registered_before_the_types_have(
    trained_model: ModelVersion,
) -> None:
    for name, gate in trained_model.gates.items():
        assert set(gate) - COMMON_KEYS <= LEGACY_KEYS[name], name
        assert LEGACY_KEYS[name] - {"note"} <= set(gate), name
    # Reading back and writing again gives the signed JSON, byte for byte, so the manifest still verifies.
    assert trained_model.gate_outcome.stored() == trained_model.gates
    assert manifest_verify(trained_model).ok


def test_gates_stored_before_the_types_read_back_with_their_verdict_failures_and_findings() -> None:
    outcome = gate_outcome_load(LEGACY_GATES)

    assert [result.name for result in outcome.results] == list(LEGACY_GATES)
    assert outcome.stored() == LEGACY_GATES
    assert outcome.failed == ["non_inferiority"] and not outcome.validated
    assert outcome.rejections == ["non-inferiority: production could not be re-scored (artifact cd… no longer "
                                  "matches its hash)"]  # fmt: skip
    # The unenforced fairness failure is a finding for the safety sign-off, not a rejection.
    assert outcome.findings == ["fairness (not enforced): skin_tone: equalized-odds difference 0.31 > 0.15"]
    fairness = outcome.get(FairnessGateResult)
    assert fairness is not None and fairness.status is GateStatus.NEEDS_FULL_REVIEW and fairness.bound == 0.15
    assert fairness.failures == ("skin_tone: equalized-odds difference 0.31 > 0.15",)
    inferiority = outcome.get(NonInferiorityGateResult)
    assert inferiority is not None and isinstance(inferiority.rescored, RescoreFailed)
    assert inferiority.summary.startswith(f"vs production {'cd' * 6}, margin 0.02: balanced_accuracy 0.710 vs 0.700")
    plan = outcome.get(ChangeControlGateResult)
    assert plan is not None and plan.summary == "plan bp-titration v2: within plan" and plan.failures == ()


def test_the_model_version_reads_its_verdict_from_the_typed_results(trained_model: ModelVersion) -> None:
    ModelVersion.objects.filter(pk=trained_model.pk).update(gates=LEGACY_GATES)
    stored = ModelVersion.objects.get(pk=trained_model.pk)

    assert stored.failed_gates == ["non_inferiority"]
    assert stored.review_reasons == ["fairness (not enforced): skin_tone: equalized-odds difference 0.31 > 0.15"]


def test_a_damaged_gate_fails_loudly_instead_of_reading_as_passed() -> None:
    damaged = copy.deepcopy(LEGACY_GATES)
    damaged["calibration"]["passed"] = "yes"
    with pytest.raises(StoredGateInvalid, match="calibration: passed"):
        gate_outcome_load(damaged)
    damaged = copy.deepcopy(LEGACY_GATES)
    del damaged["onnx_parity"]["max_abs_diff"]
    with pytest.raises(StoredGateInvalid, match="onnx_parity: max_abs_diff is missing"):
        gate_outcome_load(damaged)


def test_a_gate_this_code_does_not_know_keeps_its_verdict() -> None:
    later = {**LEGACY_GATES, "latency": {"hard": True, "passed": False, "status": "fail", "review_reasons": [],
                                         "p99_ms": 40}}  # fmt: skip

    outcome = gate_outcome_load(later)

    assert outcome.failed == ["non_inferiority", "latency"]
    unknown = outcome.results[-1]
    assert isinstance(unknown, UnknownGateResult) and unknown.stored() == later["latency"]
    assert "latency: did not pass" in outcome.rejections


def test_a_version_whose_stored_gates_were_edited_is_shown_as_such_and_cannot_be_signed_off(
    trained_model: ModelVersion,
    ml_engineer: User,
    safety_officer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    damaged = copy.deepcopy(trained_model.gates)
    damaged["calibration"]["ece"] = "low"
    ModelVersion.objects.filter(pk=trained_model.pk).update(gates=damaged)

    with pytest.raises(ValidationFailed) as refused:
        model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)
    assert refused.value.code == "signoff_gates_unreadable"
    page = portal_client_for(safety_officer).get(f"/models/{trained_model.pk}/")
    assert page.status_code == 200 and b"The stored gates cannot be read" in page.content
    with pytest.raises(CommandError, match="cannot be read: gate calibration: ece must be a number"):
        call_command("evaluate", trained_model.sha256[:12], stdout=StringIO())
