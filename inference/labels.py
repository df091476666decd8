"""Words for the codes the model lifecycle stores, in one place (STYLE.md: people read words, not codes).

The portal's model and monitoring pages, the lineage and the commands show these instead of raw values: an arm
code, a pointer-move reason, a metric name, a count that is stored as a float, a retraining note. A code with no
entry here is shown with its underscores as spaces rather than not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inference.features import FEATURE_LABELS
from inference.models import Arm, LabelProvenance, TitrationLabel

ARM_LABELS: dict[str, str] = {
    **{str(value): str(label).lower() for value, label in Arm.choices},
    # inference.monitoring.models.RULES_ONLY_ARM: recorded when no model could be trusted.
    "rules_only": "rules only (no model)",
}
# Why a serving pointer moved (ServingPointerEvent.reason, or "rollback" for a rollback).
SERVING_REASON_LABELS: dict[str, str] = {
    "promote": "promoted",
    "rollback": "rolled back",
    "circuit_breaker": "rolled back by the circuit breaker",
    "model_integrity_failure": "taken down: an artifact failed its hash",
}
METRIC_LABELS: dict[str, str] = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_auroc": "macro AUROC",
    "log_loss": "log loss",
    "n_validation": "validation rows",
    "temperature": "calibration temperature",
}
# Metrics that are counts, stored as floats in the metrics JSON: shown as whole numbers.
COUNT_METRICS = frozenset({"n_validation"})
PROVENANCE_LABELS: dict[str, str] = {str(value): str(label).lower() for value, label in LabelProvenance.choices}
CLASS_LABELS: dict[str, str] = {str(value): str(value) for value in TitrationLabel.values}
# Why a severe drift report started no candidate retraining run (DriftReport.retraining_note).
RETRAINING_NOTE_LABELS: dict[str, str] = {
    "alert_already_open": "a severe-drift alert is already open; its run was started when it opened",
    "no_new_labels": "no labels since production's training snapshot",
    "snapshot_failed_quality": "the new snapshot failed its data-quality gate",
    "candidate_already_trained": "a candidate was already trained on this snapshot",
    "empty_snapshot": "there are no labels to train on",
    "quality_gate_failed": "the new snapshot failed its data-quality gate",
}
BREAKER_REASON_LABELS: dict[str, str] = {"override_rate": "override rate", "error_rate": "error rate"}
DRIFT_TEST_LABELS: dict[str, str] = {"ks": "Kolmogorov–Smirnov", "chi2": "chi-square"}
DRIFT_FEATURE_SEVERITY_LABELS: dict[str, str] = {"stable": "stable", "watch": "watch", "severe": "severe"}
# Why a model-integrity alert opened (the exception's name, kept as a code in the alert's details).
INTEGRITY_ERROR_LABELS: dict[str, str] = {
    "ArtifactTampered": "an artifact no longer matches its hash",
    "ArtifactMissing": "an artifact is missing",
}
# The fairness report's sensitive attributes (inference.gates.fairness.SENSITIVE_ATTRIBUTES); an intersection
# "a×b" reads as both labels joined by " × " (fairness_attribute_label).
FAIRNESS_ATTRIBUTE_LABELS: dict[str, str] = {
    "sex": "sex",
    "age_band": "age band",
    "race_ethnicity": "race and ethnicity",
    "skin_tone": "skin tone (Fitzpatrick)",
}
PARAMETER_LABELS: dict[str, str] = {
    "C": "inverse regularisation C",
    "max_iter": "iterations",
    "learning_rate": "learning rate",
    "max_leaf_nodes": "leaves per tree",
    "min_samples_leaf": "rows per leaf",
    "l2_regularization": "L2 regularisation",
    "early_stopping": "early stopping",
}


def label_of(labels: Mapping[str, str], code: str) -> str:
    return labels.get(code, code.replace("_", " "))


def arm_label(arm: str) -> str:
    return label_of(ARM_LABELS, arm)


def serving_reason_label(reason: str) -> str:
    return label_of(SERVING_REASON_LABELS, reason)


def feature_label(name: str) -> str:
    return "the model's prediction" if name == "prediction" else FEATURE_LABELS.get(name, name.replace("_", " "))


def fairness_attribute_label(attribute: str) -> str:
    return " × ".join(label_of(FAIRNESS_ATTRIBUTE_LABELS, part) for part in attribute.split("×"))


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Term:
    """One labelled value, ready to print: "balanced accuracy 0.812", "simulated (synthetic cohort) 1,113"."""

    label: str
    value: str

    def __str__(self) -> str:
        return f"{self.label} {self.value}"


def metric_terms(metrics: Mapping[str, float]) -> list[Term]:
    return [
        Term(label_of(METRIC_LABELS, name), f"{value:,.0f}" if name in COUNT_METRICS else f"{value:.3f}")
        for name, value in sorted(metrics.items())
    ]


def count_terms(counts: Mapping[str, int], labels: Mapping[str, str]) -> list[Term]:
    return [Term(label_of(labels, name), f"{count:,}") for name, count in sorted(counts.items())]


def parameter_terms(params: Mapping[str, object]) -> list[Term]:
    return [Term(label_of(PARAMETER_LABELS, name), _number(value)) for name, value in sorted(params.items())]


def terms_text(terms: list[Term]) -> str:
    return ", ".join(str(term) for term in terms) or "none"
