"""Patient–AI loop, last step: the patient acknowledges (and acts on) or declines what was delivered."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.models import Patient
from clinaiops.care.services import regimen_change
from clinaiops.core.errors import PermissionRefused, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.services.transitions import recommendation_transition

RESPONSES = {"acknowledge": RecommendationStatus.ACKNOWLEDGED, "decline": RecommendationStatus.DECLINED}


def recommendation_respond(*, actor: User, recommendation: Recommendation, response: str) -> Recommendation:
    """The patient acknowledges (and acts on) or declines a delivered recommendation. Acknowledging moves the
    regimen to the delivered step; declining leaves it as it is."""
    if actor.role != Role.PATIENT or recommendation.patient.user_id != actor.pk:
        raise PermissionRefused("Only the patient can respond to this recommendation.")
    if response not in RESPONSES:
        raise ValidationFailed("Unknown response.", fields={"response": ["Use acknowledge or decline."]})
    with transaction.atomic():
        # The patient row first, as an evaluation does, so the two never wait on each other in opposite order.
        Patient.objects.select_for_update().filter(pk=recommendation.patient_id).first()
        rec = Recommendation.objects.select_for_update().select_related("patient").get(pk=recommendation.pk)
        recommendation_transition(rec, RESPONSES[response], responded_at=timezone.now())
        audit_record(
            action=AuditAction.RECOMMENDATION_RESPONDED,
            object_type="recommendation",
            object_id=rec.pk,
            actor=actor,
            payload={"response": response},
        )
        if rec.status == RecommendationStatus.ACKNOWLEDGED and rec.final_step is not None:
            regimen_change(patient=rec.patient, to_step=rec.final_step, actor=actor, cause=f"recommendation:{rec.pk}")
    return rec
