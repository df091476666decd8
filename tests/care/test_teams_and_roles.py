"""Who may see whom changes only through audited services: care-team membership, enrolment, team assignment
and roles (issue 7, "no bypasses"). So do dose logs, and the ledger keeps clinical values out of its payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from django.test import Client

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, DoseLog, Patient
from clinaiops.care.services import (
    PatientIdentifiers,
    care_team_create,
    care_team_member_add,
    care_team_member_remove,
    dose_log_store,
    patient_enroll,
    patient_team_assign,
)
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from governance.services import user_role_set
from tests.conftest import readings_add
from tests.factories import UserFactory


def test_an_administrator_adds_and_removes_a_clinician_and_access_follows(
    patient: Patient,
    care_team: CareTeam,
    unassigned_clinician: User,
    administrator: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    client = portal_client_for(unassigned_clinician)
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert care_team_member_add(actor=administrator, team=care_team, user=unassigned_clinician)
    assert not care_team_member_add(actor=administrator, team=care_team, user=unassigned_clinician)  # once
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    assert care_team_member_remove(actor=administrator, team=care_team, user=unassigned_clinician)
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    events = AuditEvent.objects.filter(object_type="care_team", object_id=str(care_team.pk)).order_by("seq")
    assert [(e.action, e.actor, e.payload_data["user_id"]) for e in events] == [
        ("care_team.member_added", administrator, unassigned_clinician.pk),
        ("care_team.member_removed", administrator, unassigned_clinician.pk),
    ]


def test_membership_is_refused_to_non_administrators_and_to_non_clinicians(
    patient: Patient, care_team: CareTeam, clinician: User, unassigned_clinician: User, administrator: User
) -> None:
    with pytest.raises(PermissionRefused):
        care_team_member_add(actor=clinician, team=care_team, user=unassigned_clinician)
    denied = AuditEvent.objects.get(action="care_team.member_added")
    assert (denied.outcome, denied.actor) == ("denied", clinician)
    with pytest.raises(ValidationFailed):
        care_team_member_add(actor=administrator, team=care_team, user=patient.user)
    assert not care_team.members.filter(pk__in=[unassigned_clinician.pk, patient.user.pk]).exists()


def test_moving_a_patient_to_another_team_moves_who_may_see_them(
    patient: Patient,
    other_team: CareTeam,
    clinician: User,
    unassigned_clinician: User,
    administrator: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    old_team_id = patient.care_team_id
    assert patient_team_assign(actor=administrator, patient=patient, team=other_team)
    assert portal_client_for(clinician).get(f"/patients/{patient.pk}/").status_code == 404
    assert portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/").status_code == 200
    event = AuditEvent.objects.get(action="patient.team_assigned")
    assert event.payload_data == {"from_care_team_id": old_team_id, "to_care_team_id": other_team.pk}
    with pytest.raises(PermissionRefused):
        patient_team_assign(actor=unassigned_clinician, patient=patient, team=other_team)


def test_enrolment_is_for_administrators_and_patient_accounts(
    care_team: CareTeam, clinician: User, administrator: User
) -> None:
    account = UserFactory(username="pat_new", role=Role.PATIENT)
    identifiers = PatientIdentifiers(
        given_name="Kenji", family_name="Nakamura", date_of_birth=date(1950, 6, 2), mrn="40012345"
    )
    details = {"code": "P-0100", "care_team": care_team, "sex": "male", "birth_year": 1950, "race_ethnicity": "asian",
               "skin_tone": 4, "identifiers": identifiers}  # fmt: skip
    with pytest.raises(PermissionRefused):
        patient_enroll(actor=clinician, user=account, **details)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        patient_enroll(actor=administrator, user=clinician, **details)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="BP target"):
        patient_enroll(actor=administrator, user=account, target_sbp=200, **details)  # type: ignore[arg-type]
    patient = patient_enroll(actor=administrator, user=account, **details)  # type: ignore[arg-type]
    enrolled = AuditEvent.objects.get(action="patient.enrolled", outcome="success")
    assert (enrolled.object_id, enrolled.actor) == (str(patient.pk), administrator)


def test_roles_change_only_through_an_administrator_and_are_audited(
    patient: Patient, clinician: User, administrator: User
) -> None:
    newcomer = UserFactory(username="newcomer", role="")
    assert user_role_set(actor=administrator, user=newcomer, role=Role.SAFETY_OFFICER)
    newcomer.refresh_from_db()
    assert newcomer.role == Role.SAFETY_OFFICER
    event = AuditEvent.objects.get(action="user.role_set", outcome="success")
    assert (event.actor, event.payload_data) == (administrator, {"from_role": "", "to_role": "safety_officer"})

    with pytest.raises(PermissionRefused):
        user_role_set(actor=clinician, user=newcomer, role=Role.CLINICIAN)
    with pytest.raises(PermissionRefused, match="own role"):
        user_role_set(actor=administrator, user=administrator, role=Role.CLINICIAN)
    with pytest.raises(ValidationFailed, match="patient"):
        user_role_set(actor=administrator, user=patient.user, role=Role.CLINICIAN)
    with pytest.raises(ValidationFailed):
        user_role_set(actor=administrator, user=newcomer, role=Role.SYSTEM)
    newcomer.refresh_from_db()
    assert newcomer.role == Role.SAFETY_OFFICER


def test_a_care_team_is_created_once_by_name(administrator: User) -> None:
    team = care_team_create(actor=administrator, name="Clinic C")
    assert AuditEvent.objects.get(action="care_team.created").object_id == str(team.pk)
    from clinaiops.core.errors import Conflict

    with pytest.raises(Conflict):
        care_team_create(actor=administrator, name="Clinic C")


def test_a_dose_log_is_audited_with_a_digest_not_whether_it_was_taken(patient: Patient) -> None:
    dose_log_store(patient=patient, day=date(2026, 11, 20), taken=False)
    dose_log_store(patient=patient, day=date(2026, 11, 20), taken=True)  # a correction replaces the entry
    assert DoseLog.objects.get(patient=patient).taken is True
    events = list(AuditEvent.objects.filter(action="dose.logged").order_by("seq"))
    assert [(e.actor, e.payload_data["created"]) for e in events] == [(patient.user, True), (patient.user, False)]
    assert events[1].payload_data["entry_hmac"] == audit_digest(["2026-11-20", True, 2])
    assert "true" not in events[1].payload.replace('"created":false', "")


def test_a_reading_is_audited_with_a_keyed_digest_of_its_values(patient: Patient) -> None:
    readings_add(patient, [(143, 91)])
    event = AuditEvent.objects.get(action="reading.ingested")
    assert event.payload_data["values_hmac"] == audit_digest([143, 91, 70])
    assert "values_sha256" not in event.payload_data
    plain = [str(v) for v in event.payload_data.values() if not str(v).startswith("hmac-sha256:")]
    assert not any("143" in v for v in plain)  # digests are hex and may hold "143" by chance
