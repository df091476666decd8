"""The explainability report: global mean |SHAP| per feature and class equal shap called directly on the same rows
with the same model; the plots and the PDF; the wrong personas refused."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import shap

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from compliance.errors import ExportRefused
from compliance.models import Export
from compliance.services import export_file_path, export_request
from inference.artifacts import artifact_get
from inference.models import ModelVersion
from inference.selectors import snapshot_load
from inference.training import TREE_FAMILIES, train_validation_split
from tests.compliance.test_reports import pdf_pages

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (make system-deps)")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _json(export: Export) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(export_file_path(export.files.get(format="json")).read_text())
    return data


def _direct_shap(version: ModelVersion) -> np.ndarray:
    """shap itself, on the version's validation rows (recomputed from the snapshot and its seeded split), with the
    sklearn pipeline read straight from the artifact store."""
    run = version.training_run
    rows = snapshot_load(run.snapshot)
    _, val_idx = train_validation_split(len(rows), run.seed)
    X = np.asarray([[rows[i]["features"][n] for n in version.feature_names] for i in val_idx], dtype=np.float32)
    pipeline = joblib.load(io.BytesIO(artifact_get(version.sklearn_sha256, suffix=".joblib")))
    if version.family in TREE_FAMILIES:
        values = shap.TreeExplainer(pipeline[-1])(X.astype(np.float64)).values
    else:
        background = np.load(io.BytesIO(artifact_get(version.background_sha256, suffix=".npy")))
        scaler = pipeline[:-1]
        explainer = shap.LinearExplainer(pipeline[-1], shap.maskers.Independent(scaler.transform(background)))
        values = explainer(scaler.transform(X.astype(np.float64))).values
    return np.asarray(values, dtype=np.float64)


def test_global_shap_equals_shap_called_directly(
    deployed_model: ModelVersion, ml_engineer: User, run_export: Callable[..., Export]
) -> None:
    export = run_export(
        actor=ml_engineer, kind="explainability", parameters={"version": "production"}, formats=["json"]
    )
    assert export.status == "finished", export.error_message
    data = _json(export)
    assert (data["schema"], data["schema_version"]) == ("clinaiops.explainability_report", "1.0")
    values = _direct_shap(deployed_model)
    assert values.shape == (data["method"]["rows"], len(deployed_model.feature_names), 3)
    expected_by_class = np.abs(values).mean(axis=0)
    by_name = {f["feature"]: f for f in data["features"]}
    assert set(by_name) == set(deployed_model.feature_names)
    for i, name in enumerate(deployed_model.feature_names):
        for k, cls in enumerate(deployed_model.classes):
            assert by_name[name]["mean_abs_shap_by_class"][cls] == pytest.approx(expected_by_class[i, k], abs=1e-12)
            assert by_name[name]["mean_shap_by_class"][cls] == pytest.approx(values[:, i, k].mean(), abs=1e-12)
        assert by_name[name]["mean_abs_shap"] == pytest.approx(expected_by_class[i].mean(), abs=1e-12)
    overall = [f["mean_abs_shap"] for f in data["features"]]
    assert overall == sorted(overall, reverse=True)
    assert [f["rank"] for f in data["features"]] == list(range(1, len(overall) + 1))
    # Not a vacuous comparison: the synthetic labels follow systolic BP, and the model learned it.
    assert data["features"][0]["mean_abs_shap"] > 0.1


def test_clinicians_and_patients_may_not_export_it(
    deployed_model: ModelVersion, clinician: User, patient: Patient, ml_engineer: User, compliance_officer: User
) -> None:
    for persona in (clinician, patient.user):
        with pytest.raises(ExportRefused):
            export_request(actor=persona, kind="explainability", parameters={"version": "production"}, formats=["json"])
    for persona in (ml_engineer, compliance_officer):
        assert (
            export_request(
                actor=persona, kind="explainability", parameters={"version": "latest"}, formats=["json"], enqueue=False
            ).parameters["model_version_id"]
            == deployed_model.pk
        )


@pytest.mark.slow
@needs_poppler
def test_the_pdf_shows_the_plots_and_the_table(
    deployed_model: ModelVersion, compliance_officer: User, run_export: Callable[..., Export], tmp_path: Path
) -> None:
    export = run_export(
        actor=compliance_officer, kind="explainability", parameters={"version": "production"}, formats=["pdf", "html"]
    )
    html = export_file_path(export.files.get(format="html")).read_text()
    assert html.count("<svg") == 4  # all classes, then one per class
    pages, text = pdf_pages(export_file_path(export.files.get(format="pdf")), tmp_path / "pages")
    assert 1 <= len(pages) <= 5
    flat = " ".join(text.split())
    for words in (
        "Explainability report",
        "Global importance",
        "Mean |SHAP| per feature, all classes",
        "Mean |SHAP| toward “increase”",
        "average systolic BP, cuff (7 days)",
        deployed_model.short_hash,
    ):
        assert words in flat, words
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(pages, start=1):
        shutil.copyfile(page, SCREENSHOTS / f"reports-explainability-{index}.png")
