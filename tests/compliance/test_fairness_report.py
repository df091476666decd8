"""The fairness report: its numbers equal fairlearn called directly on the same arrays (group rates, the four
disparity measures, and every bootstrap replicate's statistic); the bootstrap is seeded; the export computes it on
the version's validation rows and on live clinician-labelled decisions over a date range; the wrong personas are
refused; the PDF reads as a report."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance.errors import ExportInvalid, ExportNotFound, ExportRefused
from compliance.fairness_tables import disparity_from_counts, fairness_tables, group_labels
from compliance.models import Export, ExportFile
from compliance.services import export_file_path, export_request
from inference.fairness import FairnessBounds
from inference.models import ModelVersion
from inference.monitoring.models import PredictionLog
from tests.compliance.test_reports import pdf_pages

CLASSES = ("decrease", "maintain", "increase")
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (make system-deps)")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _arrays(n: int = 1500, seed: int = 5) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Predictions that are better for one sex and one skin tone, so the disparities are not zero."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    tone = rng.choice(["type 1", "type 3", "type 6"], n)
    truth = np.asarray(CLASSES)[rng.integers(0, 3, n)]
    right = rng.random(n) < np.where(sex == "female", 0.8, 0.6) - np.where(tone == "type 6", 0.15, 0.0)
    predicted = np.where(right, truth, np.asarray(CLASSES)[rng.integers(0, 3, n)])
    return truth, predicted, {"sex": sex, "skin_tone": tone}


def test_group_rates_and_disparities_equal_fairlearn_called_directly_on_the_same_arrays() -> None:
    truth, predicted, sensitive = _arrays()
    tables = fairness_tables(
        truth, predicted, sensitive, classes=CLASSES, bounds=FairnessBounds(min_group_size=1), resamples=50
    )
    assert len(tables.attributes) == 3 * 3  # sex, skin tone and their intersection, for each class
    for a in tables.attributes:
        parts = a.attribute.split("×")
        groups = (
            sensitive[parts[0]]
            if len(parts) == 1
            else np.char.add(np.char.add(sensitive[parts[0]], "×"), sensitive[parts[1]])
        )
        y_true, y_pred = truth == a.positive_class, predicted == a.positive_class
        frame = MetricFrame(
            metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
        ).by_group
        assert {g.group for g in a.groups} == set(frame.index)
        for g in a.groups:
            assert g.selection_rate == pytest.approx(frame.loc[g.group, "selection_rate"], abs=1e-12)
            assert g.tpr == pytest.approx(frame.loc[g.group, "tpr"], abs=1e-12)
            assert g.fpr == pytest.approx(frame.loc[g.group, "fpr"], abs=1e-12)
        kwargs = {"sensitive_features": groups}
        assert a.point.demographic_parity_difference == pytest.approx(
            demographic_parity_difference(y_true, y_pred, **kwargs), abs=1e-12
        )
        assert a.point.equalized_odds_difference == pytest.approx(
            equalized_odds_difference(y_true, y_pred, **kwargs), abs=1e-12
        )
        assert a.point.demographic_parity_ratio == pytest.approx(
            demographic_parity_ratio(y_true, y_pred, **kwargs), abs=1e-12
        )
        assert a.point.equalized_odds_ratio == pytest.approx(equalized_odds_ratio(y_true, y_pred, **kwargs), abs=1e-12)
    # Not a vacuous comparison: the arrays were built unfair for men, and it shows.
    sex_increase = next(a for a in tables.attributes if (a.attribute, a.positive_class) == ("sex", "increase"))
    assert sex_increase.point.equalized_odds_difference > 0.1


def test_each_bootstrap_replicate_is_fairlearn_on_the_resampled_rows() -> None:
    truth, predicted, sensitive = _arrays(n=600, seed=9)
    groups = group_labels(sensitive["skin_tone"], len(truth))
    rng = np.random.default_rng(3)
    for positive in CLASSES:
        pick = rng.integers(0, len(truth), len(truth))
        y_true, y_pred, g = truth[pick] == positive, predicted[pick] == positive, groups[pick]
        names = sorted(set(g))
        counts = np.zeros((1, len(names), 4))
        for i, name in enumerate(names):
            mask = g == name
            for t in (0, 1):
                for p in (0, 1):
                    counts[0, i, t * 2 + p] = np.sum(mask & (y_true == t) & (y_pred == p))
        dpd, eod, dpr, eor = disparity_from_counts(counts)[0]
        kwargs = {"sensitive_features": g}
        assert dpd == pytest.approx(demographic_parity_difference(y_true, y_pred, **kwargs), abs=1e-12)
        assert eod == pytest.approx(equalized_odds_difference(y_true, y_pred, **kwargs), abs=1e-12)
        assert dpr == pytest.approx(demographic_parity_ratio(y_true, y_pred, **kwargs), abs=1e-12)
        assert eor == pytest.approx(equalized_odds_ratio(y_true, y_pred, **kwargs), abs=1e-12)


def test_the_bootstrap_is_seeded_and_its_interval_brackets_the_estimate() -> None:
    truth, predicted, sensitive = _arrays(n=800)
    bounds = FairnessBounds(min_group_size=1)
    first = fairness_tables(truth, predicted, sensitive, classes=CLASSES, bounds=bounds, resamples=200, seed=1)
    again = fairness_tables(truth, predicted, sensitive, classes=CLASSES, bounds=bounds, resamples=200, seed=1)
    other = fairness_tables(truth, predicted, sensitive, classes=CLASSES, bounds=bounds, resamples=200, seed=2)
    assert [a.intervals for a in first.attributes] == [a.intervals for a in again.attributes]
    assert [a.intervals for a in first.attributes] != [a.intervals for a in other.attributes]
    for a in first.attributes:
        eod = a.intervals[1]
        assert eod.low is not None and eod.high is not None
        assert eod.low <= a.point.equalized_odds_difference <= eod.high  # type: ignore[operator]


def _json(export: Export) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(export_file_path(export.files.get(format="json")).read_text())
    return data


@pytest.mark.slow
def test_the_export_reports_validation_rows_and_live_clinician_decisions_in_the_range(
    decided: Recommendation, ml_engineer: User, run_export: Callable[..., Export]
) -> None:
    version = decided.model_version
    export = run_export(
        actor=ml_engineer, kind="fairness", parameters={"version": "production"}, formats=["json", "csv"]
    )
    assert export.status == "finished", export.error_message
    data = _json(export)
    assert (data["schema"], data["schema_version"]) == ("clinaiops.fairness_report", "1.0")
    assert data["model"]["sha256"] == version.sha256
    assert data["parameters"]["requested_as"] == "production"
    assert data["validation"]["n"] == int(version.metrics["n_validation"])
    decided_logs = PredictionLog.objects.filter(model_version=version, decided_at__isnull=False).count()
    assert decided_logs >= 1
    assert data["live"]["n"] == decided_logs
    attributes = {m["attribute"] for m in data["validation"]["measures"]}
    assert {"sex", "age_band", "race_ethnicity", "skin_tone", "sex×skin_tone", "race_ethnicity×skin_tone"} <= attributes
    assert {m["positive_class"] for m in data["validation"]["measures"]} == set(CLASSES)
    # One patient: every attribute has a single group, which the policy cannot judge (and does not call fair).
    assert data["validation"]["verdict"] == "cannot be judged"
    assert data["validation"]["passed"] is False
    rows = list(
        csv.DictReader(io.StringIO(export_file_path(ExportFile.objects.get(export=export, format="csv")).read_text()))
    )
    assert {r["dataset"] for r in rows} == {"validation", "live"}
    assert len(rows) == len(data["validation"]["groups"]) + len(data["live"]["groups"])

    before = run_export(
        actor=ml_engineer,
        kind="fairness",
        parameters={"version": version.sha256[:10], "to": "2000-01-01"},
        formats=["json"],
    )
    live = _json(before)["live"]
    assert (live["n"], live["verdict"], live["measures"]) == (0, "no decisions in this range", [])


def test_bad_versions_and_ranges_are_refused_with_field_errors(deployed_model: ModelVersion, ml_engineer: User) -> None:
    with pytest.raises(ExportNotFound):
        export_request(actor=ml_engineer, kind="fairness", parameters={"version": "ffffffffff"}, formats=["json"])
    with pytest.raises(ExportInvalid) as short:
        export_request(actor=ml_engineer, kind="fairness", parameters={"version": "abc"}, formats=["json"])
    assert "version" in short.value.fields
    with pytest.raises(ExportInvalid) as empty:
        export_request(
            actor=ml_engineer,
            kind="fairness",
            parameters={"version": "production", "from": "2026-03-02", "to": "2026-03-01"},
            formats=["json"],
        )
    assert "to" in empty.value.fields
    with pytest.raises(ExportNotFound):
        export_request(actor=ml_engineer, kind="fairness", parameters={"version": "canary"}, formats=["json"])


def test_clinicians_and_patients_may_not_export_it(
    deployed_model: ModelVersion,
    clinician: User,
    patient: Patient,
    safety_officer: User,
    compliance_officer: User,
    ml_engineer: User,
) -> None:
    for persona in (clinician, patient.user):
        with pytest.raises(ExportRefused):
            export_request(actor=persona, kind="fairness", parameters={"version": "production"}, formats=["json"])
    for persona in (ml_engineer, safety_officer, compliance_officer):
        assert export_request(
            actor=persona, kind="fairness", parameters={"version": "production"}, formats=["json"], enqueue=False
        ).pk


@pytest.mark.slow
@needs_poppler
def test_the_pdf_has_both_datasets_and_the_measures(
    deployed_model: ModelVersion, compliance_officer: User, run_export: Callable[..., Export], tmp_path: Path
) -> None:
    export = run_export(
        actor=compliance_officer, kind="fairness", parameters={"version": "production"}, formats=["pdf"]
    )
    pages, text = pdf_pages(export_file_path(export.files.get(format="pdf")), tmp_path / "pages")
    assert 1 <= len(pages) <= 6
    for words in (
        "Fairness report",
        "On the validation rows",
        "On live clinician-labelled decisions",
        "Groups of the single attributes",
        "no decisions in this range",
        deployed_model.short_hash,
    ):
        assert words in text, words
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(pages, start=1):
        shutil.copyfile(page, SCREENSHOTS / f"reports-fairness-{index}.png")
