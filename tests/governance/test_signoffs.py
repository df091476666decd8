"""Model sign-offs: two e-signatures, by an ML engineer and a clinical safety officer who are different people,
bound to the version's manifest; refusals are audited (DESIGN §3, issue 4 "Promotion")."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clinaiops.audit.models import AuditEvent
from clinaiops.core.errors import ApplicationError, Conflict, InvalidTransition, PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.models import ModelSignoff, Signature
from governance.services import SignatureRefused
from governance.signoffs import model_signoff_create, model_signoff_verify, model_signoffs_missing
from inference.models import ApprovalState, Arm, ModelVersion
from inference.selectors import serving_version
from inference.services.registry import model_version_transition
from inference.services.serving import model_version_promote
from tests.conftest import audit_actions
from tests.factories import PASSWORD, UserFactory


def _denied_reasons(version: ModelVersion) -> list[str]:
    events = AuditEvent.objects.filter(
        object_type="model_version", object_id=str(version.pk), action="signature.refused", outcome="denied"
    ).order_by("seq")
    return [event.payload_data["reason"] for event in events]


def test_two_signoffs_by_the_two_roles_approve_the_version_and_let_it_serve(
    trained_model: ModelVersion, ml_engineer: User, safety_officer: User
) -> None:
    first = model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    assert ModelVersion.objects.get(pk=trained_model.pk).approval_state == ApprovalState.VALIDATED
    assert model_signoffs_missing(version=trained_model) == ["Clinical safety officer"]
    with pytest.raises(InvalidTransition, match="needs two sign-offs"):
        model_version_promote(version=trained_model, arm=Arm.PRODUCTION, actor=ml_engineer)

    second = model_signoff_create(
        actor=safety_officer, version=trained_model, password=PASSWORD, acknowledge_full_review=True
    )

    approved = ModelVersion.objects.get(pk=trained_model.pk)
    assert approved.approval_state == ApprovalState.APPROVED
    assert {first.role, second.role} == {"ml_engineer", "safety_officer"}
    assert first.signature.meaning == "signed_off" and first.signature.printed_name == ml_engineer.signature_name
    assert first.manifest_sha256 == approved.manifest_sha256
    assert model_signoff_verify(first) and model_signoff_verify(second)
    transition = AuditEvent.objects.filter(object_type="model_version", action="model.transitioned").last()
    assert transition is not None and transition.actor == safety_officer
    assert transition.payload_data["to"] == "approved" and transition.payload_data["reason"] == "two_signoffs"
    model_version_promote(version=approved, arm=Arm.PRODUCTION, actor=ml_engineer)
    assert serving_version() == approved


def test_the_same_person_cannot_sign_off_twice(trained_model: ModelVersion, ml_engineer: User) -> None:
    model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    with pytest.raises(Conflict, match="different person"):
        model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    assert ModelSignoff.objects.count() == 1
    assert _denied_reasons(trained_model) == ["signoff_same_person"]


def test_a_person_whose_role_changed_cannot_supply_the_second_signoff(
    trained_model: ModelVersion, ml_engineer: User
) -> None:
    # Self-approval through a role change: the one person would hold both sign-offs.
    model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)
    User.objects.filter(pk=ml_engineer.pk).update(role=Role.SAFETY_OFFICER)
    ml_engineer.refresh_from_db()

    with pytest.raises(Conflict, match="different person"):
        model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD, acknowledge_full_review=True)

    assert ModelVersion.objects.get(pk=trained_model.pk).approval_state == ApprovalState.VALIDATED


def test_a_second_signoff_for_a_role_already_signed_is_refused(trained_model: ModelVersion, ml_engineer: User) -> None:
    other_engineer = UserFactory(username="mleng_two", role=Role.ML_ENGINEER)
    model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    with pytest.raises(Conflict, match="must come from a Clinical safety officer"):
        model_signoff_create(actor=other_engineer, version=trained_model, password=PASSWORD)

    assert ModelVersion.objects.get(pk=trained_model.pk).approval_state == ApprovalState.VALIDATED
    assert _denied_reasons(trained_model) == ["signoff_role_taken"]


@pytest.mark.parametrize("persona", ["clinician", "compliance_officer", "patient"])
def test_a_signoff_by_the_wrong_role_is_refused_and_audited(
    trained_model: ModelVersion, persona: str, request: pytest.FixtureRequest
) -> None:
    actor = request.getfixturevalue(persona)
    actor = actor if isinstance(actor, User) else actor.user

    with pytest.raises(PermissionRefused):
        model_signoff_create(actor=actor, version=trained_model, password=PASSWORD)

    assert not ModelSignoff.objects.exists() and not Signature.objects.exists()
    assert _denied_reasons(trained_model) == ["signoff_wrong_role"]


def test_a_wrong_password_is_refused_and_audited(trained_model: ModelVersion, safety_officer: User) -> None:
    with pytest.raises(SignatureRefused):
        model_signoff_create(
            actor=safety_officer, version=trained_model, password="not it", acknowledge_full_review=True
        )

    assert not ModelSignoff.objects.exists()
    assert _denied_reasons(trained_model) == ["bad_password"]


def test_a_version_that_is_not_validated_cannot_be_signed_off(trained_model: ModelVersion, ml_engineer: User) -> None:
    model_version_transition(version=trained_model, to_state=ApprovalState.REJECTED, actor=None, reason="test")

    with pytest.raises(InvalidTransition, match="is rejected"):
        model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    assert _denied_reasons(trained_model) == ["signoff_not_validated"]


def test_the_safety_signoff_must_acknowledge_the_needs_full_review_findings(
    trained_model: ModelVersion, safety_officer: User
) -> None:
    assert trained_model.review_reasons  # no change-control plan, fairness not judgeable on one patient

    with pytest.raises(ValidationFailed) as refused:
        model_signoff_create(actor=safety_officer, version=trained_model, password=PASSWORD)
    assert refused.value.fields["acknowledge_full_review"] == trained_model.review_reasons

    signoff = model_signoff_create(
        actor=safety_officer, version=trained_model, password=PASSWORD, acknowledge_full_review=True
    )
    assert signoff.acknowledged_review_reasons == trained_model.review_reasons
    assert _denied_reasons(trained_model) == ["signoff_review_not_acknowledged"]


def test_a_version_whose_manifest_was_tampered_with_cannot_be_signed_off(
    trained_model: ModelVersion, ml_engineer: User
) -> None:
    gates = {**trained_model.gates, "calibration": {**trained_model.gates["calibration"], "passed": True, "ece": 0.0}}
    ModelVersion.objects.filter(pk=trained_model.pk).update(gates=gates)

    with pytest.raises(ValidationFailed, match="manifest does not verify"):
        model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)

    assert _denied_reasons(trained_model) == ["signoff_manifest_invalid"]


def test_a_signoff_stops_verifying_if_the_manifest_it_was_bound_to_changes(
    trained_model: ModelVersion, ml_engineer: User
) -> None:
    signoff = model_signoff_create(actor=ml_engineer, version=trained_model, password=PASSWORD)
    ModelVersion.objects.filter(pk=trained_model.pk).update(manifest_sha256="0" * 64)

    assert not model_signoff_verify(
        ModelSignoff.objects.select_related("model_version", "signature").get(pk=signoff.pk)
    )


def test_refusals_leave_no_partial_records(trained_model: ModelVersion, ml_engineer: User) -> None:
    before = AuditEvent.objects.filter(outcome="success").count()
    with pytest.raises(ApplicationError):
        model_signoff_create(actor=ml_engineer, version=trained_model, password="wrong")
    assert AuditEvent.objects.filter(outcome="success").count() == before
    assert not Signature.objects.exists()


# --- commands -----------------------------------------------------------------------------------------------


def _run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_signoff_command_reads_the_password_from_a_file_or_the_environment(
    trained_model: ModelVersion, ml_engineer: User, safety_officer: User, tmp_path: Path, monkeypatch: Any
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")

    out = _run("signoff", trained_model.sha256[:10], actor=ml_engineer.username, password_file=secret)
    assert "signed_off" in out and "still needed: a sign-off by a Clinical safety officer" in out

    monkeypatch.setenv("SIGNOFF_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="must acknowledge"):
        _run("signoff", "latest", actor=safety_officer.username)
    out = _run("signoff", "latest", "--acknowledge-full-review", actor=safety_officer.username)

    assert "is now approved" in out
    assert ModelVersion.objects.get(pk=trained_model.pk).approval_state == ApprovalState.APPROVED


def test_signoff_command_refuses_without_a_password_source_and_on_a_wrong_one(
    trained_model: ModelVersion, ml_engineer: User, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv("SIGNOFF_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", StringIO())  # not a terminal: no prompt
    with pytest.raises(CommandError, match="no password"):
        _run("signoff", "latest", actor=ml_engineer.username)
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    with pytest.raises(CommandError, match="password did not match"):
        _run("signoff", "latest", actor=ml_engineer.username, password_file=wrong)
    with pytest.raises(CommandError, match="cannot read the password file"):
        _run("signoff", "latest", actor=ml_engineer.username, password_file=tmp_path / "missing")
    assert audit_actions(action="signature.refused") == ["signature.refused"]


def test_lineage_prints_the_whole_story_of_a_version(deployed_model: ModelVersion, ml_engineer: User) -> None:
    out = _run("lineage", deployed_model.sha256[:12])

    run = deployed_model.training_run
    assert f"sha256 {run.snapshot.sha256}" in out
    assert "label provenance simulated (synthetic cohort) 600" in out
    assert f"seed {run.seed}" in out and f"code {run.code_version}" in out and "scikit-learn" in out
    assert "manifest verification: verified" in out
    assert out.count("signed_off") == 2 and "signature verified" in out and "acknowledged:" in out
    assert "production: moved to this version by mleng (test)" in out
    assert "metrics accuracy " in out and "validation rows 120" in out and "n_validation" not in out
    assert "serving now on: production" in out


def test_lineage_shows_a_failed_manifest_verification(deployed_model: ModelVersion) -> None:
    ModelVersion.objects.filter(pk=deployed_model.pk).update(metrics={"balanced_accuracy": 0.99})
    out = _run("lineage", deployed_model.sha256[:12])
    assert "manifest verification: FAILED" in out and "metrics" in out


def test_approval_cannot_bypass_the_signoffs(trained_model: ModelVersion, ml_engineer: User) -> None:
    with pytest.raises(InvalidTransition, match="only by two sign-offs"):
        model_version_transition(
            version=trained_model, to_state=ApprovalState.APPROVED, actor=ml_engineer, reason="two_signoffs"
        )
    assert ModelVersion.objects.get(pk=trained_model.pk).approval_state == ApprovalState.VALIDATED
