"""When checkpoints are made: after the commit of every N-th event, in a transaction of their own, and on a
schedule; never inside the clinical write that lands on the multiple."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.audit.tasks import audit_checkpoint_create_task
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Patient, Reading
from tests.conftest import audit_actions, readings_add


def test_a_failing_checkpoint_does_not_roll_back_the_clinical_write_it_lands_on(
    transactional_db: None, patient: Patient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUDIT_CHECKPOINT_EVERY = 1  # the reading's own event lands on the multiple
    settings.AUDIT_SIGNING_KEY = "not-a-key"  # so the checkpoint cannot be signed
    with caplog.at_level(logging.ERROR, logger="clinaiops.audit.services"):
        readings_add(patient, [(152, 94)])
    # Before: the checkpoint ran inside the ingest transaction, and its failure rolled the reading back.
    assert Reading.objects.filter(patient=patient, systolic=152, diastolic=94).count() == 1
    assert audit_actions(action=AuditAction.READING_INGESTED) == [AuditAction.READING_INGESTED]
    assert not AuditCheckpoint.objects.exists()
    assert "the next scheduled run makes it" in caplog.text

    settings.AUDIT_SIGNING_KEY = ""  # the key is back: the scheduled run makes the checkpoint that was missed
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert audit_checkpoint_create_task("scheduled") == head
    result = ledger_verify()
    assert (result.ok, result.checkpoints_checked, result.witness_entries) == (True, 1, 1)


def test_the_scheduled_run_adds_nothing_to_an_idle_ledger(transactional_db: None) -> None:
    for i in range(3):
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="test", object_id=i, system_reason="test")
    assert audit_checkpoint_create_task("scheduled") == 3
    events = AuditEvent.objects.count()
    # Nothing happened since but the checkpoint's own event: no new checkpoint, no new event.
    assert audit_checkpoint_create_task("scheduled") == 3
    assert audit_checkpoint_create() is not None
    assert (AuditEvent.objects.count(), AuditCheckpoint.objects.count()) == (events, 1)


def test_checkpoints_are_scheduled_every_few_minutes() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == audit_checkpoint_create_task.name
    assert entry["schedule"] == django_settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS <= 300
    assert django_settings.AUDIT_CHECKPOINT_EVERY <= 100


def test_production_refuses_to_start_without_a_witness() -> None:
    from tests.test_settings import GOOD, _load

    assert _load(GOOD).returncode == 0
    result = _load({**GOOD, "AUDIT_WITNESS_SINKS": ","})
    assert result.returncode != 0
    assert "AUDIT_WITNESS_SINKS must name at least one checkpoint witness" in result.stderr
