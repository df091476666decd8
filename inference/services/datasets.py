"""Labels and dataset snapshots: what a decision taught, frozen into content-addressed training sets.

A snapshot is trusted by signature, never by its row (docs/security.md, "The served model"). When it is made,
the model signing key signs an attestation of its hash, feature set and row count, kept beside the file
(`<sha256>.json.sig` under ARTIFACT_ROOT). Training reads a snapshot only through `snapshot_rows_attested`;
drift and the non-inferiority gate read a served model's snapshot through `model_snapshot_rows`, whose hash
comes from that model's signed manifest. A mismatch raises SnapshotUntrusted (a kind of ArtifactTampered).
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.care.models import Patient
from clinaiops.core.canonical import canonical_bytes
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import User
from inference.artifacts import (
    ArtifactTampered,
    ModelUntrusted,
    artifact_get,
    artifact_put,
    sidecar_get,
    sidecar_put,
)
from inference.feature_source import feature_window_load
from inference.features import FEATURE_NAMES, FEATURE_SET_VERSION, feature_vector
from inference.manifest import manifest_trusted, model_signing_key, model_trusted_public_keys
from inference.models import CLASS_ORDER, DatasetSnapshot, ModelVersion, TrainingLabel
from inference.quality import snapshot_quality
from inference.selectors import SnapshotRow

logger = logging.getLogger(__name__)

SNAPSHOT_ATTESTATION_SCHEMA = "clinaiops.snapshot-attestation/1"
ATTESTATION_SUFFIX = ".json.sig"


class SnapshotUntrusted(ModelUntrusted):
    """A dataset snapshot whose file, row or attestation is not what a trusted key signed."""


def _untrusted(message: str) -> SnapshotUntrusted:
    # Logged where it is found: the daily drift task treats a refusal like "nothing to compare" and moves on.
    logger.error("dataset snapshot refused: %s", message)
    return SnapshotUntrusted(message)


def age_band(age: int) -> str:
    if age < 45:
        return "<45"
    if age < 65:
        return "45-64"
    if age < 75:
        return "65-74"
    return "75+"


def sensitive_attributes(patient: Patient, as_of: datetime) -> dict[str, str]:
    return {
        "sex": patient.sex,
        "age_band": age_band(as_of.year - patient.birth_year),
        "race_ethnicity": patient.race_ethnicity,
        "skin_tone": f"type {patient.skin_tone}",
    }


def label_record(
    *, patient: Patient, as_of: datetime, from_step: int, to_step: int, provenance: str, source_ref: str
) -> TrainingLabel | None:
    """Record what was decided at a decision point, with the features as of that moment. Idempotent on
    source_ref. Caller holds the transaction."""
    if TrainingLabel.objects.filter(source_ref=source_ref).exists():
        return None
    features = feature_vector(feature_window_load(patient=patient, as_of=as_of, current_step=from_step))
    delta = to_step - from_step
    label = CLASS_ORDER[1 + (delta > 0) - (delta < 0)]
    try:
        with transaction.atomic():
            created = TrainingLabel.objects.create(
                patient=patient,
                as_of=as_of,
                feature_set_version=FEATURE_SET_VERSION,
                features=features,
                from_step=from_step,
                label=label,
                provenance=provenance,
                source_ref=source_ref,
                created_at=timezone.now(),
            )
    except IntegrityError:  # concurrent retry of the same source
        return None
    audit_record(
        action=AuditAction.LABEL_RECORDED,
        object_type="training_label",
        object_id=created.pk,
        system_reason="decision_feedback",
        payload={"patient_id": patient.pk, "source_ref": source_ref, "label": label, "provenance": provenance},
    )
    return created


def _snapshot_rows(labels: list[TrainingLabel]) -> list[dict[str, object]]:
    """The rows as inference.selectors.SnapshotRow reads them back (as_of becomes ISO text when encoded)."""
    return [
        {
            "label_id": label.pk,
            "as_of": label.as_of,
            "features": {name: label.features[name] for name in FEATURE_NAMES},
            "label": label.label,
            "provenance": label.provenance,
            "sensitive": sensitive_attributes(label.patient, label.as_of),
        }
        for label in labels
    ]


@transaction.atomic
def dataset_snapshot_create(*, actor: User | None, until: datetime | None = None) -> DatasetSnapshot:
    """Freeze every label up to `until` into a content-addressed snapshot with its data-quality report."""
    labels = list(
        TrainingLabel.objects.filter(feature_set_version=FEATURE_SET_VERSION, as_of__lte=until or timezone.now())
        .select_related("patient")
        .order_by("as_of", "pk")
    )
    if not labels:
        raise ValidationFailed("There are no labels to snapshot yet.", code="empty_snapshot")
    rows = _snapshot_rows(labels)
    data = canonical_bytes({"feature_set_version": FEATURE_SET_VERSION, "rows": rows})
    sha256 = artifact_put(data, suffix=".json")
    # Signed from the bytes just computed from the labels, so an existing snapshot is (re-)attested too.
    snapshot_attest(sha256=sha256, feature_set_version=FEATURE_SET_VERSION, row_count=len(rows))
    existing = DatasetSnapshot.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    quality = snapshot_quality(rows)
    snapshot = DatasetSnapshot.objects.create(
        sha256=sha256,
        feature_set_version=FEATURE_SET_VERSION,
        created_at=timezone.now(),
        created_by=actor,
        time_start=labels[0].as_of,
        time_end=labels[-1].as_of,
        row_count=len(rows),
        provenance_counts=dict(Counter(label.provenance for label in labels)),
        class_counts=dict(Counter(label.label for label in labels)),
        quality_report=quality.report,
        quality_passed=quality.passed,
    )
    audit_record(
        action=AuditAction.SNAPSHOT_CREATED,
        object_type="dataset_snapshot",
        object_id=snapshot.pk,
        actor=actor,
        system_reason="" if actor else "scheduled",
        payload={"sha256": sha256, "rows": len(rows), "quality_passed": quality.passed},
    )
    return snapshot


def _attestation_content(*, sha256: str, feature_set_version: str, row_count: int) -> dict[str, object]:
    return {
        "schema": SNAPSHOT_ATTESTATION_SCHEMA,
        "sha256": sha256,
        "feature_set_version": feature_set_version,
        "rows": row_count,
    }


def snapshot_attest(*, sha256: str, feature_set_version: str, row_count: int) -> None:
    """Sign that the snapshot file `sha256` is one this system made, with the model signing key."""
    key = model_signing_key()
    content = _attestation_content(sha256=sha256, feature_set_version=feature_set_version, row_count=row_count)
    sidecar_put(
        sha256,
        suffix=ATTESTATION_SUFFIX,
        data=canonical_bytes(
            {"content": content, "key_id": key.key_id, "signature": key.sign(canonical_bytes(content))}
        ),
    )


def _snapshot_rows_read(sha256: str) -> list[SnapshotRow]:
    rows: list[SnapshotRow] = json.loads(artifact_get(sha256, suffix=".json"))["rows"]
    return rows


def snapshot_rows_attested(snapshot: DatasetSnapshot) -> list[SnapshotRow]:
    """The rows of a snapshot a trusted key attested, for training a new model. The attestation must name this
    row's hash, feature set and row count, and the file must hash to it; else SnapshotUntrusted (or
    ArtifactMissing). A snapshot made before attestations existed is attested again by making it anew
    (`dataset_snapshot_create` over the same labels gives the same hash)."""
    what = f"snapshot {snapshot.sha256[:12]}"
    raw = sidecar_get(snapshot.sha256, suffix=ATTESTATION_SUFFIX)
    if raw is None:
        raise _untrusted(f"{what} has no signed attestation; make a fresh snapshot to train from")
    try:
        stored = json.loads(raw)
        content, key_id, signature = stored["content"], stored["key_id"], stored["signature"]
        public = model_trusted_public_keys().get(key_id)
        if public is None:
            raise _untrusted(f"{what}: its attestation key {key_id!r} is not trusted")
        public.verify(base64.b64decode(signature, validate=True), canonical_bytes(content))
    except SnapshotUntrusted:
        raise
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise _untrusted(f"{what}: its attestation does not verify") from exc
    expected = _attestation_content(
        sha256=snapshot.sha256, feature_set_version=snapshot.feature_set_version, row_count=snapshot.row_count
    )
    if content != expected:
        raise _untrusted(f"{what}: the database row differs from its signed attestation")
    rows = _snapshot_rows_read(snapshot.sha256)
    if len(rows) != snapshot.row_count:
        raise _untrusted(f"{what}: the file's row count differs from its signed attestation")
    return rows


def model_snapshot_rows(version: ModelVersion) -> list[SnapshotRow]:
    """The training rows of a registered model, for drift and the gates: the file whose hash the
    model's signed manifest names (inference.manifest.manifest_trusted), never the hash in the snapshot row.
    Raises ModelUntrusted for an untrusted manifest, SnapshotUntrusted when the row disagrees with it, and
    ArtifactTampered / ArtifactMissing for the file."""
    signed_sha256 = manifest_trusted(version).snapshot_sha256
    snapshot = DatasetSnapshot.objects.filter(runs__pk=version.training_run_id).first()
    if snapshot is None or snapshot.sha256 != signed_sha256:
        raise _untrusted(
            f"model {version.short_hash}: its training snapshot row differs from the signed manifest's "
            f"{signed_sha256[:12]}"
        )
    try:
        return _snapshot_rows_read(signed_sha256)
    except ArtifactTampered as exc:
        raise _untrusted(str(exc)) from exc
