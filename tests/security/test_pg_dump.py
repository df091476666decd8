"""A dump of the database holds no name, date of birth, MRN or free text, and no identifier reaches the ledger,
the logs, the SQL the application sends or its error messages (issue 8 §3, DESIGN §6).

The cohort is seeded through the real services: enrolment with generated identifiers, readings, e-signed review
decisions with typed reasons, break-glass access with reasons, and symptoms with notes. The grep is proved on a
planted plaintext first, so a dump that came out empty, or a grep that never matches, cannot pass.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import BreakGlassGrant, CareTeam, Patient, Symptom
from clinaiops.care.selectors import patient_get_by_mrn
from clinaiops.care.services import break_glass_open, patient_enroll
from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import Role, User
from clinaiops.loops.models import ReviewDecision
from clinaiops.loops.services.ingest import symptom_report
from clinaiops.loops.services.review import review_decide
from fixtures.cohort import CohortSimulator
from fixtures.demo import cohort_identifiers
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make
from tests.factories import PASSWORD, UserFactory

COHORT = 6
REVIEW_REASONS = (
    "Reports ankle swelling since the amlodipine increase; hold the step until the nurse call on Friday",
    "Daughter says he skips the evening dose when working nights, so adherence explains the high readings",
    "Pregnancy test pending at the GP surgery; no titration until the result is back",
)
BREAK_GLASS_REASONS = (
    "Covering the cardiology registrar rota overnight for a P0 crisis",
    "Emergency department asked for the home readings before admission",
)
SYMPTOM_NOTES = (
    "Room spun when I stood up from the sofa after lunch",
    "Blacked out briefly in the supermarket queue, my husband caught me",
    "Pounding headache behind my left eye since the new tablets",
)


@dataclass(frozen=True)
class Seeded:
    names: tuple[str, ...]
    birth_dates: tuple[date, ...]
    mrns: tuple[str, ...]
    free_text: tuple[str, ...]


def _seed(care_team: CareTeam, clinician: User, unassigned_clinician: User) -> Seeded:
    """Everything through the services a hospital's staff and patients use."""
    sim = CohortSimulator(seed=23, n_patients=COHORT, start=datetime.now(UTC) - timedelta(days=30))
    patients = [
        patient_enroll(
            actor=None,
            user=UserFactory(username=f"pat_dump{i}", role=Role.PATIENT),
            code=f"P-D{i:03d}",
            care_team=care_team,
            identifiers=cohort_identifiers(sim, i),
            sex=sim.profiles[i].sex,
            birth_year=sim.profiles[i].birth_year,
            race_ethnicity=sim.profiles[i].race_ethnicity,
            skin_tone=sim.profiles[i].skin_tone,
        )
        for i in range(COHORT)
    ]
    for patient, reason in zip(patients, REVIEW_REASONS, strict=False):
        review_decide(
            actor=clinician, recommendation=pending_recommendation_make(patient), outcome="rejected", reason=reason,
            password=PASSWORD,
        )  # fmt: skip
    for patient, reason in zip(patients[3:], BREAK_GLASS_REASONS, strict=False):
        break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason=reason)
    for patient, note in zip(patients, SYMPTOM_NOTES, strict=False):
        symptom_report(actor=patient.user, patient=patient, kind="dizziness", note=note)

    # What to look for, read back through the ORM: every patient, the fixtures' own included.
    everyone = list(Patient.objects.all())
    free_text = [
        *ReviewDecision.objects.values_list("reason", flat=True),
        *BreakGlassGrant.objects.values_list("reason", flat=True),
        *(note for note in Symptom.objects.values_list("note", flat=True) if note),
    ]
    assert len(free_text) == len(REVIEW_REASONS) + len(BREAK_GLASS_REASONS) + len(SYMPTOM_NOTES)
    return Seeded(
        names=tuple({name for p in everyone for name in (p.given_name, p.family_name)}),
        birth_dates=tuple(p.date_of_birth for p in everyone if p.date_of_birth),
        mrns=tuple(p.mrn for p in everyone),
        free_text=tuple(free_text),
    )


def _patterns(seeded: Seeded) -> dict[str, re.Pattern[str]]:
    """One pattern per secret. Names, dates and MRNs must stand alone (not inside a longer run of letters, digits
    or base64), so that a hex hash or an envelope's base64 that happens to contain "1962" or "Uma" is no match,
    while the same value as a column, a JSON string or a word in a sentence is."""
    alone = r"(?<![A-Za-z0-9+/]){}(?![A-Za-z0-9+/])"
    patterns = {f"name {n}": re.compile(alone.format(re.escape(n)), re.I) for n in seeded.names}
    for born in seeded.birth_dates:
        for shown in {born.isoformat(), born.strftime("%Y%m%d"), born.strftime("%d/%m/%Y"), born.strftime("%m/%d/%Y")}:
            patterns[f"date of birth {shown}"] = re.compile(alone.format(re.escape(shown)))
    patterns.update({f"MRN {m}": re.compile(alone.format(re.escape(m)), re.I) for m in seeded.mrns})
    for text in seeded.free_text:
        patterns[f"free text {text[:24]}"] = re.compile(re.escape(text[:24]), re.I)
    return patterns


def _found(text: str, patterns: dict[str, re.Pattern[str]]) -> set[str]:
    return {label for label, pattern in patterns.items() if pattern.search(text)}


def _database_dump() -> str:
    """pg_dump of the test database on PostgreSQL (schema and data, as a backup would hold it); the SQL dump of
    the connection on SQLite."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        command = ["pg_dump", "--no-owner", "--dbname", db["NAME"], "--host", db["HOST"] or "127.0.0.1"]
        command += ["--port", str(db["PORT"] or 5432), "--username", db["USER"] or "postgres"]
        result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
        return result.stdout
    return "\n".join(connection.connection.iterdump())


def _assert_dump_is_real(dump: str) -> None:
    for table in ("care_patient", "care_symptom", "care_breakglassgrant", "loops_reviewdecision", "audit_auditevent"):
        assert table in dump
    assert dump.count("v1:") >= 4 * COHORT  # the envelopes are there, so the rows are


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_a_seeded_database_holds_no_identifier_or_free_text(
    deployed_model: ModelVersion, care_team: CareTeam, clinician: User, unassigned_clinician: User
) -> None:
    seeded = _seed(care_team, clinician, unassigned_clinician)
    patterns = _patterns(seeded)
    assert len(patterns) > 3 * COHORT

    dump = _database_dump()

    _assert_dump_is_real(dump)
    assert _found(dump, patterns) == set()

    # The grep finds a plaintext that is there: planted past the ORM into a column, it shows up in the next dump.
    family, mrn, born, text = seeded.names[0], seeded.mrns[0], seeded.birth_dates[0], seeded.free_text[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE care_symptom SET note = %s WHERE id = %s",
            [f"{family} {mrn} {born.isoformat()} {text}", Symptom.objects.values_list("pk", flat=True).first()],
        )
    planted = _found(_database_dump(), patterns)
    assert {f"name {family}", f"MRN {mrn}", f"date of birth {born.isoformat()}", f"free text {text[:24]}"} <= planted


def _error_messages(users: Iterable[User], mrns: Iterable[str]) -> str:
    """Look MRNs up as the wrong clinician, with a digit wrong and malformed: each error must not repeat what was
    typed (it reaches the screen, the API answer and, through exception logging, the logs)."""
    shown = []
    for user in users:
        for mrn in mrns:
            for attempt in (mrn, mrn[:-1] + ("0" if mrn[-1] != "0" else "1"), mrn + "!"):
                try:
                    patient_get_by_mrn(user=user, mrn=attempt)
                except ApplicationError as exc:
                    message = f"{exc} {exc.message} {exc.fields}"
                    assert attempt.rstrip("!") not in message
                    shown.append(message)
    assert shown
    return "\n".join(shown)


def test_no_identifier_reaches_the_ledger_the_logs_the_sql_or_error_messages(
    deployed_model: ModelVersion,
    care_team: CareTeam,
    clinician: User,
    unassigned_clinician: User,
    other_patient: Patient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")  # every statement, with its parameters
    with CaptureQueriesContext(connection) as queries:
        seeded = _seed(care_team, clinician, unassigned_clinician)
        errors = _error_messages([clinician, unassigned_clinician], seeded.mrns)
    patterns = _patterns(seeded)

    sql = "\n".join(query["sql"] for query in queries.captured_queries)
    assert 'INSERT INTO "care_patient"' in sql and "v1:" in sql  # the statements are there, encrypted
    assert _found(sql, patterns) == set()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "INSERT INTO" in logged  # the SQL debug log was on
    assert _found(logged, patterns) == set()
    ledger = "\n".join(AuditEvent.objects.values_list("payload", flat=True))
    assert "reason_hmac" in ledger and "note_hmac" in ledger  # the events of the typed text are there
    assert _found(ledger, patterns) == set()
    assert "No patient you can see has that MRN" in errors
    assert _found(errors, patterns) == set()
