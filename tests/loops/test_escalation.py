"""The escalation sweep (DESIGN §2): an unacknowledged P0 alert escalates once, after the timeout."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, Patient
from clinaiops.care.services import alert_acknowledge, break_glass_open
from clinaiops.core.models import User
from clinaiops.loops.tasks import alerts_escalate_task
from tests.conftest import readings_add


def test_an_unacknowledged_p0_alert_escalates_once_after_the_timeout(
    patient: Patient, settings: object, django_capture_on_commit_callbacks: object
) -> None:
    settings.ALERT_ESCALATION_MINUTES = 15  # type: ignore[attr-defined]
    readings_add(patient, [(186, 112)])
    alert = Alert.objects.get(patient=patient)
    Alert.objects.filter(pk=alert.pk).update(opened_at=timezone.now() - timedelta(minutes=14))
    assert alerts_escalate_task.delay().get() == 0  # not yet due

    Alert.objects.filter(pk=alert.pk).update(opened_at=timezone.now() - timedelta(minutes=16))
    assert alerts_escalate_task.delay().get() == 1
    assert alerts_escalate_task.delay().get() == 0  # once each
    alert.refresh_from_db()
    assert alert.escalated_at is not None
    event = AuditEvent.objects.get(action="alert.escalated")
    assert (event.object_id, event.payload_data["patient_id"]) == (str(alert.pk), patient.pk)


def test_acknowledged_and_security_alerts_do_not_escalate(
    patient: Patient, clinician: User, unassigned_clinician: User
) -> None:
    readings_add(patient, [(186, 112)])
    alert_acknowledge(
        alert=Alert.objects.get(patient=patient), actor=clinician, disposition="contacted_patient", note="Called"
    )
    break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering an alert tonight")
    Alert.objects.update(opened_at=timezone.now() - timedelta(hours=2))
    assert alerts_escalate_task.delay().get() == 0
    assert not Alert.objects.filter(escalated_at__isnull=False).exists()
