"""Who may act on a patient's care: the one care-team check every service and page uses (DESIGN §6).

A clinician on the patient's care team may read the record and change the care plan. A clinician outside it
who opened emergency (break-glass) access may read the record and acknowledge its safety alerts, for as long as
the grant runs, and nothing else: signing review decisions, evaluating, autonomy bounds, resuming autonomy and
targets stay with the care team. Emergency access exists so that someone covering an urgent alert can see the
patient and act on the alert; a titration decision is never that urgent, and a clinician who is not responsible
for the patient's ongoing care should not sign it (the decision becomes a training label, too). A clinician who
needs to decide is added to the care team, which is itself an audited change.

Everyone else is told the record does not exist (404, not 403), and the refusal is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.care.models import BreakGlassGrant, Patient
from clinaiops.care.selectors import break_glass_active
from clinaiops.core.errors import NotFound, PermissionRefused
from clinaiops.core.models import Role, User


class EmergencyAccessReadOnly(PermissionRefused):
    code = "emergency_access_read_only"


@dataclass(frozen=True)
class CareAccess:
    """How a user reaches one patient: as a member of the care team, through an unexpired break-glass grant, or
    not at all."""

    on_care_team: bool
    grant: BreakGlassGrant | None

    @property
    def emergency(self) -> bool:
        return not self.on_care_team and self.grant is not None


def care_access_for(*, user: User, patient: Patient) -> CareAccess:
    if user.role != Role.CLINICIAN:
        return CareAccess(on_care_team=False, grant=None)
    if patient.care_team.members.filter(pk=user.pk).exists():
        return CareAccess(on_care_team=True, grant=None)
    return CareAccess(on_care_team=False, grant=break_glass_active(user=user, patient=patient))


EMERGENCY_READ_ONLY_MESSAGE = (
    "Emergency access lets you read this record and acknowledge its safety alerts. Decisions, evaluations, "
    "bounds and targets stay with the patient's care team."
)


def care_team_clinician_require(
    *, actor: User, patient: Patient, action: AuditAction, object_type: str = "patient", object_id: object = None
) -> None:
    """Refuse, and audit the refusal, unless `actor` is a clinician on the patient's care team. Under emergency
    access the refusal says why (EmergencyAccessReadOnly); anyone else is told the record does not exist."""
    access = care_access_for(user=actor, patient=patient)
    if access.on_care_team:
        return
    target = patient.pk if object_id is None else object_id
    if access.emergency:
        audit_record_denied(
            action=action, object_type=object_type, object_id=target, actor=actor, reason="emergency_access_read_only"
        )
        raise EmergencyAccessReadOnly(EMERGENCY_READ_ONLY_MESSAGE)
    audit_record_denied(
        action=action, object_type=object_type, object_id=target, actor=actor, reason="not_on_care_team"
    )
    raise NotFound(f"No such {object_type.replace('_', ' ')}.")


def patient_record_viewed(*, actor: User, patient_id: int, what: str) -> None:
    """Every staff read of a patient's record is accounted for (DESIGN §4): `what` names the page or export."""
    with transaction.atomic():
        audit_record(
            action=AuditAction.PATIENT_RECORD_VIEWED,
            object_type="patient",
            object_id=patient_id,
            actor=actor,
            payload={"view": what},
        )


def administrator_require(*, actor: User | None, action: AuditAction, object_type: str, object_id: object) -> None:
    """Care-team membership, enrolment and roles decide who may see which patient, so only an administrator (a
    Django superuser, working in the admin) changes them; `actor=None` is the system seeding a cohort. Call it
    before the change's transaction: the refusal is audited in its own, which must not roll back with it."""
    if actor is None or actor.is_superuser:
        return
    audit_record_denied(action=action, object_type=object_type, object_id=object_id, actor=actor, reason="not_admin")
    raise PermissionRefused("Only an administrator can change care teams, enrolment or roles.")
