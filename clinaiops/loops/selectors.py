from __future__ import annotations

from django.db.models import QuerySet

from clinaiops.care.selectors import patient_list_visible
from clinaiops.core.errors import NotFound
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus, Tier

_RELATED = ("patient", "model_version", "policy", "decision", "decision__signature")


def recommendation_list_visible(*, user: User) -> QuerySet[Recommendation]:
    """Patients see their own; clinicians those of their care teams' patients; nobody else any."""
    if user.role not in {Role.PATIENT, Role.CLINICIAN}:
        return Recommendation.objects.none()
    return (
        Recommendation.objects.select_related(*_RELATED)
        .filter(patient__in=patient_list_visible(user=user))
        .order_by("-created_at", "-pk")
    )


def recommendation_get_visible(*, user: User, recommendation_id: int) -> Recommendation:
    rec = recommendation_list_visible(user=user).filter(pk=recommendation_id).first()
    if rec is None:
        raise NotFound("No such recommendation.")
    return rec


def review_queue(*, user: User) -> QuerySet[Recommendation]:
    return (
        recommendation_list_visible(user=user)
        .filter(status=RecommendationStatus.PENDING_REVIEW, tier=Tier.MAJOR)
        .order_by("created_at")
    )
