"""A model that fails verification (its signed manifest, an artifact's hash against it, or, on production or
canary, its signed approval attestation): alert once, hold
the version, roll a canary back; and the scheduled re-verification that finds it without waiting for traffic."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inference.artifacts import ArtifactMissing, ArtifactTampered
from inference.manifest import PATIENT_ARMS, approval_trusted
from inference.models import Arm, ModelVersion, ServingPointer
from inference.monitoring.models import MonitoringAlert, MonitoringAlertKind, MonitoringAlertStatus
from inference.monitoring.services.alerts import alert_raise
from inference.monitoring.services.canary import canary_roll_back, canary_state_locked
from inference.runtime import model_verify, runtime_cached_versions

logger = logging.getLogger(__name__)


def model_integrity_failure_record(*, version: ModelVersion, arm: str, error: str) -> MonitoringAlert:
    """A version's artifact failed its hash (or is missing): alert ML engineers once, and hold the version.

    While the alert is open, routing treats the version as untrusted in every process (a warm process's
    cached session included), so evaluations it would serve fall back to rules only. A canary whose
    artifact fails is also rolled back, so its patients return to production at once. Caller holds the
    transaction.
    """
    now = timezone.now()
    alert, _ = alert_raise(
        kind=MonitoringAlertKind.MODEL_INTEGRITY,
        dedup_key=f"model_integrity:{version.sha256}",
        system_reason="model_integrity_failure",
        details={"model_sha256": version.sha256, "arm": arm, "error": error},
        model_version=version,
        now=now,
    )
    if arm == Arm.CANARY:
        pointer = ServingPointer.objects.select_for_update().filter(arm=Arm.CANARY, model_version=version).first()
        if pointer is not None:
            state = canary_state_locked(pointer, now)
            canary_roll_back(state=state, reason="model_integrity_failure", now=now)
    return alert


def model_integrity_hold_seen(*, version: ModelVersion) -> None:
    """One more evaluation fell back to rules only because an open integrity alert holds `version`: count it
    on the alert, so engineers see how many proposals the hold has sent to review."""
    MonitoringAlert.objects.filter(
        kind=MonitoringAlertKind.MODEL_INTEGRITY, status=MonitoringAlertStatus.OPEN, model_version=version
    ).update(occurrences=F("occurrences") + 1, last_seen_at=timezone.now())


@dataclass(frozen=True)
class TrustSweep:
    verified: int
    refused: tuple[str, ...]  # short hashes of the versions refused


def model_trust_sweep() -> TrustSweep:
    """Verify in full (inference.runtime.model_verify) every version that serves an arm and every version this
    process has cached. A serving version that fails opens its model_integrity alert, which holds it in every
    process until an engineer restores it and acknowledges; a cached one that fails is dropped from this
    process. Run by Celery beat every MODEL_REVERIFY_SECONDS and by each worker as it starts."""
    pointers = list(ServingPointer.objects.select_related("model_version").order_by("arm"))
    serving = {pointer.model_version.pk: (pointer.model_version, str(pointer.arm)) for pointer in reversed(pointers)}
    cached = ModelVersion.objects.filter(sha256__in=runtime_cached_versions()).exclude(pk__in=serving)
    checks = [*serving.values(), *((version, "") for version in cached)]
    refused = []
    for version, arm in checks:
        try:
            model_verify(version)
            if arm in PATIENT_ARMS:
                approval_trusted(version)
        except (ArtifactTampered, ArtifactMissing) as exc:
            refused.append(version.short_hash)
            logger.error("model %s (%s) refused by re-verification: %s", version.short_hash, arm or "cached", exc)
            if arm:
                with transaction.atomic():
                    model_integrity_failure_record(version=version, arm=arm, error=type(exc).__name__)
    return TrustSweep(verified=len(checks) - len(refused), refused=tuple(refused))
