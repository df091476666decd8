"""A model whose artifact fails its hash: alert once, hold the version, roll a canary back."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from inference.models import Arm, ModelVersion, ServingPointer
from inference.monitoring.models import MonitoringAlert, MonitoringAlertKind, MonitoringAlertStatus
from inference.monitoring.services.alerts import alert_raise
from inference.monitoring.services.canary import canary_roll_back, canary_state_locked


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
