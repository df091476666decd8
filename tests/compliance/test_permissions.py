"""Who may export what (issue 9): a test per persona, through the service, the pages and the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent, AuditOutcome
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance.errors import ExportInvalid, ExportNotBuilt, ExportNotFound, ExportRefused
from compliance.models import Export, ExportStatus
from compliance.permissions import EXPORT_ROLES, export_kind_built, export_kinds_for
from compliance.services import export_request

OFFICERS = ("compliance_officer", "safety_officer")
EVERYONE = ("patient", "clinician", "unassigned_clinician", "ml_engineer", "safety_officer", "compliance_officer")


def _user(request: pytest.FixtureRequest, persona: str) -> User:
    value = request.getfixturevalue(persona)
    return value.user if isinstance(value, Patient) else value


@pytest.mark.parametrize("persona", EVERYONE)
def test_only_officers_export_an_audit_range_or_an_evidence_bundle(
    persona: str, request: pytest.FixtureRequest, run_export: Callable[..., Export]
) -> None:
    actor = _user(request, persona)
    for kind, formats in (("audit_range", ["json"]), ("evidence_bundle", ["zip"]), ("ledger_verification", ["json"])):
        if persona in OFFICERS:
            assert run_export(actor=actor, kind=kind, formats=formats).status == ExportStatus.FINISHED
        else:
            with pytest.raises(ExportRefused):
                export_request(actor=actor, kind=kind, parameters={}, formats=formats)
    if persona not in OFFICERS:
        refused = AuditEvent.objects.filter(actor=actor, outcome=AuditOutcome.DENIED, object_type="export")
        assert set(refused.values_list("object_id", flat=True)) == {
            "audit_range",
            "evidence_bundle",
            "ledger_verification",
        }
        assert not Export.objects.exists()


@pytest.mark.parametrize("persona", EVERYONE)
def test_decision_records_go_to_officers_and_to_the_patients_own_care_team_only(
    persona: str, request: pytest.FixtureRequest, decided: Recommendation, run_export: Callable[..., Export]
) -> None:
    actor = _user(request, persona)
    parameters = {"recommendation_id": str(decided.pk)}
    if persona in (*OFFICERS, "clinician"):
        assert run_export(actor=actor, kind="decision_record", parameters=parameters, formats=["json"]).is_finished
    elif persona == "unassigned_clinician":
        # Another care team's patient: not found, not forbidden (DESIGN §6), and the attempt is on the record.
        with pytest.raises(ExportNotFound):
            export_request(actor=actor, kind="decision_record", parameters=parameters, formats=["json"])
        assert AuditEvent.objects.filter(actor=actor, outcome=AuditOutcome.DENIED, object_id="decision_record").exists()
    else:
        with pytest.raises(ExportRefused):
            export_request(actor=actor, kind="decision_record", parameters=parameters, formats=["json"])


def test_emergency_access_lets_a_clinician_read_but_not_export_a_decision_record(
    decided: Recommendation, emergency_clinician: User
) -> None:
    with pytest.raises(ExportNotFound):
        export_request(
            actor=emergency_clinician,
            kind="decision_record",
            parameters={"recommendation_id": str(decided.pk)},
            formats=["json"],
        )


MODEL_KINDS = ("model_card", "fairness", "explainability")


@pytest.mark.parametrize("persona", EVERYONE)
def test_model_cards_fairness_and_explainability_are_for_officers_and_ml_engineers(
    persona: str, request: pytest.FixtureRequest
) -> None:
    actor = _user(request, persona)
    for kind in MODEL_KINDS:
        if persona not in (*OFFICERS, "ml_engineer"):
            with pytest.raises(ExportRefused):
                export_request(actor=actor, kind=kind, parameters={"version": "production"}, formats=["json"])
        elif not export_kind_built(kind):
            with pytest.raises(ExportNotBuilt):
                export_request(actor=actor, kind=kind, parameters={"version": "production"}, formats=["json"])
        else:
            # Past the role check: with no model serving, the version is what is missing (its own tests export it).
            with pytest.raises(ExportNotFound, match="No model version serves on production"):
                export_request(actor=actor, kind=kind, parameters={"version": "production"}, formats=["json"])
    assert not Export.objects.exists()


def test_the_permission_table_names_every_kind_and_the_pages_offer_only_built_ones() -> None:
    from compliance.models import ExportKind
    from compliance.registry import REPORTS

    assert set(EXPORT_ROLES) == set(ExportKind.values)
    assert set(REPORTS) <= set(ExportKind.values)
    assert [k.value for k in export_kinds_for("ml_engineer")] == [k for k in MODEL_KINDS if k in REPORTS]
    assert {k.value for k in export_kinds_for("clinician")} == {"decision_record", "decisions"}
    assert {k.value for k in export_kinds_for("compliance_officer")} == set(REPORTS)
    assert export_kinds_for("patient") == [ExportKind.ACCOUNTING]  # through the API only (PORTAL_ROLES)


def test_a_patient_exports_only_their_own_accounting(patient: Patient, other_patient: Patient) -> None:
    with pytest.raises(ExportNotFound):
        export_request(
            actor=patient.user, kind="accounting", parameters={"patient_code": other_patient.code}, formats=["json"]
        )
    own = export_request(actor=patient.user, kind="accounting", parameters={}, formats=["json"])
    assert own.parameters == {"patient_code": patient.code}


def test_a_clinician_lists_decisions_of_their_own_patients_only(
    decided: Recommendation,
    clinician: User,
    unassigned_clinician: User,
    other_patient: Patient,
    run_export: Callable[..., Export],
) -> None:
    with pytest.raises(ExportNotFound):
        export_request(
            actor=unassigned_clinician,
            kind="decisions",
            parameters={"patient_code": decided.patient.code},
            formats=["csv"],
        )
    theirs = run_export(actor=unassigned_clinician, kind="decisions", formats=["json"])
    from compliance.services import export_file_path

    data = export_file_path(theirs.files.get()).read_text()
    assert '"recommendations": 0' in data
    ours = run_export(actor=clinician, kind="decisions", formats=["json"])
    assert '"recommendations": 1' in export_file_path(ours.files.get()).read_text()


def test_bad_parameters_are_field_errors_not_exports(compliance_officer: User) -> None:
    with pytest.raises(ExportInvalid) as caught:
        export_request(actor=compliance_officer, kind="audit_range", parameters={"from": "yesterday"}, formats=["csv"])
    assert "from" in caught.value.fields
    with pytest.raises(ExportInvalid) as caught:
        export_request(actor=compliance_officer, kind="audit_range", parameters={}, formats=["zip"])
    assert "formats" in caught.value.fields
    with pytest.raises(ExportInvalid):
        export_request(
            actor=compliance_officer, kind="accounting", parameters={"patient_code": "P-9999"}, formats=["json"]
        )
    with pytest.raises(ExportInvalid):
        export_request(actor=compliance_officer, kind="evidence_bundle", parameters={"actor": "x"}, formats=["zip"])
    assert not Export.objects.exists()


@pytest.mark.parametrize(
    ("persona", "status"),
    [("compliance_officer", 200), ("safety_officer", 200), ("clinician", 200), ("ml_engineer", 200), ("patient", 403)],
)
def test_the_exports_page_refuses_patients(
    persona: str, status: int, request: pytest.FixtureRequest, portal_client_for: Callable[[User], Client]
) -> None:
    assert portal_client_for(_user(request, persona)).get("/compliance/exports/").status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(db: None) -> None:
    response = Client().get("/compliance/exports/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("compliance_officer", 200),
        ("safety_officer", 200),
        ("clinician", 200),
        ("unassigned_clinician", 404),
        ("ml_engineer", 403),
        ("patient", 403),
    ],
)
def test_the_decision_record_page_per_persona(
    persona: str,
    status: int,
    request: pytest.FixtureRequest,
    decided: Recommendation,
    portal_client_for: Callable[[User], Client],
) -> None:
    response = portal_client_for(_user(request, persona)).get(f"/compliance/decisions/{decided.pk}/")
    assert response.status_code == status
    if status == 200:
        assert b"Decision record" in response.content
        assert b"Dr Assigned" in response.content


@pytest.mark.parametrize(
    ("persona", "status"),
    [("compliance_officer", 200), ("safety_officer", 200), ("clinician", 403), ("ml_engineer", 403), ("patient", 403)],
)
def test_the_streamed_audit_listing_per_persona(
    persona: str,
    status: int,
    request: pytest.FixtureRequest,
    portal_client_for: Callable[[User], Client],
    decided: Recommendation,
) -> None:
    response = portal_client_for(_user(request, persona)).get("/compliance/audit/export/?format=csv")
    assert response.status_code == status


def test_the_access_log_export_api_is_for_the_patient_alone(
    patient: Patient,
    other_patient: Patient,
    clinician: User,
    compliance_officer: User,
    decided: Recommendation,
    api_client_for: Callable[[User], APIClient],
    portal_client_for: Callable[[User], Client],
) -> None:
    portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    response = api_client_for(patient.user).get("/api/v1/me/access-log/export/?format=csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("seq,when,who,role,kind,action,what,why,grant_id,export_id")
    assert "Dr Assigned,Clinician,view,viewed the record" in body
    other = b"".join(api_client_for(other_patient.user).get("/api/v1/me/access-log/export/").streaming_content)
    assert b"Dr Assigned" not in other
    assert api_client_for(clinician).get("/api/v1/me/access-log/export/").status_code == 403
    assert APIClient().get("/api/v1/me/access-log/export/").status_code == 401
    bad: Any = api_client_for(patient.user).get("/api/v1/me/access-log/export/?format=pdf")
    assert bad.status_code == 400
    assert bad.json()["code"]


@pytest.mark.parametrize(
    ("persona", "kind", "status"),
    [
        ("compliance_officer", "evidence_bundle", 302),
        ("safety_officer", "audit_range", 302),
        ("clinician", "decision_record", 302),
        ("clinician", "audit_range", 403),
        ("clinician", "evidence_bundle", 403),
        ("unassigned_clinician", "decision_record", 404),
        ("ml_engineer", "decision_record", 403),
        ("ml_engineer", "evidence_bundle", 403),
        ("patient", "accounting", 403),  # patients export through the API only
    ],
)
def test_starting_an_export_from_the_portal_per_persona(
    persona: str,
    kind: str,
    status: int,
    request: pytest.FixtureRequest,
    decided: Recommendation,
    portal_client_for: Callable[[User], Client],
) -> None:
    formats = {"evidence_bundle": ["zip"], "audit_range": ["json"]}.get(kind, ["json"])
    form = {"kind": kind, "formats": formats, "purpose": "audit", "recommendation_id": str(decided.pk)}
    if kind != "decision_record":
        del form["recommendation_id"]
    if kind == "accounting":
        form["patient_code"] = decided.patient.code
    actor = _user(request, persona)
    response = portal_client_for(actor).post("/compliance/exports/start/", form)
    assert response.status_code == status
    if status == 302:
        export = Export.objects.get()
        assert (export.kind, export.requested_by_id, response["Location"]) == (
            kind,
            actor.pk,
            f"/compliance/exports/{export.pk}/",
        )
    else:
        assert not Export.objects.exists()
        assert AuditEvent.objects.filter(actor=actor, outcome=AuditOutcome.DENIED).exists()


@pytest.mark.parametrize(
    ("persona", "status"),
    [("compliance_officer", 302), ("safety_officer", 302), ("clinician", 403), ("ml_engineer", 403), ("patient", 403)],
)
def test_verifying_the_ledger_from_the_portal_per_persona(
    persona: str, status: int, request: pytest.FixtureRequest, portal_client_for: Callable[[User], Client]
) -> None:
    response = portal_client_for(_user(request, persona)).post("/compliance/ledger/verify/")
    assert response.status_code == status
    assert Export.objects.filter(kind="ledger_verification").count() == (1 if status == 302 else 0)
