"""The reports: JSON is the source of truth, the HTML and PDF say the same, PDFs summarise (pages checked with
pdftoppm and their text with pdftotext), and an audit range carries its verification status."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clinaiops.audit.models import AuditEvent
from clinaiops.audit.services import audit_checkpoint_create
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance.models import Export, ExportFile
from compliance.services import export_file_path
from tests.compliance.conftest import rogue_dba_sql

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (make system-deps)")


def _json(export: Export) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(export_file_path(export.files.get(format="json")).read_text())
    return data


def _file(export: Export, fmt: str) -> Path:
    return export_file_path(ExportFile.objects.get(export=export, format=fmt))


def pdf_pages(pdf: Path, out: Path) -> tuple[list[Path], str]:
    """The PDF rendered to PNG pages by pdftoppm (what a reader sees), and its text by pdftotext."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(out / "page")], check=True, timeout=120)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return sorted(out.glob("page-*.png")), text


def test_a_decision_record_holds_every_step_and_the_events_that_prove_it(
    decided: Recommendation, compliance_officer: User, run_export: Callable[..., Export]
) -> None:
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json"],
    )
    data = _json(export)
    assert (data["schema"], data["schema_version"]) == ("clinaiops.decision_record", "1.0")
    assert data["features"]["values"][0] == {
        "name": "sbp_mean_7d",
        "label": "average systolic BP, cuff (7 days)",
        "value": decided.features["sbp_mean_7d"],
    }
    top = data["top_factors"][0]
    assert top["direction"] == ("toward" if top["contribution"] > 0 else "against")
    assert f"“{decided.action}”" in top["direction_words"]
    assert {p["class"] for p in data["probabilities"]} == {"decrease", "maintain", "increase"}
    assert data["model"]["sha256"] == decided.model_version.sha256
    assert data["model"]["arm"] == "production"
    assert data["policy"]["version"] == decided.policy.version
    assert data["tier"]["tier"] == "major"
    assert data["tier"]["reasons"] == [
        {"code": "too_few_readings", "text": "Too few recent readings to act without review."}
    ]
    decision = data["decision"]
    assert decision["outcome_label"] == "Accepted"
    assert decision["signature"]["manifestation"].startswith("Dr Assigned — approved — ")
    assert decision["signature"]["bound_to_this_decision"] is True
    assert data["patient_response"]["words"] == "acknowledged it (and acts on it)"
    steps = {e["action"]: e for e in data["audit_events"]}
    assert {
        "recommendation.created",
        "recommendation.queued",
        "signature.created",
        "review.decided",
        "dataset.label_recorded",
        "recommendation.responded",
        "regimen.changed",
    } <= set(steps)
    assert all(e["hash_ok"] for e in data["audit_events"])
    assert steps["recommendation.created"]["confirms"] == [
        "model version",
        "arm",
        "policy version",
        "proposed action",
        "tier",
        "features",
    ]
    assert steps["review.decided"]["confirms"] == ["decision", "final step", "signature", "reason"]
    assert data["proof"]["covered_by_checkpoint_seq"] is None


def test_a_decision_record_notices_an_edited_event(
    decided: Recommendation, compliance_officer: User, run_export: Callable[..., Export]
) -> None:
    event = AuditEvent.objects.get(object_type="recommendation", action="recommendation.created")
    edited = event.payload.replace('"tier":"major"', '"tier":"minor"')
    rogue_dba_sql("UPDATE audit_auditevent SET payload = %s WHERE seq = %s", [edited, event.seq])
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json", "html"],
    )
    created = next(e for e in _json(export)["audit_events"] if e["action"] == "recommendation.created")
    assert created["hash_ok"] is False
    assert "MISMATCH: tier" in created["confirms"]
    assert "MISMATCH" in _file(export, "html").read_text()


@needs_poppler
def test_the_decision_record_pdf_reads_as_the_record(
    decided: Recommendation, compliance_officer: User, run_export: Callable[..., Export], tmp_path: Path
) -> None:
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["pdf"],
    )
    pages, text = pdf_pages(_file(export, "pdf"), tmp_path / "png")
    assert 1 <= len(pages) <= 4
    assert all(page.stat().st_size > 5000 for page in pages)  # a rendered page, not a blank one
    for words in (
        "Decision record",
        f"Recommendation #{decided.pk} for patient P-0001",
        "Why: probabilities and top",
        "Tier: major",
        "Dr Assigned — approved",
        "acknowledged it (and acts on it)",
        "The audit events that prove each step",
        f"page 1 of {len(pages)}",
    ):
        assert words in " ".join(text.split()), words


def test_an_audit_range_is_verified_between_signed_checkpoints(
    db: None, compliance_officer: User, run_export: Callable[..., Export]
) -> None:
    synthetic_ledger_create(1000, checkpoint_every=250)
    # Synthetic events are 37 ms apart from 2026-01-01: seq 250 is at 9.250 s, seq 500 at 18.500 s (excluded).
    export = run_export(
        actor=compliance_officer,
        kind="audit_range",
        parameters={"from": "2026-01-01T00:00:09.250Z", "to": "2026-01-01T00:00:18.500Z"},
        formats=["json"],
    )
    data = _json(export)
    verification = data["verification"]
    assert (data["range"]["first_seq"], data["range"]["last_seq"]) == (250, 499)
    assert verification["status"] == "verified"
    # No checkpoint before seq 250, so the chain is followed from genesis to the checkpoint at 500 that covers 499.
    assert (verification["anchor"]["seq"], verification["covered_to_seq"]) == (0, 500)
    assert [c["seq"] for c in verification["checkpoints"]] == [250, 500]
    assert verification["chain"]["events_checked"] == 500
    assert all(c["signature_valid"] for c in verification["checkpoints"])
    assert data["summary"]["events"] == 250
    assert "Verified:" in verification["words"]


def test_an_audit_range_past_the_newest_checkpoint_says_it_is_not_covered_yet(
    db: None, compliance_officer: User, run_export: Callable[..., Export]
) -> None:
    synthetic_ledger_create(310, checkpoint_every=100)  # seq 301–310 come after the newest checkpoint
    data = _json(run_export(actor=compliance_officer, kind="audit_range", formats=["json"]))
    assert data["verification"]["status"] == "not_covered"
    assert "no signed checkpoint covers the newest of them yet" in data["verification"]["words"]
    audit_checkpoint_create(reason="on_demand")
    data = _json(
        run_export(actor=compliance_officer, kind="audit_range", parameters={"to": "2026-01-02"}, formats=["json"])
    )
    assert data["verification"]["status"] == "verified"


def test_an_audit_range_with_an_edited_event_is_reported_broken_at_that_seq(
    db: None, compliance_officer: User, run_export: Callable[..., Export]
) -> None:
    synthetic_ledger_create(600, checkpoint_every=200)
    rogue_dba_sql("UPDATE audit_auditevent SET object_id = 'x' WHERE seq = 321")
    data = _json(run_export(actor=compliance_officer, kind="audit_range", formats=["json", "html"]))
    verification = data["verification"]
    assert verification["status"] == "broken"
    assert verification["chain"]["first_broken_seq"] == 321
    assert verification["chain"]["kind"] == "edited event"


@needs_poppler
def test_a_long_audit_range_pdf_summarises_and_says_where_the_rest_is(
    db: None, compliance_officer: User, run_export: Callable[..., Export], tmp_path: Path, settings: Any
) -> None:
    settings.EXPORT_PDF_MAX_ROWS = 40
    synthetic_ledger_create(3000, checkpoint_every=1000)
    export = run_export(actor=compliance_officer, kind="audit_range", formats=["pdf", "csv", "json"])
    pages, text = pdf_pages(_file(export, "pdf"), tmp_path / "png")
    flat = " ".join(text.split())
    assert len(pages) <= 4
    assert "This report shows the first 40 of 3000 events" in flat
    assert f"audit-events-{export.pk}.csv" in flat.replace(" ", "")  # a long file name may wrap
    data = _json(export)
    assert len(data["events"]) == 40
    assert data["events_truncated"] is True
    rows = _file(export, "csv").read_text().splitlines()
    assert len(rows) == 3001
    assert data["listing"] == {"csv": f"audit-events-{export.pk}.csv"}  # only what this export holds
    alone = run_export(actor=compliance_officer, kind="audit_range", formats=["json"])
    assert _json(alone)["listing"] == {}  # no listing beside it: the report does not name one


def test_an_accounting_report_lists_every_entry_and_a_pdf_at_most_the_cap(
    patient: Patient,
    clinician: User,
    compliance_officer: User,
    run_export: Callable[..., Export],
    portal_client_for: Callable[..., Any],
    settings: Any,
) -> None:
    settings.EXPORT_PDF_MAX_ROWS = 3
    for _ in range(5):
        portal_client_for(clinician).get(f"/patients/{patient.pk}/")
    export = run_export(
        actor=compliance_officer, kind="accounting", parameters={"patient_code": patient.code}, formats=["json", "html"]
    )
    data = _json(export)
    assert data["summary"]["entries"] == 5
    assert {e["why"] for e in data["entries"]} == {"care team"}
    html = _file(export, "html").read_text()
    assert html.count("<td>Dr Assigned<br>") == 3
    assert "This report shows the newest 3 of 5 entries" in html
