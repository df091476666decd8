"""Clinician–AI loop: a P0 alert nobody acknowledged in time is escalated (DESIGN §2)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.models import Alert, AlertPriority, AlertStatus


def alerts_escalate(*, now: datetime | None = None) -> int:
    """Mark the P0 alerts nobody acknowledged within ALERT_ESCALATION_MINUTES as escalated, once each, and
    return how many. Break-glass alerts (P1, for the safety officer) are not clinical and do not escalate.

    Not yet done: DESIGN §2 wants the escalation to notify the next person on the care team's escalation
    chain; there is no chain or notification channel yet, so today this is a timestamp and an audit event."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.ALERT_ESCALATION_MINUTES)
    escalated = 0
    due = Alert.objects.filter(
        status=AlertStatus.OPEN, priority=AlertPriority.P0, escalated_at__isnull=True, opened_at__lte=cutoff
    ).values_list("pk", "patient_id")
    for alert_id, patient_id in due:
        with transaction.atomic():
            # Conditional on still open and unescalated: an acknowledgement or a second sweep in between wins.
            if (
                Alert.objects.filter(pk=alert_id, status=AlertStatus.OPEN, escalated_at__isnull=True).update(
                    escalated_at=now
                )
                == 1
            ):
                audit_record(
                    action=AuditAction.ALERT_ESCALATED,
                    object_type="alert",
                    object_id=alert_id,
                    system_reason="unacknowledged_timeout",
                    payload={"patient_id": patient_id},
                )
                escalated += 1
    return escalated
