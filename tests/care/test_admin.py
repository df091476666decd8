"""The Django admin is read-only for clinical and governance records; its actions call the audited services."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, CareTeam, Patient
from clinaiops.core.models import User
from governance.services import approval_policy_current
from tests.conftest import readings_add
from tests.factories import UserFactory


def test_clinical_and_governance_records_cannot_be_edited_or_deleted_in_the_admin(
    patient: Patient, administrator: User, portal_client_for: Callable[[User], Client]
) -> None:
    readings_add(patient, [(186, 112)])
    alert = Alert.objects.get(patient=patient)
    policy = approval_policy_current()
    admin = portal_client_for(administrator)
    assert admin.get(f"/admin/care/patient/{patient.pk}/change/").status_code == 200  # a read-only view
    edited = admin.post(f"/admin/care/patient/{patient.pk}/change/", {"code": "P-9999", "current_step": 6})
    assert edited.status_code == 403
    assert admin.post(f"/admin/care/alert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin.get("/admin/care/alert/add/").status_code == 403
    assert admin.post(f"/admin/governance/approvalpolicy/{policy.pk}/change/", {"crisis_sbp": 200}).status_code == 403
    patient.refresh_from_db()
    policy.refresh_from_db()
    assert (patient.code, patient.current_step, policy.crisis_sbp) == ("P-0001", 2, 180)
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_the_admin_membership_action_calls_the_audited_service(
    care_team: CareTeam,
    unassigned_clinician: User,
    administrator: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    admin = portal_client_for(administrator)
    body = {"action": "member_add", "_selected_action": [care_team.pk]}
    asked = admin.post("/admin/care/careteam/", body)
    assert asked.status_code == 200
    assert b"Add a clinician to the care team" in asked.content
    done = admin.post("/admin/care/careteam/", {**body, "apply": "Apply", "user": unassigned_clinician.pk}, follow=True)
    assert done.status_code == 200
    assert care_team.members.filter(pk=unassigned_clinician.pk).exists()
    assert AuditEvent.objects.get(action="care_team.member_added").actor == administrator


def test_the_admin_enrols_a_patient_through_the_service(
    care_team: CareTeam, administrator: User, portal_client_for: Callable[[User], Client]
) -> None:
    account = UserFactory(username="pat_admin", role="patient")
    form = {
        "user": account.pk, "code": "P-0500", "care_team": care_team.pk, "given_name": "Imani",
        "family_name": "Okonkwo", "date_of_birth": "1970-05-21", "mrn": "40077781", "sex": "female",
        "race_ethnicity": "black", "skin_tone": 5, "current_step": 1, "target_sbp": 130, "target_dbp": 80,
    }  # fmt: skip
    created = portal_client_for(administrator).post("/admin/care/patient/add/", form)
    assert created.status_code == 302
    patient = Patient.objects.get(code="P-0500")
    enrolled = AuditEvent.objects.get(action="patient.enrolled")
    assert (enrolled.object_id, enrolled.actor) == (str(patient.pk), administrator)


def test_the_admin_role_action_calls_the_audited_service_and_the_role_field_is_read_only(
    administrator: User, portal_client_for: Callable[[User], Client]
) -> None:
    newcomer = UserFactory(username="newcomer", role="")
    admin = portal_client_for(administrator)
    body = {"action": "role_set", "_selected_action": [newcomer.pk], "apply": "Apply", "role": "ml_engineer"}
    assert admin.post("/admin/core/user/", body, follow=True).status_code == 200
    newcomer.refresh_from_db()
    assert newcomer.role == "ml_engineer"
    assert AuditEvent.objects.get(action="user.role_set").actor == administrator
    page = admin.get(f"/admin/core/user/{newcomer.pk}/change/").content.decode()
    assert 'name="role"' not in page  # shown, not editable


def test_staff_without_the_admin_role_cannot_use_the_admin(
    clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    assert portal_client_for(clinician).get("/admin/care/patient/").status_code == 302  # to the admin login
