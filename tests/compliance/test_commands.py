"""manage.py export: every kind to a file, audited as --actor; --help; errors on stderr with a non-zero exit; the
wrong persona refused; the kinds of the second round say they are not built yet."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clinaiops.audit.models import AuditAction, AuditEvent, AuditOutcome
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance import verify_bundle
from compliance.models import Export

ROOT = Path(__file__).resolve().parents[2]


def export(*args: str) -> str:
    out = StringIO()
    call_command("export", *args, stdout=out)
    return out.getvalue()


def test_each_kind_writes_its_file_audited_as_the_actor(
    decided: Recommendation, compliance_officer: User, tmp_path: Path
) -> None:
    decision = tmp_path / "decision.pdf"
    message = export("decision", str(decided.pk), "--format", "pdf", "--out", str(decision), "--actor", "compliance")
    assert decision.read_bytes().startswith(b"%PDF")
    assert "audited as compliance" in message
    listing = tmp_path / "audit.csv"
    export(
        "audit",
        "--from",
        "2020-01-01",
        "--to",
        "2099-12-31",
        "--format",
        "csv",
        "--out",
        str(listing),
        "--actor",
        "compliance",
        "--action",
        "review.decided",
    )
    rows = listing.read_text().splitlines()
    assert rows[0].startswith("seq,recorded_at,actor_id")
    assert len(rows) == 2
    assert ",review.decided," in rows[1]
    accounting = tmp_path / "accounting.json"
    export("accounting", "p-0001", "--format", "json", "--out", str(accounting), "--actor", "compliance")
    data = json.loads(accounting.read_text())
    assert data["patient"] == {"code": "P-0001"}
    assert any(e["kind"] == "disclosure" for e in data["entries"])  # the decision export above
    decisions = tmp_path / "decisions.jsonl"
    export("decisions", "--format", "jsonl", "--out", str(decisions), "--actor", "compliance")
    assert json.loads(decisions.read_text().splitlines()[0])["recommendation_id"] == decided.pk
    bundle = tmp_path / "bundle.zip"
    export("bundle", "--out", str(bundle), "--actor", "compliance")
    assert zipfile.is_zipfile(bundle)
    assert verify_bundle.main([str(bundle)]) == 0
    verification = tmp_path / "verification.json"
    export("verification", "--format", "json", "--out", str(verification), "--actor", "compliance")
    assert json.loads(verification.read_text())["result"]["ok"] is True
    created = AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED, object_type="export")
    assert created.count() == Export.objects.count() == 6
    assert set(created.values_list("actor", flat=True)) == {compliance_officer.pk}


def test_a_clinician_exports_their_patients_decision_record_but_not_the_ledger(
    decided: Recommendation, clinician: User, unassigned_clinician: User, tmp_path: Path
) -> None:
    out = tmp_path / "d.json"
    export("decision", str(decided.pk), "--out", str(out), "--actor", "dr_assigned")
    assert json.loads(out.read_text())["recommendation"]["id"] == decided.pk
    with pytest.raises(CommandError, match="No such recommendation"):
        export("decision", str(decided.pk), "--out", str(out), "--actor", "dr_elsewhere")
    with pytest.raises(CommandError, match="cannot export"):
        export("audit", "--out", str(out), "--actor", "dr_assigned")
    assert AuditEvent.objects.filter(actor=clinician, outcome=AuditOutcome.DENIED, object_id="audit_range").exists()


@pytest.mark.parametrize("persona", ["ml_engineer", "patient"])
def test_other_personas_are_refused(persona: str, request: pytest.FixtureRequest, tmp_path: Path, db: None) -> None:
    value = request.getfixturevalue(persona)
    username = value.user.username if persona == "patient" else value.username
    with pytest.raises(CommandError, match="cannot export"):
        export("bundle", "--out", str(tmp_path / "b.zip"), "--actor", username)
    assert not (tmp_path / "b.zip").exists()


def test_model_reports_refuse_a_clinician_and_say_when_they_are_not_built(
    ml_engineer: User, clinician: User, tmp_path: Path
) -> None:
    from compliance.permissions import export_kind_built

    for name, kind in (("model-card", "model_card"), ("fairness", "fairness"), ("explainability", "explainability")):
        with pytest.raises(CommandError, match="cannot export"):
            export(name, "production", "--actor", "dr_assigned", "--out", str(tmp_path / "x"))
        # Past the role: not built yet, or (built, with no model serving) no version on production.
        expected = "No model version serves on production" if export_kind_built(kind) else "not built yet"
        with pytest.raises(CommandError, match=expected):
            export(name, "production", "--actor", "mleng", "--out", str(tmp_path / "x"))
    assert not Export.objects.exists()


def test_bad_input_is_a_sentence(compliance_officer: User, tmp_path: Path, db: None) -> None:
    with pytest.raises(CommandError, match="no user is called 'ghost'"):
        export("bundle", "--out", str(tmp_path / "b.zip"), "--actor", "ghost")
    with pytest.raises(CommandError, match="from: Use a date like"):
        export("audit", "--from", "last week", "--out", str(tmp_path / "a.csv"), "--actor", "compliance")
    with pytest.raises(CommandError, match="does not exist"):
        export("bundle", "--out", str(tmp_path / "missing" / "b.zip"), "--actor", "compliance")
    with pytest.raises(CommandError, match="No patient has that code"):
        export("accounting", "P-9999", "--out", str(tmp_path / "a.json"), "--actor", "compliance")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow  # a dozen fresh manage.py processes
def test_help_goes_to_stdout_and_errors_to_stderr_with_a_non_zero_exit(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.test",
        "AUDIT_KEY_DIR": str(tmp_path / "keys"),
    }
    helped = _manage("export", "--help", env=env)
    assert helped.returncode == 0
    assert "decision" in helped.stdout
    assert "model-card" in helped.stdout
    kinds = ("decision", "decisions", "audit", "accounting", "bundle", "verification", "model-card", "fairness",
             "explainability")  # fmt: skip
    for kind in kinds:
        sub = _manage("export", kind, "--help", env=env)
        assert (sub.returncode, "--actor" in sub.stdout, "--out" in sub.stdout) == (0, True, True), kind
    assert _manage("migrate", "--noinput", env=env).returncode == 0
    failed = _manage("export", "bundle", "--actor", "ghost", "--out", str(tmp_path / "b.zip"), env=env)
    assert failed.returncode != 0
    assert "no user is called 'ghost'" in failed.stderr
    assert "Traceback" not in failed.stderr
    usage = _manage("export", "audit", "--out", "x", env=env)
    assert usage.returncode != 0
    assert "--actor" in usage.stderr


def test_the_audit_listing_of_a_large_range_streams_to_the_file(
    db: None, compliance_officer: User, tmp_path: Path
) -> None:
    synthetic_ledger_create(12_000, checkpoint_every=4000)
    out = tmp_path / "audit.jsonl"
    export("audit", "--format", "jsonl", "--out", str(out), "--actor", "compliance", "--to", "2026-01-02")
    lines = out.read_text().splitlines()
    assert len(lines) == 12_000
    assert json.loads(lines[-1])["seq"] == 12_000
