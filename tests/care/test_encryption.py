"""Direct identifiers and free text are encrypted at rest, with the key id in every value and the column bound in
the associated data; a keyed blind index serves MRN lookup and search (issue 8 §3, DESIGN §6)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import connection

from clinaiops.care.models import BreakGlassGrant, CareTeam, Patient, Symptom
from clinaiops.care.selectors import patient_get_by_mrn, patient_search_visible
from clinaiops.care.services import PatientIdentifiers, break_glass_open, patient_enroll
from clinaiops.core.crypto.envelope import EncryptedValueUnreadable, value_decrypt, value_encrypt
from clinaiops.core.crypto.keys import keyring_parse
from clinaiops.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, ReviewDecision
from clinaiops.loops.services.ingest import symptom_report
from clinaiops.loops.services.review import decision_content, review_decide
from governance.services import signature_verify
from tests.factories import PASSWORD, UserFactory

ENVELOPE = re.compile(r"^v1:[A-Za-z0-9-]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$")


def _key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def _raw(table: str, column: str, row_id: int) -> Any:
    """The value as stored, past the ORM (which would decrypt it)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(table)} WHERE id = %s", [row_id])  # noqa: S608
        return cursor.fetchone()[0]


def _raw_set(table: str, column: str, row_id: int, value: str) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s", [value, row_id])  # noqa: S608


def _enrol(care_team: CareTeam, *, code: str, given: str, family: str, born: date, mrn: str) -> Patient:
    return patient_enroll(
        actor=None, user=UserFactory(username=f"pat_{code.lower()}", role=Role.PATIENT), code=code,
        care_team=care_team, identifiers=PatientIdentifiers(given, family, born, mrn), sex="female",
        race_ethnicity="white", skin_tone=2,
    )  # fmt: skip


def test_identifiers_are_stored_as_envelopes_and_read_back_as_entered(care_team: CareTeam) -> None:
    patient = _enrol(
        care_team, code="P-0300", given="Siobhan", family="Gallagher", born=date(1958, 11, 2), mrn="4401-2237"
    )

    for column in ("given_name", "family_name", "date_of_birth", "mrn"):
        stored = _raw("care_patient", column, patient.pk)
        assert ENVELOPE.match(stored), column
    stored_row = " ".join(str(_raw("care_patient", c, patient.pk)) for c in ("given_name", "family_name", "mrn"))
    assert "Siobhan" not in stored_row and "Gallagher" not in stored_row and "44012237" not in stored_row

    fresh = Patient.objects.get(pk=patient.pk)
    assert (fresh.given_name, fresh.family_name, fresh.date_of_birth, fresh.mrn) == (
        "Siobhan", "Gallagher", date(1958, 11, 2), "44012237",
    )  # fmt: skip
    assert fresh.birth_year == 1958  # kept in the clear for the age feature
    assert fresh.banner_name == "GALLAGHER, Siobhan"
    assert fresh.age_on(date(2026, 11, 1)) == 67
    assert fresh.age_on(date(2026, 11, 2)) == 68


def test_free_text_is_encrypted_and_the_signature_stays_bound_to_the_plain_reason(
    pending_recommendation: Recommendation, patient: Patient, clinician: User, unassigned_clinician: User
) -> None:
    reason = "Lightheaded on standing since Tuesday; keep the current step and recheck in a week"
    decision = review_decide(
        actor=clinician, recommendation=pending_recommendation, outcome="rejected", reason=reason, password=PASSWORD
    )
    grant = break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering the ward round")
    symptom_report(actor=patient.user, patient=patient, kind="dizziness", note="Felt faint in the shower")
    symptom = Symptom.objects.get(patient=patient)

    assert ENVELOPE.match(_raw("loops_reviewdecision", "reason", decision.pk))
    assert ENVELOPE.match(_raw("care_breakglassgrant", "reason", grant.pk))
    assert ENVELOPE.match(_raw("care_symptom", "note", symptom.pk))

    stored = ReviewDecision.objects.select_related("signature", "recommendation__model_version").get(pk=decision.pk)
    assert stored.reason == reason
    assert BreakGlassGrant.objects.get(pk=grant.pk).reason == "Covering the ward round"
    assert Symptom.objects.get(pk=symptom.pk).note == "Felt faint in the shower"
    # The e-signature was bound to the canonical content with the plain reason; rebuilt from the decrypted value
    # it still verifies, and it would not with any other reason.
    record_id = f"recommendation:{stored.recommendation_id}"
    verify = {"signature": stored.signature, "record_type": "review_decision", "record_id": record_id}
    assert signature_verify(**verify, content=decision_content(stored))
    stored.reason = reason + "."
    assert not signature_verify(**verify, content=decision_content(stored))


def test_a_ciphertext_moved_to_another_column_or_altered_does_not_decrypt(patient: Patient) -> None:
    family = _raw("care_patient", "family_name", patient.pk)
    symptom = Symptom.objects.create(patient=patient, kind="headache", reported_at=patient.enrolled_at, note="x")

    _raw_set("care_patient", "given_name", patient.pk, family)  # same row, another column
    with pytest.raises(EncryptedValueUnreadable, match=r"care_patient\.given_name") as moved:
        Patient.objects.get(pk=patient.pk)
    assert patient.family_name not in moved.value.message

    _raw_set("care_patient", "given_name", patient.pk, value_encrypt("Ok", table="care_patient", column="given_name"))
    _raw_set("care_symptom", "note", symptom.pk, family)  # another table
    with pytest.raises(EncryptedValueUnreadable, match=r"care_symptom\.note"):
        Symptom.objects.get(pk=symptom.pk)

    version, key_id, nonce, sealed = family.split(":")
    flipped = sealed[:5] + ("A" if sealed[5] != "A" else "B") + sealed[6:]
    _raw_set("care_patient", "family_name", patient.pk, ":".join([version, key_id, nonce, flipped]))
    with pytest.raises(EncryptedValueUnreadable, match="failed authentication"):
        Patient.objects.get(pk=patient.pk)


def test_decryption_picks_the_key_named_in_the_value(patient: Patient, settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [f"old:{_key(1)}"]
    patient.family_name = "Okonkwo"
    patient.save()
    assert _raw("care_patient", "family_name", patient.pk).startswith("v1:old:")

    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}", f"old:{_key(1)}"]
    patient.given_name = "Chinedu"
    patient.save(update_fields=["given_name"])
    assert _raw("care_patient", "given_name", patient.pk).startswith("v1:new:")
    fresh = Patient.objects.get(pk=patient.pk)
    assert (fresh.given_name, fresh.family_name) == ("Chinedu", "Okonkwo")

    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(2)}"]  # the old key removed before anything re-encrypted
    with pytest.raises(EncryptedValueUnreadable, match="under key old, which FIELD_ENCRYPTION_KEYS does not list"):
        Patient.objects.get(pk=patient.pk)
    settings.FIELD_ENCRYPTION_KEYS = [f"new:{_key(3)}", f"old:{_key(1)}"]  # right id, wrong key
    with pytest.raises(EncryptedValueUnreadable, match="failed authentication"):
        Patient.objects.get(pk=patient.pk)


def test_the_stored_length_reveals_a_name_only_to_the_nearest_sixteen_bytes() -> None:
    ring = keyring_parse([f"k:{_key(4)}"], variable="FIELD_ENCRYPTION_KEYS")
    names = ("Li", "Iwu", "Szabo", "Mahlangu")
    lengths = {len(value_encrypt(name, table="t", column="c", keyring=ring)) for name in names}
    assert len(lengths) == 1
    longer = value_encrypt("Papadopoulos-Santangelo", table="t", column="c", keyring=ring)
    assert len(longer) > lengths.pop()
    assert value_decrypt(longer, table="t", column="c", keyring=ring) == "Papadopoulos-Santangelo"


def test_encrypted_fields_refuse_queries_instead_of_silently_matching_nothing(patient: Patient) -> None:
    with pytest.raises(FieldError, match="encrypted") as refused:
        list(Patient.objects.filter(family_name=patient.family_name))
    assert patient.family_name not in str(refused.value)
    with pytest.raises(FieldError, match="encrypted"):
        list(Patient.objects.filter(mrn__icontains="0"))
    with pytest.raises(FieldError, match="encrypted"):
        list(ReviewDecision.objects.filter(reason__startswith="Dizzy"))
    assert list(Patient.objects.filter(date_of_birth__isnull=False)) == [patient]


def test_mrn_lookup_uses_the_blind_index_within_the_care_team_and_never_echoes_the_mrn(
    care_team: CareTeam, clinician: User, unassigned_clinician: User
) -> None:
    patient = _enrol(care_team, code="P-0301", given="Kwame", family="Mensah", born=date(1970, 1, 9), mrn="7002 3341")

    assert patient_get_by_mrn(user=clinician, mrn="70023341") == patient
    assert patient_get_by_mrn(user=clinician, mrn=" 7002-3341 ") == patient
    index = Patient.objects.values_list("mrn_index", flat=True).get(pk=patient.pk)
    assert index is not None and "70023341" not in index

    errors: list[ApplicationError] = []
    for user, mrn in ((unassigned_clinician, "70023341"), (clinician, "70023342"), (clinician, "7002!3341")):
        with pytest.raises((NotFound, ValidationFailed)) as refused:
            patient_get_by_mrn(user=user, mrn=mrn)
        errors.append(refused.value)
    assert [type(e) for e in errors] == [NotFound, NotFound, ValidationFailed]
    for error in errors:
        shown = error.message + str(error.fields) + str(error)
        assert "7002" not in shown and "3341" not in shown and "3342" not in shown


def test_search_finds_exact_normalised_names_and_mrns_of_visible_patients_only(
    care_team: CareTeam, other_team: CareTeam, clinician: User, unassigned_clinician: User
) -> None:
    _enrol(care_team, code="P-0310", given="Siobhan", family="O’Brien-Smith", born=date(1961, 4, 4), mrn="55501234")
    _enrol(care_team, code="P-0311", given="Renée", family="Dubois", born=date(1949, 8, 30), mrn="55505678")
    _enrol(other_team, code="P-0312", given="Marc", family="Dubois", born=date(1980, 2, 1), mrn="55509999")

    def found(query: str, user: User = clinician) -> set[str]:
        return {p.code for p in patient_search_visible(user=user, query=query)}

    assert found("55501234") == found("555-01234") == {"P-0310"}
    assert found("siobhan obrien smith") == found("SIOBHAN O'BRIEN SMITH") == {"P-0310"}
    assert found("O'Brien-Smith, Siobhan") == {"P-0310"}
    assert found("obrien-smith") == {"P-0310"}  # family name alone
    assert found("Renee Dubois") == found("renée dubois") == {"P-0311"}
    assert found("dubois") == {"P-0311"}  # the other team's Dubois stays invisible
    assert found("dubois", unassigned_clinician) == {"P-0312"}
    assert found("p-0311") == {"P-0311"}
    assert found("Siob") == found("Dubo") == found("5550") == found("") == set()  # exact matches only
    assert found("55509999") == set()  # another team's MRN is not found either


def test_enrolment_requires_plausible_identifiers_and_refuses_a_second_patient_with_an_mrn(
    care_team: CareTeam,
) -> None:
    _enrol(care_team, code="P-0320", given="Tamar", family="Haddad", born=date(1955, 5, 5), mrn="66601111")
    with pytest.raises(Conflict) as duplicate:
        _enrol(care_team, code="P-0321", given="Noor", family="Aziz", born=date(1966, 6, 6), mrn="666-01111")
    with pytest.raises(ValidationFailed) as bad_mrn:
        _enrol(care_team, code="P-0322", given="Noor", family="Aziz", born=date(1966, 6, 6), mrn="66#01112")
    with pytest.raises(ValidationFailed) as future:
        _enrol(care_team, code="P-0323", given="Noor", family="Aziz", born=date(2999, 1, 1), mrn="66601113")
    with pytest.raises(ValidationFailed) as no_family:
        _enrol(care_team, code="P-0324", given="Noor", family="  ", born=date(1966, 6, 6), mrn="66601114")
    with pytest.raises(ValidationFailed) as other_year:
        patient_enroll(
            actor=None, user=UserFactory(username="pat_year", role=Role.PATIENT), code="P-0325", care_team=care_team,
            identifiers=PatientIdentifiers("Noor", "Aziz", date(1966, 6, 6), "66601115"), birth_year=1967, sex="female",
            race_ethnicity="asian", skin_tone=3,
        )  # fmt: skip

    assert set(duplicate.value.fields) == {"mrn"} and set(bad_mrn.value.fields) == {"mrn"}
    assert set(future.value.fields) == {"date_of_birth"} == set(other_year.value.fields)
    assert set(no_family.value.fields) == {"family_name"}
    for refused in (duplicate, bad_mrn, future, no_family, other_year):
        shown = refused.value.message + str(refused.value.fields)
        assert not any(value in shown for value in ("Noor", "Aziz", "6660", "66#0", "1966", "2999"))
    assert Patient.objects.filter(code__in=["P-0321", "P-0322", "P-0323", "P-0324", "P-0325"]).count() == 0


def test_the_demo_cohort_gets_plausible_identifiers_from_its_seed(db: None) -> None:
    from fixtures.cohort import CohortSimulator, luhn_check_digit
    from fixtures.demo import DemoConfig, DemoRunner

    start = datetime(2026, 1, 1, tzinfo=UTC)
    sim = CohortSimulator(seed=7, n_patients=300, start=start)
    identities = [sim.identity(i) for i in range(300)]
    assert identities == [CohortSimulator(seed=7, n_patients=300, start=start).identity(i) for i in range(300)]
    assert identities[:5] != [CohortSimulator(seed=8, n_patients=5, start=start).identity(i) for i in range(5)]
    assert len({identity.mrn for identity in identities}) == 300
    for profile, identity in zip(sim.profiles, identities, strict=True):
        assert identity.date_of_birth.year == profile.birth_year
        assert len(identity.mrn) == 8 and identity.mrn[-1] == luhn_check_digit(identity.mrn[:-1])
        assert identity.given_name and identity.family_name
    assert len({identity.family_name for identity in identities}) > 50  # not one name for everyone

    runner = DemoRunner(DemoConfig(patients=3, seed=7), progress=lambda _message: None)
    runner.enroll()
    enrolled = [(p.given_name, p.family_name, p.date_of_birth, p.mrn) for p in Patient.objects.order_by("code")]
    expected = [runner.sim.identity(i) for i in range(3)]
    assert enrolled == [(e.given_name, e.family_name, e.date_of_birth, e.mrn) for e in expected]


def test_a_changed_name_is_found_under_the_new_name_only(patient: Patient, clinician: User) -> None:
    old = patient.family_name
    assert [p.pk for p in patient_search_visible(user=clinician, query=old)] == [patient.pk]
    patient.family_name = "Rasmussen"
    patient.save(update_fields=["family_name"])  # the index follows even when only the name is saved

    assert [p.pk for p in patient_search_visible(user=clinician, query="rasmussen")] == [patient.pk]
    assert [p.pk for p in patient_search_visible(user=clinician, query=f"{patient.given_name} Rasmussen")] == [
        patient.pk
    ]
    assert list(patient_search_visible(user=clinician, query=old)) == []
