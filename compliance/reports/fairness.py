"""Fairness report of one model version (issue 9): fairlearn MetricFrame by sex, age band, race/ethnicity, skin
tone and their pairwise intersections; per class one-vs-rest selection rate, TPR and FPR; demographic-parity and
equalized-odds differences and ratios with seeded bootstrap intervals; pass/fail against the policy bounds the
fairness gate applies. Computed twice: on the version's validation rows (what its gate judged) and on the live
proposals clinicians decided over a date range (from/to). The numbers: compliance.fairness_tables. Schema:
docs/reports-model.md.

The document names groups and counts, never a patient: it discloses no one's record (no accounting entry), and
the live part counts decisions, not people.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings

from clinaiops.core.models import User
from compliance.charts import bar_chart_svg
from compliance.fairness_tables import AttributeDisparity, FairnessTables, fairness_tables
from compliance.listings import Listing
from compliance.models import ExportFormat, ExportKind
from compliance.reports import BuildRequest, ReportDocument, ReportSpec, document_header, report_register
from compliance.reports.model_evidence import (
    live_decisions,
    model_identity,
    range_of,
    range_parameters,
    validation_data,
    version_of,
    version_parameters,
)
from inference.fairness import INTERSECTION_SEPARATOR
from inference.gates.evaluation import fairness_bounds

ATTRIBUTE_LABELS = {
    "sex": "sex",
    "age_band": "age band",
    "race_ethnicity": "race/ethnicity",
    "skin_tone": "skin tone (Fitzpatrick)",
}
MEASURES = (
    ("demographic_parity_difference", "demographic-parity difference"),
    ("equalized_odds_difference", "equalized-odds difference"),
    ("demographic_parity_ratio", "demographic-parity ratio"),
    ("equalized_odds_ratio", "equalized-odds ratio"),
)
GROUP_COLUMNS = (
    "dataset",
    "positive_class",
    "attribute",
    "group",
    "n",
    "judged",
    "selection_rate",
    "tpr",
    "fpr",
    "selection_ratio",
    "tpr_ratio",
)


def attribute_label(attribute: str) -> str:
    return " × ".join(ATTRIBUTE_LABELS.get(part, part) for part in attribute.split(INTERSECTION_SEPARATOR))


def prepare(actor: User, raw: Mapping[str, str]) -> dict[str, Any]:
    return version_parameters(raw) | range_parameters(raw)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _measures(a: AttributeDisparity) -> dict[str, Any]:
    values = (
        a.point.demographic_parity_difference,
        a.point.equalized_odds_difference,
        a.point.demographic_parity_ratio,
        a.point.equalized_odds_ratio,
    )
    return {
        key: {"value": value, "low": interval.low, "high": interval.high}
        for (key, _), value, interval in zip(MEASURES, values, a.intervals, strict=True)
    }


def tables_document(tables: FairnessTables, *, source: str) -> dict[str, Any]:
    """One dataset's part of the JSON document."""
    measures: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for a in tables.attributes:
        measures.append(
            {
                "attribute": a.attribute,
                "attribute_label": attribute_label(a.attribute),
                "is_intersection": a.is_intersection,
                "positive_class": a.positive_class,
                "reference_group": a.reference_group,
                "groups": len(a.groups),
                "judged_groups": sum(1 for g in a.groups if g.judged),
                **_measures(a),
                "passed": a.passed,
                "failures": list(a.failures),
                "notes": list(a.notes),
            }
        )
        groups.extend(
            {
                "attribute": a.attribute,
                "attribute_label": attribute_label(a.attribute),
                "is_intersection": a.is_intersection,
                "positive_class": a.positive_class,
                "group": g.group,
                "n": g.n,
                "judged": g.judged,
                "selection_rate": g.selection_rate,
                "tpr": g.tpr,
                "fpr": g.fpr,
                "selection_ratio": g.selection_ratio,
                "tpr_ratio": g.tpr_ratio,
            }
            for g in a.groups
        )
    unjudged = sum(1 for m in measures if m["judged_groups"] < 2)
    judged_failures = sum(len(m["failures"]) for m in measures if m["judged_groups"] >= 2)
    verdict = "passed" if tables.passed else "failed" if judged_failures else "cannot be judged"
    return {
        "source": source,
        "n": tables.n,
        "passed": tables.passed,
        "verdict": verdict,
        "judged_failures": judged_failures,
        "unjudged": unjudged,
        "failures": list(tables.failures),
        "measures": measures,
        "groups": groups,
    }


def _pivot(groups: list[dict[str, Any]], classes: list[str]) -> list[dict[str, Any]]:
    """Single-attribute groups as one row each, with every class's three rates side by side (for the PDF)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for g in groups:
        if g["is_intersection"]:
            continue
        row = rows.setdefault(
            (g["attribute"], g["group"]),
            {
                "attribute_label": g["attribute_label"],
                "group": g["group"],
                "n": g["n"],
                "judged": g["judged"],
                "by_class": {c: None for c in classes},
            },
        )
        row["by_class"][g["positive_class"]] = g
    return [{**row, "by_class": [row["by_class"][c] for c in classes]} for row in rows.values()]


_built_lock = threading.Lock()
_built: dict[tuple[Any, ...], ReportDocument] = {}


def _key(request: BuildRequest) -> tuple[Any, ...]:
    return (request.export_id, request.generated_at, tuple(sorted((k, str(v)) for k, v in request.parameters.items())))


def build(request: BuildRequest) -> ReportDocument:
    cached = _built.get(_key(request))
    if cached is not None:
        return cached
    version = version_of(request.parameters)
    bounds = fairness_bounds()
    classes = list(version.classes)
    data = validation_data(version)
    request.progress(0, 2)
    validation = fairness_tables(
        data.labels(data.y), data.labels(data.predicted), data.sensitive, classes=classes, bounds=bounds
    )
    request.progress(1, 2)
    start, end = range_of(request.parameters)
    decisions = live_decisions(version, start=start, end=end)
    live: dict[str, Any] = {
        "source": "Live proposals of this version that a clinician decided (the clinician's final step is the "
        "truth, the model's proposed action the prediction)",
        "n": decisions.n,
        "first_decision_at": decisions.first.isoformat() if decisions.first else None,
        "last_decision_at": decisions.last.isoformat() if decisions.last else None,
    }
    if decisions.n:
        tables = fairness_tables(
            decisions.y_true, decisions.y_pred, decisions.sensitive, classes=classes, bounds=bounds
        )
        live |= tables_document(tables, source=live["source"])
    else:
        live |= {
            "passed": None,
            "verdict": "no decisions in this range",
            "judged_failures": 0,
            "unjudged": 0,
            "failures": [],
            "measures": [],
            "groups": [],
        }
    request.progress(2, 2)
    document = document_header(SPEC, request) | {
        "model": model_identity(version),
        "range": {"from": request.parameters.get("from"), "to": request.parameters.get("to")},
        "classes": classes,
        "attributes": [{"name": n, "label": ATTRIBUTE_LABELS[n]} for n in ATTRIBUTE_LABELS],
        "bounds": {
            "max_equalized_odds_difference": bounds.max_equalized_odds_difference,
            "max_demographic_parity_difference": bounds.max_demographic_parity_difference,
            "min_group_ratio": bounds.min_group_ratio,
            "min_group_size": bounds.min_group_size,
            "enforced": bool(settings.MODEL_GATE_FAIRNESS_ENFORCED),
            "rule": (
                "per attribute and class: equalized-odds and demographic-parity differences at most their bounds, "
                "and each judged group's selection-rate and TPR ratio to the largest group within "
                f"[{bounds.min_group_ratio:g}, {1 / bounds.min_group_ratio:.3g}]; groups under "
                f"{bounds.min_group_size} rows are reported, not judged (the fairness gate's rule)"
            ),
        },
        "bootstrap": {
            "resamples": validation.resamples,
            "seed": validation.seed,
            "confidence": validation.confidence,
            "method": "percentile bootstrap over rows (multinomial over distinct profiles), the same replicates "
            "for every attribute and class",
        },
        "validation": tables_document(
            validation,
            source=f"The version’s {validation.n} validation rows (seeded split {data.run.seed} of snapshot "
            f"{data.snapshot.sha256[:12]}), scored by the served ONNX model",
        ),
        "live": live,
        "listing_note": (
            "The intersection groups are in the CSV/JSON Lines listing (fairness-groups) and in this JSON; the PDF "
            "shows the measures of every attribute and intersection, and the groups of the single attributes."
        ),
    }
    for part in (document["validation"], document["live"]):
        part["single_groups"] = _pivot(part["groups"], classes)
    # The class the gate judges by default: being offered more medication.
    shown = "increase" if "increase" in classes else classes[-1]
    charts = {
        f"{name}_eod": bar_chart_svg(
            [
                (m["attribute_label"], round(m["equalized_odds_difference"]["value"], 3))
                for m in document[name]["measures"]
                if m["positive_class"] == shown and m["equalized_odds_difference"]["value"] is not None
            ],
            title=f"Equalized-odds difference for “{shown}”, {name} (bound {bounds.max_equalized_odds_difference:g})",
        )
        for name in ("validation", "live")
    }
    result = ReportDocument(data=document, patient_ids=frozenset(), charts=charts)
    with _built_lock:
        _built.clear()  # one report at a time is enough: build, then its listing, from the same request
        _built[_key(request)] = result
    return result


def listing(request: BuildRequest) -> Listing:
    document = build(request).data

    def rows() -> Iterator[tuple[Any, ...]]:
        for name in ("validation", "live"):
            for g in document[name]["groups"]:
                yield (
                    name,
                    g["positive_class"],
                    g["attribute"],
                    g["group"],
                    g["n"],
                    g["judged"],
                    _rounded(g["selection_rate"]),
                    _rounded(g["tpr"]),
                    _rounded(g["fpr"]),
                    _rounded(g["selection_ratio"]),
                    _rounded(g["tpr_ratio"]),
                )

    total = len(document["validation"]["groups"]) + len(document["live"]["groups"])
    return Listing(name="fairness-groups", columns=GROUP_COLUMNS, rows=rows, total=total)


SPEC = report_register(
    ReportSpec(
        kind=ExportKind.FAIRNESS,
        title="Fairness report",
        schema="fairness_report",
        schema_version="1.0",
        template="compliance/reports/fairness.html",
        formats=frozenset(
            {ExportFormat.JSON, ExportFormat.HTML, ExportFormat.PDF, ExportFormat.CSV, ExportFormat.JSONL}
        ),
        file_stem="fairness-report",
        prepare=prepare,
        build=build,
        listing=listing,
    )
)
