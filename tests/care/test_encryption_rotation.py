"""`manage.py rotate_keys` moves every encrypted value and blind-index value onto the current keys: old keys stay
readable until it finishes, it is resumable and idempotent, and the ledger records counts only (issue 8 §3)."""

from __future__ import annotations

import base64
from datetime import date
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from clinaiops.audit.models import AuditEvent
from clinaiops.audit.verify import ledger_verify
from clinaiops.care.key_rotation import keys_rotate
from clinaiops.care.models import BreakGlassGrant, CareTeam, Patient, Symptom
from clinaiops.care.selectors import patient_get_by_mrn, patient_search_visible
from clinaiops.care.services import PatientIdentifiers, break_glass_open, patient_enroll
from clinaiops.core.crypto.rotation import plaintext_column_decrypt, plaintext_column_encrypt
from clinaiops.core.models import Role, User
from clinaiops.loops.services.ingest import symptom_report
from tests.factories import UserFactory

FAMILIES = ("Adeyemi", "Bergstrom", "Castellanos", "Dimitriou", "Eriksen")


def _key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def _raw_column(table: str, column: str) -> list[str]:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(table)} ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _key_ids(table: str, column: str) -> set[str]:
    return {value.split(":")[1] for value in _raw_column(table, column) if value}


@pytest.fixture
def under_old_keys(settings: Any, care_team: CareTeam, unassigned_clinician: User) -> list[Patient]:
    """Five patients with identifiers, symptom notes and a break-glass reason, all written under the old keys."""
    settings.FIELD_ENCRYPTION_KEYS = [f"old:{_key(1)}"]
    settings.BLIND_INDEX_KEYS = [f"iold:{_key(9)}"]
    patients = []
    for i, family in enumerate(FAMILIES):
        patient = patient_enroll(
            actor=None, user=UserFactory(username=f"pat_rot{i}", role=Role.PATIENT), code=f"P-R{i:03d}",
            care_team=care_team, identifiers=PatientIdentifiers("Amara", family, date(1960 + i, 2, 3), f"8800{i:04d}"),
            sex="female", race_ethnicity="black", skin_tone=5,
        )  # fmt: skip
        symptom_report(actor=patient.user, patient=patient, kind="headache", note=f"Throbbing headache number {i}")
        patients.append(patient)
    break_glass_open(actor=unassigned_clinician, patient_code="P-R000", reason="Covering for a colleague on leave")
    return patients


def _switch_to_new_keys(settings: Any) -> None:
    """Step 1 of the procedure: the new keys first, the old ones still listed."""
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}", f"old:{_key(1)}"]
    settings.BLIND_INDEX_KEYS = [f"inew:{_key(8)}", f"iold:{_key(9)}"]


def _identifiers() -> list[tuple[str, str, date | None, str]]:
    return [(p.given_name, p.family_name, p.date_of_birth, p.mrn) for p in Patient.objects.order_by("code")]


def test_rotation_reencrypts_everything_under_the_new_keys_and_audits_counts_only(
    under_old_keys: list[Patient], settings: Any, clinician: User
) -> None:
    before = _identifiers()
    notes = sorted(Symptom.objects.values_list("note", flat=True))
    _switch_to_new_keys(settings)
    # Meanwhile everything stays readable and findable under the old keys.
    assert _identifiers() == before
    assert patient_get_by_mrn(user=clinician, mrn="88000003").family_name == "Dimitriou"

    out = StringIO()
    call_command("rotate_keys", batch_size=2, stdout=out)

    output = out.getvalue()
    assert "care_patient.family_name: 2/5 re-encrypted" in output and "care_patient.family_name: 5/5" in output
    assert "care_patient: 5/5 index rows rebuilt" in output
    for column in ("given_name", "family_name", "date_of_birth", "mrn"):
        assert _key_ids("care_patient", column) == {"new"}, column
    assert _key_ids("care_symptom", "note") == {"new"}
    assert _key_ids("care_breakglassgrant", "reason") == {"new"}
    indexes = Patient.objects.filter(code__startswith="P-R").values_list(
        "mrn_index", "full_name_index", "family_name_index"
    )
    assert {value.split(":")[0] for row in indexes for value in row} == {"inew"}

    # The old keys can go now: nothing needs them, and lookups and search work on the rebuilt index.
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}"]
    settings.BLIND_INDEX_KEYS = [f"inew:{_key(8)}"]
    assert _identifiers() == before
    assert sorted(Symptom.objects.values_list("note", flat=True)) == notes
    assert BreakGlassGrant.objects.get().reason == "Covering for a colleague on leave"
    assert patient_get_by_mrn(user=clinician, mrn="8800-0003").family_name == "Dimitriou"
    assert [p.code for p in patient_search_visible(user=clinician, query="amara castellanos")] == ["P-R002"]
    call_command("rotate_keys", check=True, stdout=StringIO())

    started, finished = AuditEvent.objects.filter(action__startswith="keys.").order_by("seq")
    assert (started.action, finished.action) == ("keys.rotation_started", "keys.rotated")
    assert started.payload_data["stale_values"]["care_patient.mrn"] == 5
    assert finished.payload_data["reencrypted"] == {
        "care_breakglassgrant.reason": 1, "care_patient.date_of_birth": 5, "care_patient.family_name": 5,
        "care_patient.given_name": 5, "care_patient.mrn": 5, "care_symptom.note": 5,
    }  # fmt: skip
    assert finished.payload_data["reindexed"] == {"care_patient": 5}
    assert (finished.payload_data["field_key_id"], finished.payload_data["index_key_id"]) == ("new", "inew")
    ledger = started.payload + finished.payload
    assert not any(family in ledger for family in FAMILIES) and "8800" not in ledger
    assert ledger_verify().ok


def test_a_second_run_changes_nothing_and_writes_nothing(under_old_keys: list[Patient], settings: Any) -> None:
    _switch_to_new_keys(settings)
    call_command("rotate_keys", stdout=StringIO())
    stored = _raw_column("care_patient", "family_name")
    events = AuditEvent.objects.count()

    out = StringIO()
    call_command("rotate_keys", stdout=out)

    assert "Nothing to rotate" in out.getvalue()
    assert _raw_column("care_patient", "family_name") == stored  # not even re-encrypted under the same key
    assert AuditEvent.objects.count() == events


def test_an_interrupted_rotation_leaves_everything_readable_and_the_next_run_finishes_it(
    under_old_keys: list[Patient], settings: Any
) -> None:
    before = _identifiers()
    _switch_to_new_keys(settings)
    batches = []

    def crash_after_two_batches(message: str) -> None:
        batches.append(message)
        if len(batches) == 2:
            raise KeyboardInterrupt  # the operator's ^C, or the host going down

    with pytest.raises(KeyboardInterrupt):
        keys_rotate(batch_size=2, progress=crash_after_two_batches)

    # Columns go in order: the one break-glass reason was done, then the first 2 of 5 dates of birth.
    assert _key_ids("care_breakglassgrant", "reason") == {"new"}
    assert _key_ids("care_patient", "date_of_birth") == {"new", "old"}
    assert _key_ids("care_patient", "family_name") == {"old"}
    assert _identifiers() == before  # a mix of keys, all readable
    with pytest.raises(CommandError, match="not under the current keys"):
        call_command("rotate_keys", check=True, stdout=StringIO())

    out = StringIO()
    call_command("rotate_keys", stdout=out)

    assert "care_patient.date_of_birth: 3/3 re-encrypted" in out.getvalue()  # carried on where it stopped
    assert "care_breakglassgrant" not in out.getvalue()
    assert _key_ids("care_patient", "family_name") == _key_ids("care_patient", "date_of_birth") == {"new"}
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}"]
    assert _identifiers() == before
    assert AuditEvent.objects.filter(action="keys.rotation_started").count() == 2
    assert AuditEvent.objects.filter(action="keys.rotated").count() == 1


def test_a_value_under_a_key_no_longer_listed_stops_the_rotation_naming_the_column_only(
    under_old_keys: list[Patient], settings: Any
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}"]  # the old key dropped before rotating

    with pytest.raises(CommandError, match=r"care_breakglassgrant\.reason .* under key old") as refused:
        call_command("rotate_keys", stdout=StringIO())

    assert "colleague" not in str(refused.value)
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}", f"old:{_key(1)}"]
    call_command("rotate_keys", stdout=StringIO())  # with the key back, it goes through
    assert _key_ids("care_breakglassgrant", "reason") == {"new"}


def test_the_migration_encrypts_reasons_that_were_stored_in_plain_text(patient: Patient, clinician: User) -> None:
    grant = break_glass_open(actor=clinician, patient_code=patient.code, reason="placeholder reason text")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE care_breakglassgrant SET reason = %s WHERE id = %s", ["Typed before 0005", grant.pk])
    editor = SimpleNamespace(connection=connection)

    plaintext_column_encrypt(editor, table="care_breakglassgrant", column="reason")
    once = _raw_column("care_breakglassgrant", "reason")
    plaintext_column_encrypt(editor, table="care_breakglassgrant", column="reason")

    assert once == _raw_column("care_breakglassgrant", "reason") and once[0].startswith("v1:")
    assert BreakGlassGrant.objects.get(pk=grant.pk).reason == "Typed before 0005"
    plaintext_column_decrypt(editor, table="care_breakglassgrant", column="reason")
    assert _raw_column("care_breakglassgrant", "reason") == ["Typed before 0005"]
