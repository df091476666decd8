"""What the model card, fairness and explainability reports read about one model version, in one place.

- `version_prepare`: the `<version|production>` argument resolved to one version when the export is requested, so
  the export's parameters name the version it disclosed (a pointer moved between request and run changes nothing);
- `validation_data`: the version's own validation rows, recomputed exactly as its gates did (the seeded split of
  its snapshot, recorded in the signed manifest) and scored by the ONNX model that serves;
- `shap_values`: SHAP on those rows by the serving runtime's explainer (inference.runtime);
- `live_decisions`: the clinician-labelled proposals the version made in a date range (the monitoring copy,
  PredictionLog, with the clinician's final step as the truth).

A version's snapshot, artifacts and split never change (content-addressed, signed), so the validation rows and
their SHAP values are kept per process for the last few versions asked for: a bundle and a model card of the same
version then score and explain once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from clinaiops.core.errors import NotFound, ValidationFailed
from compliance.errors import ExportInvalid, ExportNotFound
from compliance.wording import APPROVAL_WORDS, words
from governance.ledger_search import moment_parse, timestamp_parameter
from inference.artifacts import artifact_get
from inference.manifest import manifest_trusted
from inference.models import CLASS_ORDER, Arm, DatasetSnapshot, ModelVersion, TrainingRun
from inference.monitoring.models import PredictionLog
from inference.selectors import serving_version
from inference.services.datasets import model_snapshot_rows, sensitive_attributes
from inference.services.registry import model_version_find
from inference.training import onnx_probabilities, train_validation_split

SENSITIVE_ATTRIBUTES = ("sex", "age_band", "race_ethnicity", "skin_tone")
VERSION_WORDS = "a model hash (or a unique prefix of at least 6 characters), 'production' or 'latest'"
_CACHE_SIZE = 3


def version_resolve(value: object) -> ModelVersion:
    text = str(value or "").strip()
    if not text:
        raise ExportInvalid("Say which model version.", fields={"version": [f"Give {VERSION_WORDS}."]})
    if text in {Arm.PRODUCTION, Arm.CANARY, Arm.SHADOW}:
        version = serving_version(arm=text)
        if version is None:
            raise ExportNotFound(f"No model version serves on {text}.")
        return version
    if text == "latest":
        latest = ModelVersion.objects.order_by("-created_at").first()
        if latest is None:
            raise ExportNotFound("There is no model version yet.")
        return latest
    try:
        return model_version_find(text)
    except NotFound as exc:
        raise ExportNotFound(exc.message) from exc
    except ValidationFailed as exc:
        raise ExportInvalid(exc.message, fields=exc.fields) from exc


def version_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical parameters naming a version: its id and hash, and what was asked for ("production", …)."""
    version = version_resolve(raw.get("version"))
    return {"model_version_id": version.pk, "model_sha256": version.sha256, "requested_as": str(raw.get("version"))}


def version_of(parameters: Mapping[str, Any]) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=parameters["model_version_id"]).first()
    if version is None:
        raise ExportNotFound("That model version no longer exists.")
    return version


def range_parameters(raw: Mapping[str, Any]) -> dict[str, str]:
    """from/to (a date or an ISO timestamp, UTC; `to` as a date includes that whole day) as stored parameters."""
    try:
        start = moment_parse(str(raw.get("from") or ""), field_name="from")
        end = moment_parse(str(raw.get("to") or ""), field_name="to", end_of_day=True)
    except ValidationFailed as exc:
        raise ExportInvalid(exc.message, fields=exc.fields) from exc
    if start and end and end <= start:
        raise ExportInvalid("The range is empty.", fields={"to": ["The end must be after the start."]})
    parameters: dict[str, str] = {}
    if start:
        parameters["from"] = timestamp_parameter(start)
    if end:
        parameters["to"] = timestamp_parameter(end)
    return parameters


def range_of(parameters: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    start = moment_parse(str(parameters.get("from") or ""), field_name="from")
    end = moment_parse(str(parameters.get("to") or ""), field_name="to")
    return start, end


# --- The version's validation rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationData:
    """The held-out rows a version's gates judged it on, with the served model's probabilities."""

    snapshot: DatasetSnapshot
    run: TrainingRun
    snapshot_rows: int
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]  # class index into `classes`
    proba: npt.NDArray[np.float64]
    sensitive: dict[str, list[str]]
    training_sensitive: dict[str, list[str]]  # the training rows' attributes (representativeness)
    as_of_start: str
    as_of_end: str

    @property
    def predicted(self) -> npt.NDArray[np.intp]:
        return np.asarray(self.proba.argmax(axis=1), dtype=np.intp)

    def labels(self, indices: npt.NDArray[Any]) -> list[str]:
        return [self.classes[int(i)] for i in indices]


_lock = threading.Lock()
_validation_cache: OrderedDict[str, ValidationData] = OrderedDict()
_shap_cache: OrderedDict[str, npt.NDArray[np.float64]] = OrderedDict()


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def validation_data(version: ModelVersion) -> ValidationData:
    """Recomputed from the snapshot and the ONNX artifact whose hashes the version's signed manifest names (never
    the row's columns, which whoever holds the database credentials can change: docs/security.md)."""
    run = TrainingRun.objects.select_related("snapshot").get(pk=version.training_run_id)
    key = f"{version.pk}:{version.sha256}:{run.snapshot.sha256}:{run.seed}"
    cached = _validation_cache.get(key)
    if cached is not None:
        return cached
    trusted = manifest_trusted(version)
    rows = model_snapshot_rows(version)
    features = tuple(version.feature_names)
    X_all = np.asarray([[row["features"][name] for name in features] for row in rows], dtype=np.float32)
    classes = tuple(version.classes)
    y_all = np.asarray([classes.index(row["label"]) for row in rows], dtype=np.int64)
    train_idx, val_idx = train_validation_split(len(rows), run.seed)
    raw = np.clip(onnx_probabilities(artifact_get(trusted.onnx_sha256, suffix=".onnx"), X_all[val_idx]), 0.0, 1.0)
    proba = raw.astype(np.float64) / raw.astype(np.float64).sum(axis=1, keepdims=True)
    data = ValidationData(
        snapshot=run.snapshot,
        run=run,
        snapshot_rows=len(rows),
        feature_names=features,
        classes=classes,
        X=X_all[val_idx],
        y=y_all[val_idx],
        proba=proba,
        sensitive={name: [rows[i]["sensitive"][name] for i in val_idx] for name in SENSITIVE_ATTRIBUTES},
        training_sensitive={name: [rows[i]["sensitive"][name] for i in train_idx] for name in SENSITIVE_ATTRIBUTES},
        as_of_start=rows[0]["as_of"] if rows else "",
        as_of_end=rows[-1]["as_of"] if rows else "",
    )
    _remember(_validation_cache, key, data)
    return data


def shap_values(version: ModelVersion, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(rows, features, classes) SHAP values of `X` by the runtime's explainer for this version (the sklearn
    pipeline the ONNX was exported from, loaded and hash-checked by inference.runtime)."""
    from compliance.shap_global import shap_values_3d
    from inference.runtime import _explainer

    key = f"{version.pk}:{version.sha256}:{X.shape[0]}:{hash(X.tobytes())}"
    cached = _shap_cache.get(key)
    if cached is not None:
        return cached
    # The runtime's explainer is built only from files that hash to the version's signed manifest.
    (transform, explainer), _ = _explainer(version)
    # The float32 rows the ONNX model scores, widened: what sklearn and SHAP see when serving (inference.runtime).
    values = shap_values_3d(
        explainer(transform(X.astype(np.float64))).values,
        X.shape[0],
        len(version.feature_names),
        len(version.classes),
    )
    _remember(_shap_cache, key, values)
    return values


# --- Live clinician-labelled decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveDecisions:
    """Proposals of one version that a clinician decided: the model's action against the clinician's final step."""

    y_true: list[str]
    y_pred: list[str]
    sensitive: dict[str, list[str]]
    first: datetime | None
    last: datetime | None

    @property
    def n(self) -> int:
        return len(self.y_true)


def _step_class(from_step: int, to_step: int) -> str:
    # The label rule of inference.services.datasets.label_record: the direction of the step change.
    delta = to_step - from_step
    return CLASS_ORDER[1 + (delta > 0) - (delta < 0)]


def live_decisions(version: ModelVersion, *, start: datetime | None, end: datetime | None) -> LiveDecisions:
    logs = PredictionLog.objects.filter(model_version=version, decided_at__isnull=False, final_step__isnull=False)
    if start is not None:
        logs = logs.filter(created_at__gte=start)
    if end is not None:
        logs = logs.filter(created_at__lt=end)
    rows = (
        logs.select_related("patient")
        .only(
            "action",
            "from_step",
            "final_step",
            "created_at",
            "patient__sex",
            "patient__birth_year",
            "patient__race_ethnicity",
            "patient__skin_tone",
        )
        .order_by("created_at", "pk")
    )
    y_true: list[str] = []
    y_pred: list[str] = []
    sensitive: dict[str, list[str]] = {name: [] for name in SENSITIVE_ATTRIBUTES}
    first = last = None
    for log in rows.iterator(chunk_size=2000):
        assert log.final_step is not None
        y_true.append(_step_class(log.from_step, log.final_step))
        y_pred.append(log.action)
        for name, value in sensitive_attributes(log.patient, log.created_at).items():
            sensitive[name].append(value)
        first = first or log.created_at
        last = log.created_at
    return LiveDecisions(y_true=y_true, y_pred=y_pred, sensitive=sensitive, first=first, last=last)


def cache_clear() -> None:
    with _lock:
        _validation_cache.clear()
        _shap_cache.clear()


def model_identity(version: ModelVersion) -> dict[str, Any]:
    """Which model version a report is about, as every model report names it."""
    return {
        "id": version.pk,
        "sha256": version.sha256,
        "short_hash": version.short_hash,
        "family": version.family,
        "family_label": version.get_family_display(),
        "approval_state": version.approval_state,
        "approval_label": words(APPROVAL_WORDS, version.approval_state),
        "feature_set_version": version.feature_set_version,
    }
