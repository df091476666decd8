"""A patient's accounting of access and disclosure (HIPAA 164.528): emergency access says so and names its grant
(issue 7 defect 4), exports and downloads are disclosures, the page has a date range and speaks words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.care.models import BreakGlassGrant, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance.models import Export
from governance.accounting import EntryKind, access_accounting
from tests.compliance.conftest import streamed


def test_emergency_access_views_are_accounted_as_emergency_access_with_their_grant(
    patient: Patient,
    clinician: User,
    emergency_clinician: User,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
    api_client_for: Callable[[User], APIClient],
) -> None:
    grant = BreakGlassGrant.objects.get(user=emergency_clinician, patient=patient)
    assert portal_client_for(emergency_clinician).get(f"/patients/{patient.pk}/").status_code == 200
    assert portal_client_for(clinician).get(f"/patients/{patient.pk}/").status_code == 200

    entries = access_accounting(patient=patient)
    emergency_view = next(e for e in entries if e.who == "Dr Elsewhere" and e.action == "viewed the record")
    assert emergency_view.kind == EntryKind.EMERGENCY_VIEW
    assert emergency_view.grant_id == grant.pk
    assert emergency_view.why == f"emergency access (grant #{grant.pk}): Covering a P0 alert overnight"
    care_team_view = next(e for e in entries if e.who == "Dr Assigned")
    assert (care_team_view.kind, care_team_view.why, care_team_view.grant_id) == (EntryKind.VIEW, "care team", None)

    page = portal_client_for(compliance_officer).get(f"/compliance/accounting/?code={patient.code}").content.decode()
    assert f"emergency access (grant #{grant.pk}): Covering a P0 alert overnight" in page
    log = api_client_for(patient.user).get("/api/v1/me/access-log/").json()["results"]
    by_elsewhere = [e["why"] for e in log if e["who"] == "Dr Elsewhere" and e["action"] == "viewed the record"]
    assert by_elsewhere == [f"emergency access (grant #{grant.pk}): Covering a P0 alert overnight"]


def test_a_view_after_the_grant_expired_is_not_credited_to_it(
    patient: Patient, emergency_clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    portal_client_for(emergency_clinician).get(f"/patients/{patient.pk}/")
    viewed = AuditEvent.objects.filter(action=AuditAction.PATIENT_RECORD_VIEWED).latest("seq").recorded_at
    BreakGlassGrant.objects.update(expires_at=viewed + timedelta(microseconds=1))  # it ran out just after that view
    assert portal_client_for(emergency_clinician).get(f"/patients/{patient.pk}/").status_code == 404
    kinds = [e.kind for e in access_accounting(patient=patient)]
    assert kinds.count(EntryKind.EMERGENCY_VIEW) == 1
    assert EntryKind.DENIED in kinds


def test_the_accounting_page_speaks_words_not_codes_and_is_itself_accounted(
    patient: Patient, unassigned_clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/")  # refused: outside the care team
    client = portal_client_for(compliance_officer)
    client.get(f"/compliance/accounting/?code={patient.code}")
    page = client.get(f"/compliance/accounting/?code={patient.code.lower()}").content.decode()
    assert "outside the care team" in page
    assert "Compliance officer" in page
    assert "compliance review" in page
    for code in ("outside_care_team", "compliance_officer", "compliance_review", "access_accounting"):
        assert code not in page.split("<table", 1)[1]


def test_the_accounting_page_filters_by_date(
    patient: Patient, clinician: User, compliance_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    AuditEvent.objects.filter(action=AuditAction.PATIENT_RECORD_VIEWED)  # the view above is today
    today = timezone.now().date()
    client = portal_client_for(compliance_officer)
    inside = client.get(f"/compliance/accounting/?code={patient.code}&from={today}&to={today}").content
    assert b"Dr Assigned" in inside
    before = today - timedelta(days=3)
    outside = client.get(f"/compliance/accounting/?code={patient.code}&from={before}&to={before}").content
    assert b"Dr Assigned" not in outside
    assert b"Nobody has accessed or disclosed this record in this range" in outside
    bad = client.get(f"/compliance/accounting/?code={patient.code}&from=someday").content
    assert b"Use a date like" in bad


def test_the_accounting_view_makes_only_its_selectors_and_services_queries(
    patient: Patient,
    compliance_officer: User,
    portal_client_for: Callable[[User], Client],
    django_assert_max_num_queries: Any,
) -> None:
    client = portal_client_for(compliance_officer)
    client.get(f"/compliance/accounting/?code={patient.code}")
    # session + user, patient by code, the audited read (one round trip on PostgreSQL), grants, export ids, events
    with django_assert_max_num_queries(12):
        assert client.get(f"/compliance/accounting/?code={patient.code}").status_code == 200


@pytest.mark.parametrize("persona", ["clinician", "ml_engineer", "safety_officer", "patient"])
def test_only_the_compliance_office_opens_the_accounting_page(
    persona: str, request: pytest.FixtureRequest, patient: Patient, portal_client_for: Callable[[User], Client]
) -> None:
    value = request.getfixturevalue(persona)
    user = value.user if isinstance(value, Patient) else value
    assert portal_client_for(user).get(f"/compliance/accounting/?code={patient.code}").status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.PATIENT_RECORD_VIEWED, actor=user).exists()


def test_exports_and_their_downloads_show_in_the_affected_patients_accounting(
    decided: Recommendation,
    patient: Patient,
    other_patient: Patient,
    compliance_officer: User,
    safety_officer: User,
    run_export: Callable[..., Export],
    portal_client_for: Callable[[User], Client],
) -> None:
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json", "pdf"],
        purpose="regulator_request",
    )
    assert export.patients_disclosed == 1
    pdf = export.files.get(format="pdf")
    response = portal_client_for(safety_officer).get(f"/compliance/exports/{export.pk}/files/{pdf.name}")
    assert response.status_code == 200
    assert streamed(response).startswith(b"%PDF")

    entries = access_accounting(patient=patient)
    disclosure = next(e for e in entries if e.kind == EntryKind.DISCLOSURE)
    assert (disclosure.who, disclosure.export_id) == ("Compliance Example", export.pk)
    assert disclosure.what == f"decision record (export #{export.pk})"
    assert disclosure.why == "request from a regulator"
    download = next(e for e in entries if e.kind == EntryKind.DOWNLOAD)
    assert (download.who, download.role, download.export_id) == ("Safety Example", "Clinical safety officer", export.pk)
    assert entries.index(download) < entries.index(disclosure)  # newest first
    assert access_accounting(patient=other_patient) == []


def test_a_patient_exporting_their_own_accounting_sees_that_export_in_it(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    first = streamed(client.get("/api/v1/me/access-log/export/?format=jsonl"))
    assert first == b""  # nothing had happened to the record yet
    second = streamed(client.get("/api/v1/me/access-log/export/?format=jsonl")).decode()
    assert '"kind":"disclosure"' in second
    assert "the patient's own request" in second
    export = Export.objects.order_by("pk").first()
    assert export is not None
    assert (export.delivery, export.status, export.requested_by_id) == ("stream", "finished", patient.user.pk)
    assert export.files.get().size == 0
