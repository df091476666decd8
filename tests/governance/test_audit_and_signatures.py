from __future__ import annotations

import itertools

import pytest
from django.db import DatabaseError, connection, transaction

from clinaiops.audit.digests import audit_digest
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.services import AuditOutsideTransaction, audit_record
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.models import Patient
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import User
from governance.models import Signature
from governance.policy import EffectiveBounds
from governance.services import SignatureRefused, autonomy_bounds_set, bounds_content, signature_verify


def _events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="test", object_id=i, system_reason="test")


def test_audit_record_refuses_to_run_outside_a_transaction(transactional_db: None) -> None:
    with pytest.raises(AuditOutsideTransaction):
        audit_record(action=AuditAction.EXPORT_CREATED, object_type="test", system_reason="test")


def test_clean_chain_verifies_and_links(db: None) -> None:
    _events(20)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, 21))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert ledger_verify().ok


def _as_rogue_dba() -> None:
    """A DBA can switch the append-only trigger off; the hash chain must still catch what they do next."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")


def test_an_edited_payload_is_detected_at_its_seq(db: None) -> None:
    _events(10)
    _as_rogue_dba()
    AuditEvent.objects.filter(seq=6).update(payload={"system_reason": "forged"})
    result = ledger_verify()
    assert (result.ok, result.first_broken_seq) == (False, 6)
    assert result.kind == "edited event"


def test_a_deleted_event_is_detected(db: None) -> None:
    _events(10)
    _as_rogue_dba()
    AuditEvent.objects.filter(seq=4).delete()
    result = ledger_verify()
    assert (result.ok, result.first_broken_seq) == (False, 4)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL")
def test_postgres_trigger_refuses_update_and_delete(db: None) -> None:
    _events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(object_id="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()
    assert AuditEvent.objects.count() == 3


def test_audit_verify_command_exits_zero_on_a_clean_ledger(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    _events(5)
    call_command("audit_verify")
    assert "audit ledger OK: 5 events" in capsys.readouterr().out


def test_bounds_are_versioned_signed_and_bound_to_their_content(
    patient: Patient, clinician: User, password: str
) -> None:
    requested = EffectiveBounds(
        max_step_change=1, min_step=1, max_step=4, min_confidence=0.9, min_readings=8, autonomy_enabled=True
    )
    first = autonomy_bounds_set(actor=clinician, patient=patient, requested=requested, password=password)
    second = autonomy_bounds_set(actor=clinician, patient=patient, requested=requested, password=password)
    assert (first.version, second.version) == (1, 2)
    assert second.signature.printed_name == "Dr Assigned"
    assert signature_verify(
        signature=second.signature,
        record_type="autonomy_bounds",
        record_id=f"{patient.pk}/v2",
        content=bounds_content(second),
    )
    # Moved onto another record, or the record edited after signing: verification fails.
    assert not signature_verify(
        signature=first.signature,
        record_type="autonomy_bounds",
        record_id=f"{patient.pk}/v2",
        content=bounds_content(second),
    )
    second.max_step = 5
    assert not signature_verify(
        signature=second.signature,
        record_type="autonomy_bounds",
        record_id=f"{patient.pk}/v2",
        content=bounds_content(second),
    )


def test_bounds_wider_than_policy_are_refused_with_the_limit(patient: Patient, clinician: User, password: str) -> None:
    wide = EffectiveBounds(
        max_step_change=2, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
    )
    with pytest.raises(ValidationFailed) as caught:
        autonomy_bounds_set(actor=clinician, patient=patient, requested=wide, password=password)
    assert caught.value.fields["max_step_change"] == ["The global policy allows at most 1 step(s)."]
    assert Signature.objects.count() == 0


def test_bad_signature_password_is_refused_and_audited(patient: Patient, clinician: User) -> None:
    requested = EffectiveBounds(
        max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
    )
    with pytest.raises(SignatureRefused):
        autonomy_bounds_set(actor=clinician, patient=patient, requested=requested, password="guess")
    denied = AuditEvent.objects.get(action="signature.refused")
    assert (denied.outcome, denied.actor) == ("denied", clinician)
    assert not patient.autonomy_bounds.exists()


def test_unassigned_clinician_cannot_set_bounds(patient: Patient, unassigned_clinician: User, password: str) -> None:
    from clinaiops.core.errors import NotFound

    requested = EffectiveBounds(
        max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
    )
    with pytest.raises(NotFound):  # another care team's patient does not exist for them (DESIGN §6)
        autonomy_bounds_set(actor=unassigned_clinician, patient=patient, requested=requested, password=password)
    assert not patient.autonomy_bounds.exists()
    denied = AuditEvent.objects.get(action="bounds.set")
    assert (denied.outcome, denied.actor) == ("denied", unassigned_clinician)
    assert denied.payload_data["reason"] == "not_on_care_team"


def test_emergency_access_cannot_set_bounds(patient: Patient, emergency_clinician: User, password: str) -> None:
    from clinaiops.care.access import EmergencyAccessReadOnly

    requested = EffectiveBounds(
        max_step_change=1, min_step=0, max_step=6, min_confidence=0.8, min_readings=6, autonomy_enabled=True
    )
    with pytest.raises(EmergencyAccessReadOnly):
        autonomy_bounds_set(actor=emergency_clinician, patient=patient, requested=requested, password=password)
    assert not patient.autonomy_bounds.exists()


def test_bounds_are_audited_with_a_keyed_digest_of_their_content(
    patient: Patient, clinician: User, password: str
) -> None:
    requested = EffectiveBounds(
        max_step_change=1, min_step=1, max_step=4, min_confidence=0.9, min_readings=8, autonomy_enabled=True
    )
    bounds = autonomy_bounds_set(actor=clinician, patient=patient, requested=requested, password=password)
    event = AuditEvent.objects.get(action="bounds.set", outcome="success")
    assert event.payload_data["content_hmac"] == audit_digest(bounds_content(bounds))
    assert "content_sha256" not in event.payload_data
