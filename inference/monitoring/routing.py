"""Routing: which model scores a patient (DESIGN §3 "Deployment arms").

It lives in monitoring because it reads monitoring's canary stages and model-integrity holds; inference's own
modules never need it, so the dependency between inference and inference.monitoring runs one way.

Production serves everyone except the canary's sticky share; the shadow model scores beside whichever arm
served, and its output is only logged.

Canary routing is a function of the patient id, the canary's salt and its stage. sha256("salt:patient id") is
read as a number in [0, 100), and a patient is on the canary when that number is below the stage's
percentage. So raising the stage (5 → 20 → 50 → 100) only ever adds patients, and nobody flips between arms
within one deployment. The salt includes the canary's model hash, so each new canary samples different
patients instead of always exposing the same 5 %.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef

from inference.features import FEATURE_SET_VERSION
from inference.models import Arm, ModelVersion, ServingPointer
from inference.monitoring.models import (
    CANARY_STAGES,
    CanaryState,
    CanaryStatus,
    MonitoringAlert,
    MonitoringAlertKind,
    MonitoringAlertStatus,
)

_BUCKETS = 2**64


@dataclass(frozen=True)
class Routing:
    """The arm and version that serve one patient now, and the shadow version that scores beside it."""

    arm: str  # Arm.PRODUCTION or Arm.CANARY
    version: ModelVersion | None
    # An open model-integrity alert holds this version: the evaluation must fall back to rules only.
    version_held: bool
    # None when there is no shadow, it is held, it is the served version, or it reads another feature set.
    shadow: ModelVersion | None
    canary_percent: int


def canary_salt(version: ModelVersion) -> str:
    return f"{settings.CANARY_SALT}:{version.sha256}"


def canary_bucket(patient_id: int, salt: str) -> float:
    """The patient's sticky position in [0, 100) for one canary deployment."""
    digest = hashlib.sha256(f"{salt}:{patient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") * 100 / _BUCKETS


def canary_percent_for(pointer: ServingPointer) -> int:
    """The share of patients the canary pointer serves: its stage, the first stage until someone advances it,
    and 0 once the breaker has rolled this deployment back."""
    state = (
        CanaryState.objects.filter(model_version_id=pointer.model_version_id, started_at=pointer.since)
        .only("stage_percent", "status")
        .first()
    )
    if state is None:
        return CANARY_STAGES[0]
    return state.stage_percent if state.status == CanaryStatus.ACTIVE else 0


# A model version row carries its metrics and gates (tens of KB of JSON, DESIGN §10) besides what serving reads
# (hashes, manifest, feature names, classes): those two stay in the database, undecoded, on every evaluation.
_VERSION_NOT_SERVED = ("model_version__metrics", "model_version__gates")


def routing_for_patient(patient_id: int) -> Routing:
    # One query: each pointer, its version, and whether an open integrity alert holds that version. Read afresh on
    # every call, so a promotion, a rollback or a hold applies to the next evaluation.
    integrity_hold = MonitoringAlert.objects.filter(
        kind=MonitoringAlertKind.MODEL_INTEGRITY,
        status=MonitoringAlertStatus.OPEN,
        model_version_id=OuterRef("model_version_id"),
    )
    rows = (
        ServingPointer.objects.select_related("model_version")
        .defer(*_VERSION_NOT_SERVED)
        .annotate(version_held=Exists(integrity_hold))
    )
    pointers = {pointer.arm: pointer for pointer in rows}
    held = {pointer.model_version_id for pointer in pointers.values() if pointer.version_held}  # type: ignore[attr-defined]
    arm, version = Arm.PRODUCTION, pointers[Arm.PRODUCTION].model_version if Arm.PRODUCTION in pointers else None
    percent = 0
    canary = pointers.get(Arm.CANARY)
    if canary is not None:
        percent = canary_percent_for(canary)
        if canary_bucket(patient_id, canary_salt(canary.model_version)) < percent:
            arm, version = Arm.CANARY, canary.model_version
    shadow = pointers[Arm.SHADOW].model_version if Arm.SHADOW in pointers else None
    if shadow is not None and (
        shadow.pk in held
        or (version is not None and shadow.pk == version.pk)
        # A shadow trained on another feature set cannot score this window; it waits for its own rollout.
        or shadow.feature_set_version != FEATURE_SET_VERSION
    ):
        shadow = None
    return Routing(
        arm=str(arm),
        version=version,
        version_held=version is not None and version.pk in held,
        shadow=shadow,
        canary_percent=percent,
    )
