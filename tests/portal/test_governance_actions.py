"""Governance actions in the portal (issue 11): sign-off, promote, roll back and policy changes, persona by
persona. Each action goes through the service the command uses, so its refusals and audit are the command's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import Role, User
from governance.models import ApprovalPolicy, ModelSignoff, PolicyChange, PolicyChangeStatus
from governance.services import approval_policy_current, approval_policy_revise
from inference.features import FEATURE_NAMES
from inference.models import ModelVersion, ServingPointer, TrainingLabel
from inference.services.datasets import dataset_snapshot_create
from inference.services.training import training_run_create, training_run_execute
from tests.conftest import _synthetic_labels, audit_actions
from tests.factories import PASSWORD, UserFactory

Portal = Callable[[User], Client]


@pytest.fixture
def trained_model(patient: Patient, ml_engineer: User, fit_once_per_session: object) -> ModelVersion:
    """tests/conftest.py's trained model, with the synthetic rows made valid for the feature set in this tree
    (bp-features/2 checks the wearable mean's range; the shared rows leave it at 0)."""
    _synthetic_labels(patient)
    if "wearable_sbp_mean_7d" in FEATURE_NAMES:
        labels = list(TrainingLabel.objects.filter(patient=patient))
        for label in labels:
            label.features["wearable_sbp_mean_7d"] = label.features["sbp_mean_7d"]
        TrainingLabel.objects.bulk_update(labels, ["features"])
    snapshot = dataset_snapshot_create(actor=ml_engineer)
    run = training_run_execute(run_id=training_run_create(actor=ml_engineer, snapshot=snapshot, seed=11).pk)
    assert run.model_version is not None
    return run.model_version


def _denied(action: str) -> int:
    return AuditEvent.objects.filter(action=action, outcome="denied").count()


# --- Sign-off -------------------------------------------------------------------------------------------------


def test_ml_engineer_signs_off_a_validated_version_with_an_e_signature(
    trained_model: ModelVersion, ml_engineer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(ml_engineer)
    page = client.get(f"/models/{trained_model.pk}/").content.decode()
    assert "Sign off" in page and 'name="password"' in page
    assert "acknowledge_full_review" not in page  # the acknowledgement is the safety officer's
    response = client.post(f"/models/{trained_model.pk}/signoff/", {"password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == f"/models/{trained_model.pk}/"
    assert "Signed off" in response.content.decode()
    assert "still needed: a sign-off by a Clinical safety officer" in response.content.decode()
    signoff = ModelSignoff.objects.get(model_version=trained_model)
    assert (signoff.signer, signoff.role) == (ml_engineer, "ml_engineer")
    assert AuditEvent.objects.filter(action="signature.created", actor=ml_engineer).exists()
    # Signed once, the button is gone for this engineer.
    assert (
        f'action="/models/{trained_model.pk}/signoff/"'
        not in client.get(f"/models/{trained_model.pk}/").content.decode()
    )


def test_safety_sign_off_must_acknowledge_the_findings_and_then_approves(
    trained_model: ModelVersion, ml_engineer: User, safety_officer: User, portal_client_for: Portal
) -> None:
    portal_client_for(ml_engineer).post(f"/models/{trained_model.pk}/signoff/", {"password": PASSWORD})
    assert trained_model.review_reasons, "the one-patient fixture cannot judge fairness: findings to acknowledge"
    client = portal_client_for(safety_officer)
    page = client.get(f"/models/{trained_model.pk}/").content.decode()
    assert "acknowledge_full_review" in page and escape(trained_model.review_reasons[0]) in page
    refused = client.post(f"/models/{trained_model.pk}/signoff/", {"password": PASSWORD})
    assert refused.status_code == 400
    assert "needs a full review" in refused.content.decode()
    assert ModelSignoff.objects.filter(model_version=trained_model).count() == 1
    assert AuditEvent.objects.filter(action="signature.refused", outcome="denied", actor=safety_officer).exists()
    done = client.post(
        f"/models/{trained_model.pk}/signoff/", {"password": PASSWORD, "acknowledge_full_review": "on"}, follow=True
    )
    assert "the version is now approved" in done.content.decode()
    trained_model.refresh_from_db()
    assert trained_model.approval_state == "approved"


def test_wrong_password_signs_nothing_and_says_so(
    trained_model: ModelVersion, ml_engineer: User, portal_client_for: Portal
) -> None:
    response = portal_client_for(ml_engineer).post(f"/models/{trained_model.pk}/signoff/", {"password": "nope"})
    assert response.status_code == 400
    assert "Incorrect password." in response.content.decode()
    assert not ModelSignoff.objects.exists()
    assert _denied("signature.refused") == 1


@pytest.mark.parametrize("persona", ["clinician", "compliance_officer"])
def test_other_roles_see_no_sign_off_and_are_refused_by_the_service(
    persona: str, trained_model: ModelVersion, request: pytest.FixtureRequest, portal_client_for: Portal
) -> None:
    user = request.getfixturevalue(persona)
    client = portal_client_for(user)
    page = client.get(f"/models/{trained_model.pk}/").content.decode()
    assert "/signoff/" not in page and "/promote/" not in page
    response = client.post(f"/models/{trained_model.pk}/signoff/", {"password": PASSWORD})
    assert response.status_code == 403
    assert not ModelSignoff.objects.exists()
    assert AuditEvent.objects.filter(action="signature.refused", actor=user, outcome="denied").exists()


# --- Promote and roll back ---------------------------------------------------------------------------------


def test_ml_engineer_promotes_a_validated_version_to_shadow_but_not_production(
    trained_model: ModelVersion, ml_engineer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(ml_engineer)
    page = client.get(f"/models/{trained_model.pk}/").content.decode()
    assert "Promote to shadow" in page and "Promote to production" not in page  # not approved yet
    refused = client.post(f"/models/{trained_model.pk}/promote/", {"arm": "production"}, follow=True)
    assert "needs two sign-offs first" in refused.content.decode()
    assert not ServingPointer.objects.exists()
    assert AuditEvent.objects.filter(action="serving.pointer_set", outcome="denied").count() == 1
    done = client.post(f"/models/{trained_model.pk}/promote/", {"arm": "shadow"}, follow=True)
    assert "The shadow arm now serves" in done.content.decode()
    assert ServingPointer.objects.get(arm="shadow").model_version == trained_model
    assert AuditEvent.objects.filter(action="serving.pointer_set", outcome="success", actor=ml_engineer).exists()


@pytest.mark.parametrize("persona", ["safety_officer", "clinician", "compliance_officer"])
def test_only_ml_engineers_promote(
    persona: str, trained_model: ModelVersion, request: pytest.FixtureRequest, portal_client_for: Portal
) -> None:
    client = portal_client_for(request.getfixturevalue(persona))
    assert "Promote to" not in client.get(f"/models/{trained_model.pk}/").content.decode()
    assert client.post(f"/models/{trained_model.pk}/promote/", {"arm": "shadow"}).status_code == 403
    assert not ServingPointer.objects.exists()
    assert AuditEvent.objects.filter(action="serving.pointer_set", outcome="denied").count() == 1


def test_safety_officer_rolls_back_production_with_a_reason(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(safety_officer)
    assert "Roll back" in client.get("/models/").content.decode()
    no_reason = client.post("/models/rollback/", {"arm": "production", "reason": ""}, follow=True)
    assert "say why" in no_reason.content.decode()
    assert ServingPointer.objects.filter(arm="production").exists()
    done = client.post("/models/rollback/", {"arm": "production", "reason": "override spike"}, follow=True)
    assert "now serves nothing" in done.content.decode()
    assert not ServingPointer.objects.filter(arm="production").exists()
    nothing = client.post("/models/rollback/", {"arm": "production", "reason": "again"}, follow=True)
    assert "nothing to roll back" in nothing.content.decode()
    assert audit_actions(action="serving.pointer_set", actor=safety_officer, outcome="success") == [
        "serving.pointer_set"
    ]


@pytest.mark.parametrize("persona", ["clinician", "compliance_officer"])
def test_other_roles_cannot_roll_back(
    persona: str, deployed_model: ModelVersion, request: pytest.FixtureRequest, portal_client_for: Portal
) -> None:
    client = portal_client_for(request.getfixturevalue(persona))
    assert "Roll back" not in client.get("/models/").content.decode()
    assert client.post("/models/rollback/", {"arm": "production", "reason": "x"}).status_code == 403
    assert ServingPointer.objects.get(arm="production").model_version == deployed_model
    assert AuditEvent.objects.filter(action="serving.pointer_set", outcome="denied").count() == 1


# --- The model page's charts ---------------------------------------------------------------------------------


def test_model_page_draws_calibration_roc_confusion_and_fairness_with_tables(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Portal
) -> None:
    page = portal_client_for(safety_officer).get(f"/models/{deployed_model.pk}/").content.decode()
    for css in ("chart-reliability", "chart-roc", "chart-confusion", "chart-fairness"):
        assert f'class="{css}"' in page, css
    assert "recomputed" in page and "Not drawn" not in page
    assert "Mean confidence" in page and "Label ↓ / model →" in page and "True-positive rate" in page
    fairness = page[page.index("<h2>Fairness by subgroup</h2>") :]
    assert "age band" in fairness and "age_band" not in fairness and "race_ethnicity" not in fairness  # words
    # The recomputed AUC agrees with the one the registry stored for the same rows and model.
    from clinaiops.portal.views.models import validation_evidence

    evidence = validation_evidence(deployed_model)
    assert len(evidence.labels) == int(deployed_model.metrics["n_validation"])


def test_model_page_says_why_roc_is_missing_when_the_artifact_is_gone(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Portal, settings: object
) -> None:
    import shutil
    from pathlib import Path

    shutil.rmtree(Path(settings.ARTIFACT_ROOT))  # type: ignore[attr-defined]
    page = portal_client_for(safety_officer).get(f"/models/{deployed_model.pk}/").content.decode()
    assert "Not drawn" in page and 'class="chart-roc"' not in page
    assert 'class="chart-reliability"' in page  # the stored gates still draw


def test_compare_two_versions_side_by_side(
    deployed_model: ModelVersion, ml_engineer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(ml_engineer)
    page = client.get(f"/models/compare/?a={deployed_model.pk}&b={deployed_model.pk}").content.decode()
    assert "Balanced accuracy" in page and "Calibration" in page and "Drift" in page and "Fairness" in page
    assert client.get("/models/compare/?a=x&b=1").status_code == 400
    assert client.get("/models/compare/").status_code == 200


def test_compare_refuses_patients(deployed_model: ModelVersion, patient: object, portal_client_for: Portal) -> None:
    assert portal_client_for(patient.user).get("/models/compare/").status_code == 403  # type: ignore[attr-defined]


# --- Policy changes -------------------------------------------------------------------------------------------


def _policy_post(**extra: object) -> dict[str, object]:
    current = approval_policy_current()
    data: dict[str, object] = {
        name: getattr(current, name)
        for name in (
            "crisis_sbp", "crisis_dbp", "hypotension_sbp", "hypotension_dbp", "hypotension_window_hours",
            "hypotension_min_readings", "max_step_change", "min_step", "max_step", "min_confidence", "min_readings",
            "min_readings_window_days",
        )
    }  # fmt: skip
    data.update(extra)
    return data


def test_policy_change_needs_a_reason_and_shows_diff_and_impact_before_signing(
    pending_recommendation: object, safety_officer: User, portal_client_for: Portal
) -> None:
    client = portal_client_for(safety_officer)
    before = ApprovalPolicy.objects.count()
    preview = client.post("/governance/policy/", _policy_post(min_confidence=0.95, reason="tighter", intent="preview"))
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Minimum model confidence" in html and "0.95" in html and "Impact over the last 14 days" in html
    assert "1 go to review whatever the policy" in html or "of 1 proposal" in html
    assert ApprovalPolicy.objects.count() == before  # a preview signs nothing
    no_reason = client.post("/governance/policy/", _policy_post(min_confidence=0.95, password=PASSWORD, intent="sign"))
    assert no_reason.status_code == 400 and ApprovalPolicy.objects.count() == before
    signed = client.post(
        "/governance/policy/",
        _policy_post(min_confidence=0.95, reason="tighter", password=PASSWORD, intent="sign"),
        follow=True,
    )
    assert "signed and in force" in signed.content.decode()
    new = approval_policy_current()
    assert (new.min_confidence, new.change_reason) == (0.95, "tighter")
    event = AuditEvent.objects.filter(action="policy.created", actor=safety_officer).get()
    assert event.payload_data["changed"] == ["min_confidence"] and "reason_hmac" in event.payload_data
    assert "tighter" not in event.payload
    history = client.get("/governance/policy/").content.decode()
    assert "Minimum model confidence: 0.8 → <strong>0.95</strong>" in history


def test_impact_preview_counts_proposals_that_change_tier(
    deployed_model: ModelVersion, patient: object, safety_officer: User
) -> None:
    from clinaiops.loops.models import Recommendation
    from clinaiops.loops.policy_impact import policy_impact
    from tests.conftest import pending_recommendation_make

    rec = pending_recommendation_make(patient)  # type: ignore[arg-type]
    assert "too_few_readings" in rec.tier_reasons
    current = approval_policy_current()
    from governance.services import POLICY_FIELDS

    values = {name: getattr(current, name) for name in POLICY_FIELDS}
    looser = ApprovalPolicy(**{**values, "min_readings": 1}, version=current.version + 1)
    impact = policy_impact(current, looser)
    assert impact.proposals == Recommendation.objects.count() == 1
    assert impact.readings_recounted
    only_readings = [r for r in rec.tier_reasons if r != "too_few_readings"]
    assert impact.to_minor == (0 if only_readings else 1)
    later = policy_impact(current, looser, now=timezone.now() + timedelta(days=15))
    assert later.proposals == 0  # outside the 14 days


@pytest.mark.parametrize("persona", ["ml_engineer", "clinician", "compliance_officer"])
def test_only_safety_officers_change_the_policy(
    persona: str, request: pytest.FixtureRequest, portal_client_for: Portal
) -> None:
    client = portal_client_for(request.getfixturevalue(persona))
    assert "Sign new policy version" not in client.get("/governance/policy/").content.decode()
    response = client.post("/governance/policy/", _policy_post(min_confidence=0.9, reason="x", password=PASSWORD))
    assert response.status_code == 403
    assert ApprovalPolicy.objects.count() == 1


def test_second_signer_policy_waits_for_a_different_safety_officer(
    safety_officer: User, portal_client_for: Portal
) -> None:
    approval_policy_revise(
        actor=safety_officer, changes={}, password=PASSWORD, reason="four eyes", requires_second_signer=True
    )
    assert approval_policy_current().requires_second_signer
    other = UserFactory(username="safety_two", role=Role.SAFETY_OFFICER)
    first = portal_client_for(safety_officer)
    proposed = first.post(
        "/governance/policy/", _policy_post(crisis_sbp=175, reason="earlier crisis", password=PASSWORD, intent="sign"),
        follow=True,
    )  # fmt: skip
    assert "comes into force when a different clinical safety officer countersigns" in proposed.content.decode()
    change = PolicyChange.objects.get()
    assert approval_policy_current().crisis_sbp == 180  # not yet in force
    page = first.get("/governance/policy/").content.decode()
    assert "Waiting for a second signer" in page and "Countersign and put in force" not in page
    same = first.post(f"/governance/policy/changes/{change.pk}/countersign/", {"password": PASSWORD})
    assert same.status_code == 403
    assert AuditEvent.objects.filter(action="policy.created", outcome="denied", actor=safety_officer).exists()
    second = portal_client_for(other)
    assert "Countersign and put in force" in second.get("/governance/policy/").content.decode()
    bad = second.post(f"/governance/policy/changes/{change.pk}/countersign/", {"password": "wrong"})
    assert bad.status_code == 400 and approval_policy_current().crisis_sbp == 180
    done = second.post(f"/governance/policy/changes/{change.pk}/countersign/", {"password": PASSWORD}, follow=True)
    assert "is in force" in done.content.decode()
    current = approval_policy_current()
    assert current.crisis_sbp == 175 and current.second_signature is not None
    assert current.signature is not None and current.signature.signer == safety_officer
    assert current.second_signature.signer == other
    change.refresh_from_db()
    assert change.status == PolicyChangeStatus.APPLIED
    assert audit_actions(action__startswith="policy.", outcome="success") == [
        "policy.created", "policy.created", "policy.change_proposed", "policy.created",
    ]  # fmt: skip


def test_a_pending_change_can_be_withdrawn_and_non_officers_cannot_countersign(
    safety_officer: User, clinician: User, portal_client_for: Portal
) -> None:
    approval_policy_revise(actor=safety_officer, changes={}, password=PASSWORD, requires_second_signer=True)
    client = portal_client_for(safety_officer)
    client.post("/governance/policy/", _policy_post(crisis_sbp=175, reason="r", password=PASSWORD, intent="sign"))
    change = PolicyChange.objects.get()
    assert (
        portal_client_for(clinician)
        .post(f"/governance/policy/changes/{change.pk}/countersign/", {"password": PASSWORD})
        .status_code
        == 403
    )
    assert client.post(f"/governance/policy/changes/{change.pk}/withdraw/", {"password": PASSWORD}).status_code == 400
    done = client.post(
        f"/governance/policy/changes/{change.pk}/withdraw/", {"password": PASSWORD, "reason": "wrong value"},
        follow=True,
    )  # fmt: skip
    assert "withdrawn" in done.content.decode()
    change.refresh_from_db()
    assert change.status == PolicyChangeStatus.WITHDRAWN and approval_policy_current().crisis_sbp == 180
    assert AuditEvent.objects.filter(action="policy.change_withdrawn").count() == 1
    assert (
        client.post("/governance/policy/changes/999999/withdraw/", {"password": PASSWORD, "reason": "x"}).status_code
        == 404
    )


def test_ml_engineer_promotes_to_canary_and_advances_the_stage_others_cannot(
    deployed_model: ModelVersion, ml_engineer: User, safety_officer: User, portal_client_for: Portal
) -> None:
    engineer = portal_client_for(ml_engineer)
    page = engineer.get(f"/models/{deployed_model.pk}/").content.decode()
    assert "Promote to canary" in page and "Promote to production" in page  # approved
    engineer.post(f"/models/{deployed_model.pk}/promote/", {"arm": "canary"})
    assert ServingPointer.objects.get(arm="canary").model_version == deployed_model
    officer = portal_client_for(safety_officer)
    assert "Advance to 20 %" not in officer.get("/monitoring/").content.decode()
    assert officer.post("/monitoring/canary/advance/").status_code == 403
    assert engineer.get("/monitoring/").content.decode().count("Advance to 20 %") == 1
    done = engineer.post("/monitoring/canary/advance/", follow=True)
    assert "The canary now serves 20 % of patients." in done.content.decode()
    assert audit_actions(action="canary.stage_advanced", outcome="success") == ["canary.stage_advanced"]


def test_bad_policy_values_are_named_at_their_field_and_nothing_is_stored(
    safety_officer: User, portal_client_for: Portal
) -> None:
    response = portal_client_for(safety_officer).post(
        "/governance/policy/", _policy_post(min_confidence=1.5, crisis_sbp="abc", password=PASSWORD, intent="sign")
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Must be between 0.5 and 0.99" in html and "Enter a whole number." in html
    assert "This field is required." in html  # the reason
    assert ApprovalPolicy.objects.count() == 1
    assert (
        not AuditEvent.objects.filter(action__startswith="policy.", outcome="success")
        .exclude(payload__contains="default_policy_bootstrap")
        .exists()
    )
