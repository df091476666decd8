"""Explainability report of one model version (issue 9, DESIGN §4): global mean |SHAP| per feature, overall and
per class, with plots, on the version's validation rows. The values come from the serving runtime's explainer
(inference.runtime: exact TreeExplainer or LinearExplainer on the sklearn pipeline the ONNX was exported from,
hash-checked on load), so the global picture is made of the same explanations the review queue shows one at a
time. Schema: docs/reports-model.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clinaiops.core.models import User
from compliance.charts import bar_chart_svg
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.reports.model_evidence import (
    model_identity,
    shap_values,
    validation_data,
    version_of,
    version_parameters,
)
from compliance.shap_global import GlobalShap, global_shap
from inference.features import FEATURE_LABELS
from inference.models import ModelVersion
from inference.training import TREE_FAMILIES


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    return version_parameters(raw)


def explainer_words(version: ModelVersion) -> str:
    if version.family in TREE_FAMILIES:
        return "shap TreeExplainer (path-dependent, exact for the trees), raw per-class scores in log-odds"
    return "shap LinearExplainer over the standardised features (exact), per-class scores in log-odds"


def version_global_shap(version: ModelVersion) -> GlobalShap:
    """Global SHAP of a version on its validation rows (shared with the model card)."""
    data = validation_data(version)
    return global_shap(shap_values(version, data.X), data.feature_names, data.classes)


def shap_document(summary: GlobalShap) -> list[dict[str, Any]]:
    return [
        {
            "rank": rank,
            "feature": f.feature,
            "label": FEATURE_LABELS.get(f.feature, f.feature),
            "mean_abs_shap": f.mean_abs,
            "mean_abs_shap_by_class": f.mean_abs_by_class,
            "mean_shap_by_class": f.mean_by_class,
            "direction_by_class": {
                c: ("toward" if v > 0 else "away from" if v < 0 else "neither way") for c, v in f.mean_by_class.items()
            },
        }
        for rank, f in enumerate(summary.features, start=1)
    ]


def build(request: BuildRequest) -> ReportDocument:
    version = version_of(request.parameters)
    summary = version_global_shap(version)
    features = shap_document(summary)
    data = document_header(SPEC, request) | {
        "model": model_identity(version) | {"sklearn_sha256": version.sklearn_sha256},
        "method": {
            "explainer": explainer_words(version),
            "rows": summary.rows,
            "rows_source": "the version's validation rows (the seeded split its gates judged it on)",
            "units": "log-odds of each class's raw score; a feature's mean |SHAP| is how far it moves that score "
            "on average, whichever way",
            "overall": "the mean over the classes of the per-class mean |SHAP|",
        },
        "classes": list(summary.classes),
        "features": features,
    }
    charts = {
        "overall": bar_chart_svg(
            [(f["label"], round(f["mean_abs_shap"], 4)) for f in features],
            title="Mean |SHAP| per feature, all classes (log-odds)",
        ),
        **{
            f"class_{c}": bar_chart_svg(
                sorted(
                    ((f["label"], round(f["mean_abs_shap_by_class"][c], 4)) for f in features),
                    key=lambda item: -item[1],
                ),
                title=f"Mean |SHAP| toward “{c}” (log-odds)",
            )
            for c in summary.classes
        },
    }
    return ReportDocument(data=data, patient_ids=frozenset(), charts=charts)


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.EXPLAINABILITY,
        title="Explainability report",
        schema="explainability_report",
        schema_version="1.0",
        template="compliance/reports/explainability.html",
        formats=frozenset({ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF}),
        file_stem="explainability-report",
        prepare=prepare,
        build=build,
    )
)
