"""Alerts for ML engineers: opened once per condition, counted while open, acknowledged by a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import InvalidTransition, NotFound, PermissionRefused
from clinaiops.core.models import Role, User
from inference.manifest import model_trust_problems
from inference.models import ModelVersion
from inference.monitoring.models import (
    CircuitBreakerEvent,
    DriftReport,
    MonitoringAlert,
    MonitoringAlertKind,
    MonitoringAlertStatus,
)


def alert_raise(
    *,
    kind: MonitoringAlertKind,
    dedup_key: str,
    system_reason: str,
    details: dict[str, Any],
    now: datetime,
    model_version: ModelVersion | None = None,
    drift_report: DriftReport | None = None,
    breaker_event: CircuitBreakerEvent | None = None,
) -> tuple[MonitoringAlert, bool]:
    """Open an alert, or count one more occurrence of the open alert with the same key. Caller holds the
    transaction. Returns the alert and whether it was opened now."""
    open_alerts = MonitoringAlert.objects.select_for_update().filter(status=MonitoringAlertStatus.OPEN)
    existing = open_alerts.filter(dedup_key=dedup_key).first()
    if existing is None:
        try:
            with transaction.atomic():  # savepoint: a concurrent opener may win the unique constraint
                alert = MonitoringAlert.objects.create(
                    kind=kind,
                    dedup_key=dedup_key,
                    model_version=model_version,
                    drift_report=drift_report,
                    breaker_event=breaker_event,
                    details=details,
                    opened_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            existing = MonitoringAlert.objects.get(dedup_key=dedup_key, status=MonitoringAlertStatus.OPEN)
        else:
            audit_record(
                action=AuditAction.ALERT_OPENED,
                object_type="monitoring_alert",
                object_id=alert.pk,
                system_reason=system_reason,
                payload={"kind": str(kind), **details},
            )
            return alert, True
    MonitoringAlert.objects.filter(pk=existing.pk).update(occurrences=F("occurrences") + 1, last_seen_at=now)
    return existing, False


def _artifact_failures(version: ModelVersion) -> list[str]:
    # What serving checks (issue 8 §2): the signed manifest, then each file against the hash it signed.
    return model_trust_problems(version)


def monitoring_alert_acknowledge(*, actor: User, alert_id: int) -> MonitoringAlert:
    """An ML engineer or safety officer acknowledges an alert. A model-integrity alert holds its version
    until acknowledged, so it can be acknowledged only once every artifact of the version verifies again."""
    if actor.role not in (Role.ML_ENGINEER, Role.SAFETY_OFFICER):
        audit_record_denied(
            action=AuditAction.ALERT_ACKNOWLEDGED,
            object_type="monitoring_alert",
            object_id=alert_id,
            actor=actor,
            reason="wrong_role",
        )
        raise PermissionRefused("Only ML engineers and clinical safety officers can acknowledge monitoring alerts.")
    alert = MonitoringAlert.objects.select_related("model_version").filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No such alert.")
    if alert.kind == MonitoringAlertKind.MODEL_INTEGRITY and alert.model_version is not None:
        failures = _artifact_failures(alert.model_version)
        if failures:
            audit_record_denied(
                action=AuditAction.ALERT_ACKNOWLEDGED,
                object_type="monitoring_alert",
                object_id=alert_id,
                actor=actor,
                reason="artifact_still_invalid",
            )
            raise InvalidTransition(
                "The model's artifacts still fail their hash check. Restore them or roll the model back first: "
                "acknowledging lets this version serve again.",
                code="artifact_still_invalid",
            )
    with transaction.atomic():
        now = timezone.now()
        updated = MonitoringAlert.objects.filter(pk=alert.pk, status=MonitoringAlertStatus.OPEN).update(
            status=MonitoringAlertStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor
        )
        if updated != 1:
            raise InvalidTransition("This alert is no longer open.")
        audit_record(
            action=AuditAction.ALERT_ACKNOWLEDGED,
            object_type="monitoring_alert",
            object_id=alert.pk,
            actor=actor,
            payload={"kind": alert.kind},
        )
    alert.refresh_from_db()
    return alert
