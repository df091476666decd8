"""The model card: filled from the registry (the version, its gates, sign-offs, serving history, snapshot), with the
Model Card Toolkit and CHAI sections and all 31 ONC HTI-1 predictive-DSI source attributes, none empty; the export
command with --help and clean errors; the wrong personas refused; the PDF reads as a card."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from compliance.errors import ExportRefused
from compliance.held_out_metrics import weighted_metrics
from compliance.models import Export
from compliance.reports.model_card import HTI1_ATTRIBUTES
from compliance.services import export_file_path, export_request
from governance.models import ModelSignoff
from inference.calibration import multiclass_metrics
from inference.models import ModelVersion, ServingPointerEvent
from tests.compliance.test_reports import pdf_pages

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (make system-deps)")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# 45 CFR 170.315(b)(11)(iv)(B): (1) 4, (2) 4, (3) 2, (4) 4, (5) 2, (6) 4, (7) 5, (8) 4, (9) 2 attributes.
EXPECTED_IDS = [
    f"(b)(11)(iv)(B)({group})({roman})"
    for group, count in ((1, 4), (2, 4), (3, 2), (4, 4), (5, 2), (6, 4), (7, 5), (8, 4), (9, 2))
    for roman in ("i", "ii", "iii", "iv", "v")[:count]
]


def _json(export: Export) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(export_file_path(export.files.get(format="json")).read_text())
    return data


@pytest.fixture
def card(deployed_model: ModelVersion, ml_engineer: User, run_export: Callable[..., Export]) -> dict[str, Any]:
    export = run_export(actor=ml_engineer, kind="model_card", parameters={"version": "production"}, formats=["json"])
    assert export.status == "finished", export.error_message
    return _json(export)


@pytest.mark.slow
def test_every_hti1_source_attribute_is_present_in_order_and_never_empty(card: dict[str, Any]) -> None:
    attributes = card["hti1_source_attributes"]
    assert len(EXPECTED_IDS) == len(HTI1_ATTRIBUTES) == 31
    assert [a["id"] for a in attributes] == EXPECTED_IDS
    for attribute in attributes:
        assert set(attribute) == {"id", "name", "value"}
        assert attribute["name"].strip() and attribute["value"].strip(), attribute["id"]
        assert "None" not in attribute["value"] and "{" not in attribute["value"], attribute
    by_id = {a["id"]: a["value"] for a in attributes}
    # A one-patient test deployment: nothing is external, so those are "not applicable" with the reason given.
    for paragraph in ("(6)(i)", "(6)(ii)", "(6)(iii)", "(6)(iv)", "(7)(iii)", "(7)(iv)"):
        assert re.match(r"Not applicable: .{40,}", by_id[f"(b)(11)(iv)(B){paragraph}"]), paragraph
    # Filled from the registry: the held-out metrics, the training range, the developer, the policy.
    balanced = next(m for m in card["quantitative_analysis"]["performance_metrics"] if m["type"] == "balanced_accuracy")
    assert f"balanced accuracy {balanced['value']:.3f}" in by_id["(b)(11)(iv)(B)(7)(i)"]
    training = card["model_parameters"]["data"]["training"]
    assert training["time_start"] in by_id["(b)(11)(iv)(B)(4)(i)"]
    assert "Mleng Example" in by_id["(b)(11)(iv)(B)(1)(i)"]
    assert "Date of birth: used, as age" in by_id["(b)(11)(iv)(B)(4)(ii)"]
    assert "sex: female 100 %" in by_id["(b)(11)(iv)(B)(4)(iii)"]


@pytest.mark.slow
def test_the_card_is_filled_from_the_registry(
    card: dict[str, Any], deployed_model: ModelVersion, safety_officer: User
) -> None:
    assert (card["schema"], card["schema_version"]) == ("clinaiops.model_card", "1.0")
    assert {"model_details", "model_parameters", "quantitative_analysis", "considerations"} <= set(card)
    assert set(card["chai_applied_model_card"]) == {
        "basic_info",
        "release_info",
        "model_summary",
        "uses_and_directions",
        "warnings",
        "trust_ingredients",
        "key_metrics",
        "resources",
    }
    details = card["model_details"]
    assert details["version"]["name"] == deployed_model.sha256
    assert details["serving_on"] == ["production"]
    assert details["manifest"]["ok"] is True
    snapshot = deployed_model.training_run.snapshot
    training = card["model_parameters"]["data"]["training"]
    assert (training["snapshot_sha256"], training["rows"]) == (snapshot.sha256, snapshot.row_count)
    assert training["label_provenance"] == [
        {"provenance": "simulated", "label": "simulated (synthetic cohort)", "n": snapshot.row_count, "pct": 100.0}
    ]
    assert [r["attribute"] for r in card["model_parameters"]["data"]["representativeness"]] == [
        "sex",
        "age_band",
        "race_ethnicity",
        "skin_tone",
    ]
    # Every stored gate, with its numbers.
    assert [g["name"] for g in card["gates"]["results"]] == list(deployed_model.gates)
    parity = next(g for g in card["gates"]["results"] if g["name"] == "onnx_parity")
    assert parity["numbers"]["max_abs_diff"] == deployed_model.gates["onnx_parity"]["max_abs_diff"]
    # Held-out metrics with intervals that bracket them, and the calibration bins of the stored gate.
    for metric in card["quantitative_analysis"]["performance_metrics"]:
        interval = metric["confidence_interval"]
        assert interval["lower_bound"] <= metric["value"] <= interval["upper_bound"], metric
    assert card["quantitative_analysis"]["calibration"]["ece"] == deployed_model.gates["calibration"]["ece"]
    assert len(card["quantitative_analysis"]["global_shap"]["features"]) == len(deployed_model.feature_names)
    # Both sign-offs with their signature manifestation, and the move to production.
    signoffs = ModelSignoff.objects.filter(model_version=deployed_model).select_related("signature")
    assert [s["manifestation"] for s in card["signoffs"]["entries"]] == [
        s.signature.manifestation for s in signoffs.order_by("signed_at")
    ]
    assert any(safety_officer.printed_name in s["manifestation"] for s in card["signoffs"]["entries"])
    assert all(s["verified"] for s in card["signoffs"]["entries"])
    moves = ServingPointerEvent.objects.filter(model_version=deployed_model).count()
    assert len(card["serving_history"]) == moves >= 1
    assert card["serving_history"][-1]["arm"] == "production"
    limitations = " ".join(card["considerations"]["limitations"])
    assert "PPG bias by skin tone" in limitations
    assert card["live_evidence"]["clinician_decisions"] == 0
    assert "drift" in card["monitoring"]["text"].lower()


def test_clinicians_and_patients_may_not_export_a_model_card(
    deployed_model: ModelVersion,
    clinician: User,
    unassigned_clinician: User,
    patient: Patient,
    safety_officer: User,
    compliance_officer: User,
    ml_engineer: User,
) -> None:
    for persona in (clinician, unassigned_clinician, patient.user):
        with pytest.raises(ExportRefused):
            export_request(actor=persona, kind="model_card", parameters={"version": "production"}, formats=["json"])
    for persona in (ml_engineer, safety_officer, compliance_officer):
        export = export_request(
            actor=persona, kind="model_card", parameters={"version": "production"}, formats=["pdf"], enqueue=False
        )
        assert export.parameters == {
            "model_version_id": deployed_model.pk,
            "model_sha256": deployed_model.sha256,
            "requested_as": "production",
        }


def test_the_export_command_has_help_and_fails_cleanly(
    deployed_model: ModelVersion,
    ml_engineer: User,
    clinician: User,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for kind in ("model-card", "fairness", "explainability"):
        with pytest.raises(SystemExit) as done:
            call_command("export", kind, "--help")
        assert done.value.code == 0
        shown = capsys.readouterr().out
        assert "production" in shown and "--out" in shown and "--format" in shown
        assert ("--from" in shown) == (kind == "fairness")
    out_file = tmp_path / "card.json"
    with pytest.raises(CommandError, match="No model version starts with"):
        call_command("export", "model-card", "abcdef0123", "--actor", "mleng", "--out", str(out_file))
    with pytest.raises(CommandError, match="cannot export"):
        call_command("export", "model-card", "production", "--actor", "dr_assigned", "--out", str(out_file))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export", "model-card", "production", "--actor", "mleng", "--out", str(tmp_path / "no" / "x"))
    assert not out_file.exists()


@pytest.mark.slow
@needs_poppler
def test_the_command_writes_the_production_card_as_a_pdf_that_reads_as_a_card(
    deployed_model: ModelVersion, ml_engineer: User, tmp_path: Path
) -> None:
    pdf = tmp_path / "card.pdf"
    message = StringIO()
    call_command(
        "export", "model-card", "production", "--format", "pdf", "--out", str(pdf), "--actor", "mleng", stdout=message
    )
    assert "audited as mleng" in message.getvalue()
    pages, text = pdf_pages(pdf, tmp_path / "pages")
    assert 4 <= len(pages) <= 12
    flat = " ".join(text.split())
    for words in (
        "Model card",
        "Intended use",
        "Representativeness",
        "Held-out performance",
        "Calibration",
        "Global SHAP",
        "Gates",
        "Change-control plan",
        "Serving history",
        "Known limitations",
        "PPG bias by skin tone",
        "Live evidence",
        "CHAI applied model card",
        "ONC HTI-1 source attributes",
        "(b)(11)(iv)(B)(9)(ii)",
        deployed_model.sha256,
    ):
        assert words in flat, words
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(pages, start=1):
        shutil.copyfile(page, SCREENSHOTS / f"reports-model-card-{index}.png")


def test_bootstrap_metrics_are_scikit_learns_on_the_resampled_rows() -> None:
    """A replicate's weights are row counts: the weighted metrics must equal scikit-learn on the repeated rows."""
    rng = np.random.default_rng(4)
    n = 150
    proba = rng.dirichlet([1.0, 1.0, 1.0], n).round(2)  # rounded, so there are ties for the AUROC
    proba = np.clip(proba, 0.0, 1.0) / np.clip(proba, 0.0, 1.0).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, n)
    counts = rng.multinomial(n, np.full(n, 1 / n), size=3).astype(np.float64)
    got = weighted_metrics(proba, y, np.vstack([np.ones(n), counts]))
    for row, weights in enumerate([np.ones(n), *counts]):
        rows = np.repeat(np.arange(n), weights.astype(int))
        expected = multiclass_metrics(proba[rows], y[rows])
        for name, value in expected.items():
            assert got[name][row] == pytest.approx(value, abs=1e-9), (name, row)
