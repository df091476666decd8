"""A model version's lineage, built once for `manage.py lineage` and the portal's model page: the snapshot it
was trained on, the run, its metrics and gates, whether its signed manifest still verifies, its sign-offs and
where it has served (DESIGN §3 "full lineage")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from governance.signoffs import model_signoff_list, model_signoff_verify, model_signoffs_missing
from inference.gates.outcome import GateOutcome
from inference.gates.result import StoredGateInvalid
from inference.labels import arm_label, serving_reason_label
from inference.manifest import ManifestVerification, manifest_verify
from inference.models import DatasetSnapshot, ModelVersion, TrainingRun
from inference.selectors import serving_history, serving_pointer_list


@dataclass(frozen=True)
class SignoffEntry:
    manifestation: str  # printed name, meaning and UTC time
    role: str  # as a label
    verified: bool  # the signature still matches the sign-off and this manifest
    acknowledged: tuple[str, ...]


@dataclass(frozen=True)
class ServingMove:
    at: datetime
    arm: str  # as a label
    towards: bool  # True: the arm moved to this version; False: away from it
    by: str  # username, or "system"
    reason: str  # as a label
    is_rollback: bool


@dataclass(frozen=True)
class ModelVersionLineage:
    version: ModelVersion
    run: TrainingRun
    snapshot: DatasetSnapshot
    gates: GateOutcome
    gates_unreadable: str  # why the stored gates could not be read ("" when they could); then `gates` is empty
    manifest: ManifestVerification
    signoffs: tuple[SignoffEntry, ...]
    missing_signoffs: tuple[str, ...]
    history: tuple[ServingMove, ...]  # oldest first
    serving_on: tuple[str, ...]  # the arms (as labels) it serves now


def model_version_lineage(version: ModelVersion) -> ModelVersionLineage:
    run = version.training_run
    try:
        gates, gates_unreadable = version.gate_outcome, ""
    except StoredGateInvalid as exc:  # an edited row: say so where the gates would be, and show the rest
        gates, gates_unreadable = GateOutcome(()), str(exc)
    signoffs = tuple(
        SignoffEntry(
            manifestation=signoff.signature.manifestation,
            role=signoff.get_role_display(),
            verified=model_signoff_verify(signoff),
            acknowledged=tuple(signoff.acknowledged_review_reasons),
        )
        for signoff in model_signoff_list(version=version)
    )
    history = tuple(
        ServingMove(
            at=event.set_at,
            arm=arm_label(event.arm),
            towards=event.model_version_id == version.pk,
            by=event.set_by.username if event.set_by else "system",
            reason=serving_reason_label("rollback" if event.is_rollback else event.reason),
            is_rollback=event.is_rollback,
        )
        for event in list(serving_history(version=version))[::-1]
    )
    return ModelVersionLineage(
        version=version,
        run=run,
        snapshot=run.snapshot,
        gates=gates,
        gates_unreadable=gates_unreadable,
        manifest=manifest_verify(version),
        signoffs=signoffs,
        missing_signoffs=tuple(model_signoffs_missing(version=version)),
        history=history,
        serving_on=tuple(
            arm_label(pointer.arm) for pointer in serving_pointer_list() if pointer.model_version_id == version.pk
        ),
    )
