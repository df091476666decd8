"""The lifecycle commands: each has --help, prints what it did, and refuses on stderr with a non-zero exit."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clinaiops.core.models import User
from governance.change_control import change_control_plan_verify
from inference.models import ApprovalState, Arm, ChangeControlPlan, ModelVersion, RunStatus, TrainingRun
from inference.selectors import serving_version
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create
from tests.conftest import model_approve
from tests.factories import PASSWORD
from tests.inference.lifecycle_helpers import cohort_labels, cohort_patients

COMMANDS = ["train", "evaluate", "register", "promote", "rollback", "change_plan", "signoff", "lineage"]


def run(*args: str, **options: object) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_lifecycle_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        call_command(name, "--help")
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_train_with_the_tree_family_registers_and_prints_the_gates(ml_engineer: User) -> None:
    cohort_labels(cohort_patients(), n=800)

    out = run("train", family="gradient_boosting", seed=4, actor=ml_engineer.username)

    version = ModelVersion.objects.get()
    assert version.family == "gradient_boosting" and version.training_run.seed == 4
    assert f"model {version.sha256}" in out
    for gate in ("data_quality", "onnx_parity", "non_inferiority", "calibration", "fairness", "change_control"):
        assert gate in out


def test_train_refuses_an_unknown_family_and_an_unknown_actor(ml_engineer: User) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("train", "--family", "svm")
    with pytest.raises(CommandError, match="no active user"):
        run("train", actor="nobody")


def test_evaluate_prints_the_stored_gates_and_can_recompute(trained_model: ModelVersion) -> None:
    out = run("evaluate", trained_model.sha256[:8], "--recompute")

    assert "stored gates:" in out and "recomputed now (would be validated; not stored):" in out
    assert "ECE" in out and "no incumbent" in out and "needs full review" in out
    with pytest.raises(CommandError, match="at least 6 characters"):
        run("evaluate", "abc")


def test_register_runs_a_queued_run_and_is_idempotent(trained_model: ModelVersion, ml_engineer: User) -> None:
    snapshot = trained_model.training_run.snapshot
    queued = training_run_create(actor=ml_engineer, snapshot=snapshot, family="gradient_boosting", seed=11)

    first = run("register", "--run", str(queued.pk))
    second = run("register", "--run", str(queued.pk))

    version = ModelVersion.objects.get(training_run=queued)
    assert f"→ model {version.sha256}" in first and first.splitlines()[-1] == second.strip()
    assert TrainingRun.objects.get(pk=queued.pk).status == RunStatus.SUCCEEDED
    assert ModelVersion.objects.count() == 2
    with pytest.raises(CommandError, match="There is no training run 999999"):
        run("register", "--run", "999999")


def test_register_explains_a_failed_run(trained_model: ModelVersion, ml_engineer: User) -> None:
    failed = training_run_create(actor=ml_engineer, snapshot=trained_model.training_run.snapshot, seed=1)
    TrainingRun.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED, message="ValueError: boom")
    with pytest.raises(CommandError, match="failed \\(ValueError: boom\\); start a new run"):
        run("register", "--run", str(failed.pk))


def test_promote_needs_approval_for_production_and_rollback_undoes_it(
    trained_model: ModelVersion, ml_engineer: User, safety_officer: User, clinician: User
) -> None:
    with pytest.raises(CommandError, match="needs two sign-offs"):
        run("promote", "latest", actor=ml_engineer.username)
    assert "shadow now serves" in run("promote", "latest", arm=Arm.SHADOW, actor=ml_engineer.username)
    model_approve(trained_model, ml_engineer, safety_officer)
    assert "production now serves" in run("promote", "latest", actor=ml_engineer.username)

    out = run("rollback", arm=Arm.PRODUCTION, actor=safety_officer.username, reason="suspected drift")

    assert "production now serves nothing" in out and serving_version() is None
    with pytest.raises(CommandError, match="nothing to roll back"):
        run("rollback", arm=Arm.PRODUCTION, actor=safety_officer.username, reason="again")
    with pytest.raises(CommandError, match="Only an ML engineer or a clinical safety officer"):
        run("rollback", arm=Arm.SHADOW, actor=clinician.username, reason="not mine to roll back")


def test_change_plan_is_declared_and_e_signed_by_a_safety_officer_only(
    ml_engineer: User, safety_officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_PASSWORD", PASSWORD)
    out = run(
        "change_plan", "--family", "logistic", "--family", "gradient_boosting", actor=safety_officer.username,
        floor=0.6, ceiling=0.15,
    )  # fmt: skip

    assert "change-control plan bp-titration v1" in out and f"e-signed by {safety_officer.signature_name}" in out
    plan = ChangeControlPlan.objects.get()
    assert plan.allowed_families == ["gradient_boosting", "logistic"]
    assert change_control_plan_verify(plan)
    with pytest.raises(CommandError, match="Only a clinical safety officer"):
        run("change_plan", actor=ml_engineer.username, floor=0.6, ceiling=0.15)
    monkeypatch.delenv("SIGNOFF_PASSWORD")
    monkeypatch.setattr("sys.stdin", StringIO())  # not a terminal: no prompt
    with pytest.raises(CommandError, match="no password"):
        run("change_plan", actor=safety_officer.username, floor=0.6, ceiling=0.15)
    assert ChangeControlPlan.objects.count() == 1


def test_train_reports_a_rejected_model_on_stderr(ml_engineer: User) -> None:
    cohort_labels(cohort_patients(), biased_against_dark_skin=True)
    err = StringIO()
    call_command("train", actor=ml_engineer.username, stdout=StringIO(), stderr=err)
    assert ModelVersion.objects.get().approval_state == ApprovalState.REJECTED
    assert "was rejected; failed gates: fairness" in err.getvalue()


def test_train_refuses_a_snapshot_that_fails_its_quality_gate(ml_engineer: User) -> None:
    cohort_labels(cohort_patients(), n=40)  # under the 100-row minimum
    with pytest.raises(CommandError, match="Failed check: min_rows"):
        run("train", actor=ml_engineer.username)
    assert dataset_snapshot_create(actor=ml_engineer).quality_passed is False
