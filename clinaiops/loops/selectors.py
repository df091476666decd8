"""Reads of recommendations. Authorization is decided in the queryset (DESIGN §6): what a user may not see is
simply not found."""

from __future__ import annotations

from django.db.models import QuerySet

from clinaiops.care.selectors import patient_list_visible
from clinaiops.core.errors import NotFound
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus, Tier

_RELATED = ("patient__care_team", "model_version", "policy", "decision", "decision__signature")
# A model version row carries its metrics, gates and signed manifest (tens of KB of JSON, DESIGN §10); a
# recommendation needs only its hash and family, so the rest stays in the database.
_MODEL_VERSION_BULK = (
    "model_version__metrics", "model_version__gates", "model_version__manifest_text", "model_version__feature_names",
    "model_version__classes",
)  # fmt: skip


def recommendation_list_visible(*, user: User) -> QuerySet[Recommendation]:
    """Patients see their own; clinicians those of their care teams' patients; nobody else any."""
    if user.role not in {Role.PATIENT, Role.CLINICIAN}:
        return Recommendation.objects.none()
    return (
        Recommendation.objects.select_related(*_RELATED)
        .defer(*_MODEL_VERSION_BULK)
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


def recommendation_list_for_patient(*, user: User, patient_id: int, limit: int = 10) -> list[Recommendation]:
    """The newest recommendations of one patient, as far as `user` may see them (the patient page)."""
    return list(recommendation_list_visible(user=user).filter(patient_id=patient_id)[:limit])
