"""Model-lifecycle reads: serving pointers and their history, versions, change-control plans, snapshot rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TypedDict

from django.db.models import Q, QuerySet

from inference.artifacts import artifact_get
from inference.models import (
    TITRATION_LINE,
    Arm,
    ChangeControlPlan,
    DatasetSnapshot,
    ModelVersion,
    ServingPointer,
    ServingPointerEvent,
    TrainingRun,
)


def serving_version(*, arm: str = Arm.PRODUCTION) -> ModelVersion | None:
    pointer = ServingPointer.objects.select_related("model_version").filter(arm=arm).first()
    return pointer.model_version if pointer else None


def serving_version_at(*, arm: str, at: datetime) -> ModelVersion | None:
    """Which version served `arm` at `at`, from the pointer history."""
    event = ServingPointerEvent.objects.filter(arm=arm, set_at__lte=at).order_by("-set_at", "-pk").first()
    return event.model_version if event else None


def serving_history(*, arm: str | None = None, version: ModelVersion | None = None) -> QuerySet[ServingPointerEvent]:
    """Pointer moves, newest first: for one arm, or every move to or from one version."""
    events = ServingPointerEvent.objects.select_related("model_version", "previous_version", "set_by")
    if arm is not None:
        events = events.filter(arm=arm)
    if version is not None:
        events = events.filter(Q(model_version=version) | Q(previous_version=version))
    return events.order_by("-set_at", "-pk")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("training_run", "training_run__snapshot").order_by("-created_at")


def model_version_get(pk: int) -> ModelVersion | None:
    return model_version_list().filter(pk=pk).first()


def model_version_latest() -> ModelVersion | None:
    return model_version_list().first()


def model_version_for_run(run: TrainingRun) -> ModelVersion | None:
    """The version a finished run yielded: its own, or the earlier identical one (same ONNX bytes)."""
    return ModelVersion.objects.filter(sha256=run.model_sha256).first() if run.model_sha256 else None


def serving_pointer_list() -> QuerySet[ServingPointer]:
    return ServingPointer.objects.select_related("model_version").order_by("arm")


def change_control_plan_current(model_line: str = TITRATION_LINE) -> ChangeControlPlan | None:
    """The newest plan of the model line: the one the change-control gate judges a retrain against."""
    return ChangeControlPlan.objects.filter(model_line=model_line).order_by("-version").first()


class SnapshotRow(TypedDict):
    """One row of a dataset snapshot as stored (inference.services.datasets writes it)."""

    label_id: int
    as_of: str
    features: dict[str, float]
    label: str
    provenance: str
    sensitive: dict[str, str]


def snapshot_load(snapshot: DatasetSnapshot) -> list[SnapshotRow]:
    """The snapshot's rows, read from its content-addressed artifact (the hash is re-verified on read)."""
    rows: list[SnapshotRow] = json.loads(artifact_get(snapshot.sha256, suffix=".json"))["rows"]
    return rows
