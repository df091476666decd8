from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from inference.models import Arm, ModelVersion, ServingPointer, ServingPointerEvent


def serving_version(*, arm: str = Arm.PRODUCTION) -> ModelVersion | None:
    pointer = ServingPointer.objects.select_related("model_version").filter(arm=arm).first()
    return pointer.model_version if pointer else None


def serving_version_at(*, arm: str, at: datetime) -> ModelVersion | None:
    """Which version served `arm` at `at`, from the pointer history."""
    event = ServingPointerEvent.objects.filter(arm=arm, set_at__lte=at).order_by("-set_at", "-pk").first()
    return event.model_version if event else None


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("training_run", "training_run__snapshot").order_by("-created_at")


def serving_pointer_list() -> QuerySet[ServingPointer]:
    return ServingPointer.objects.select_related("model_version").order_by("arm")
