"""Compliance export writes. Every export and every download is audited in the transaction that records it, and every
patient whose data an export disclosed gets an `export.created` event in their accounting (issue 9).

Life of an export: `export_request` checks who may export what, validates the parameters against the records and
queues the job (enqueued on commit); `export_run` (the Celery task's service) claims it with a conditional update,
so running it twice is a no-op, writes the files into a private directory, and finishes in one transaction: status,
files with their SHA-256 and size, and the `export.created` event. The disclosures are then appended in small
transactions (`export_disclosures_record`), resumable by the sweeper. Streamed downloads (`export_stream`) follow
the same path without keeping a file.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record, audit_record_denied
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import User
from compliance.errors import ExportFileChanged, ExportInvalid, ExportNotBuilt, ExportNotReady, ExportRefused
from compliance.listings import DisclosureCollector, Listing, csv_chunks, file_digest, jsonl_chunks
from compliance.models import (
    EXPORT_TRANSITIONS,
    Export,
    ExportDelivery,
    ExportDisclosure,
    ExportFile,
    ExportFormat,
    ExportKind,
    ExportStatus,
)
from compliance.outputs import report_files_write
from compliance.permissions import export_role_allowed
from compliance.registry import REPORTS
from compliance.reports import BuildRequest, Produced, ReportSpec
from compliance.signals import export_requested
from governance.accounting import PURPOSE_LABELS

logger = logging.getLogger(__name__)

DISCLOSURE_BATCH = 200
_PROGRESS_SECONDS = 1.0


def export_root() -> Path:
    return Path(settings.EXPORT_ROOT) if settings.EXPORT_ROOT else Path(settings.ARTIFACT_ROOT) / "exports"


def export_directory(export_id: int) -> Path:
    return export_root() / str(export_id)


def export_file_path(export_file: ExportFile) -> Path:
    return export_directory(export_file.export_id) / export_file.name


# --- Requesting ------------------------------------------------------------------------------------------


def _refuse(actor: User, kind: str, reason: str) -> None:
    audit_record_denied(
        action=AuditAction.EXPORT_CREATED, object_type="export", object_id=kind, actor=actor, reason=reason
    )


def export_spec_for(*, actor: User, kind: str) -> ReportSpec:
    """The spec of a kind the actor may export; refusals are audited. Role first, then "not built yet", so a
    clinician asking for a model card is refused (403) and an ML engineer told it is not built (501)."""
    if kind not in ExportKind.values:
        raise ExportInvalid("Unknown kind of export.", fields={"kind": ["Choose a kind of export from the list."]})
    if not export_role_allowed(actor.role, kind):
        _refuse(actor, kind, "wrong_role")
        raise ExportRefused(f"Your role cannot export a {ExportKind(kind).label}.")
    if kind not in REPORTS:
        raise ExportNotBuilt(f"The {ExportKind(kind).label} export is not built yet; nothing was exported.")
    return REPORTS[kind]


def _prepare(
    actor: User, spec: ReportSpec, raw: Mapping[str, str], formats: Sequence[str], purpose: str
) -> dict[str, Any]:
    if not formats or any(f not in spec.formats for f in formats):
        allowed = ", ".join(sorted(spec.formats))
        raise ExportInvalid("Choose the formats to export.", fields={"formats": [f"Use one or more of: {allowed}."]})
    if purpose not in PURPOSE_LABELS:
        raise ExportInvalid("Say why the export is made.", fields={"purpose": ["Choose a purpose from the list."]})
    try:
        return spec.prepare(actor, raw)
    except NotFound:
        _refuse(actor, spec.kind, "out_of_scope")
        raise


def export_request(
    *,
    actor: User,
    kind: str,
    parameters: Mapping[str, str],
    formats: Sequence[str],
    purpose: str = "compliance_review",
    enqueue: bool = True,
) -> Export:
    """Queue an export job for `actor` (who is audited as its requester and disclosee) and enqueue it on commit.
    The export command runs the job itself (enqueue=False); running it twice would be harmless anyway."""
    spec = export_spec_for(actor=actor, kind=kind)
    prepared = _prepare(actor, spec, parameters, formats, purpose)
    ordered = [f for f in ExportFormat.values if f in set(formats)]
    with transaction.atomic():
        export = Export.objects.create(
            kind=kind, parameters=prepared, formats=ordered, purpose=purpose, requested_by=actor,
            created_at=timezone.now(), delivery=ExportDelivery.FILE,
        )  # fmt: skip
        if enqueue:
            transaction.on_commit(partial(_enqueue, export.pk))
    return export


def _enqueue(export_id: int) -> None:
    # compliance.tasks imports this module; its receiver (connected in ComplianceConfig.ready) enqueues the run.
    export_requested.send(sender=Export, export_id=export_id)


# --- Running ---------------------------------------------------------------------------------------------


def _transition_allowed(current: str, target: str) -> bool:
    return target in EXPORT_TRANSITIONS[ExportStatus(current)]


def _progress_recorder(export_id: int) -> Callable[[int, int], None]:
    """Progress written in its own autocommit update at most once a second, so a page polling the job sees it
    move while the job runs (and a stale heartbeat tells the sweeper the worker died)."""
    last = [0.0]

    def record(done: int, total: int) -> None:
        now = timezone.now()
        if now.timestamp() - last[0] < _PROGRESS_SECONDS:
            return
        last[0] = now.timestamp()
        percent = min(99, int(100 * done / total)) if total > 0 else 0
        Export.objects.filter(pk=export_id, status=ExportStatus.RUNNING).update(
            progress=percent, progress_done=done, progress_total=total, heartbeat_at=now
        )

    return record


def _produce(export: Export, directory: Path) -> Produced:
    spec = REPORTS[export.kind]
    request = BuildRequest(
        actor=export.requested_by, parameters=export.parameters, generated_at=timezone.now(), export_id=export.pk,
        progress=_progress_recorder(export.pk),
    )  # fmt: skip
    if spec.produce is not None:
        return spec.produce(request, directory)
    return report_files_write(spec, request, export.formats, directory, progress=request.progress)


def export_run(*, export_id: int) -> Export:
    """Run a queued export. Idempotent: only a QUEUED export is claimed (a conditional update whose count must be 1),
    and only the claimant that is still RUNNING can finish it, so a duplicate delivery or a second worker does
    nothing."""
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1, progress=0
    )
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    if claimed != 1:
        return export
    partial_dir = export_root() / f"{export_id}.partial-{secrets.token_hex(4)}"
    try:
        produced = _produce(export, partial_dir)
    except ApplicationError as exc:
        shutil.rmtree(partial_dir, ignore_errors=True)
        return _fail(export, exc.code, exc.message)
    except Exception:  # the job's boundary: whatever broke, the export is marked failed, never left running
        logger.exception("export %s failed", export_id)
        shutil.rmtree(partial_dir, ignore_errors=True)
        return _fail(export, "export_failed", "The export failed; the error is in the worker's log.")
    return _finish(export, produced, partial_dir)


def _fail(export: Export, code: str, message: str) -> Export:
    Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING).update(
        status=ExportStatus.FAILED, finished_at=timezone.now(), error_code=code[:64], error_message=message[:300]
    )
    export.refresh_from_db()
    return export


def _finish(export: Export, produced: Produced, partial_dir: Path) -> Export:
    final_dir = export_directory(export.pk)
    now = timezone.now()
    with transaction.atomic():
        if not _transition_allowed(ExportStatus.RUNNING, ExportStatus.FINISHED):  # pragma: no cover - table guard
            raise RuntimeError("export transitions lost RUNNING → FINISHED")
        finished = Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING).update(
            status=ExportStatus.FINISHED, finished_at=now, progress=100, heartbeat_at=now,
            patients_disclosed=len(produced.patient_ids),
        )  # fmt: skip
        if finished != 1:
            # The sweeper re-queued it and another worker is on it, or it was failed meanwhile: leave it to them.
            shutil.rmtree(partial_dir, ignore_errors=True)
            transaction.set_rollback(True)
            export.refresh_from_db()
            return export
        if final_dir.exists():
            shutil.rmtree(final_dir)  # left by an attempt whose commit failed; no file row points into it
        partial_dir.rename(final_dir)
        ExportFile.objects.bulk_create(
            ExportFile(export=export, name=f.name, format=f.format, sha256=f.sha256, size=f.size, created_at=now)
            for f in produced.files
        )
        ExportDisclosure.objects.bulk_create(
            ExportDisclosure(export=export, patient_id=patient_id) for patient_id in sorted(produced.patient_ids)
        )
        _created_audit(export, [(f.name, f.sha256, f.size) for f in produced.files], produced)
    export_disclosures_record(export_id=export.pk)
    export.refresh_from_db()
    return export


def _created_audit(export: Export, files: list[tuple[str, str, int]], produced: Produced) -> None:
    audit_record(
        action=AuditAction.EXPORT_CREATED,
        object_type="export",
        object_id=export.pk,
        actor=export.requested_by,
        payload={
            "kind": export.kind,
            "formats": list(export.formats),
            "delivery": export.delivery,
            "purpose": export.purpose,
            "parameters": export.parameters,
            "files": [{"name": name, "sha256": sha256, "size": size} for name, sha256, size in files],
            "patients": len(produced.patient_ids),
            "rows": produced.rows,
        },
    )
    if export.kind == ExportKind.LEDGER_VERIFICATION and produced.document is not None:
        _verified_audit(export, produced.document.data)


def _verified_audit(export: Export, data: Mapping[str, object]) -> None:
    """The verification's result, recorded in the ledger it verified: the ledger page shows the newest one."""
    result = data["result"]
    witness = data["witness"]
    assert isinstance(result, dict)
    assert isinstance(witness, dict)
    audit_record(
        action=AuditAction.LEDGER_VERIFIED,
        object_type="ledger_verification",
        object_id=export.pk,
        actor=export.requested_by,
        payload={
            "ok": result["ok"], "events_checked": result["events_checked"],
            "checkpoints_checked": result["checkpoints_checked"], "first_broken_seq": result["first_broken_seq"],
            "kind": result["kind"], "witnessed": witness["compared"], "witness_entries": witness["entries"],
            "witness_head_seq": witness["head_seq"], "unwitnessed_checkpoints": len(witness["unwitnessed_checkpoints"]),
        },
    )  # fmt: skip


def export_disclosures_record(*, export_id: int) -> int:
    """Append the `export.created` event to each disclosed patient's record, DISCLOSURE_BATCH per transaction.
    Resumable and never doubled: a row is locked, audited and marked in one transaction."""
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    written = 0
    while True:
        with transaction.atomic():
            batch = list(
                ExportDisclosure.objects.select_for_update(skip_locked=True)
                .filter(export_id=export_id, audit_seq__isnull=True)
                .order_by("pk")[:DISCLOSURE_BATCH]
            )
            if not batch:
                return written
            for row in batch:
                event = audit_record(
                    action=AuditAction.EXPORT_CREATED,
                    object_type="patient",
                    object_id=row.patient_id,
                    actor=export.requested_by,
                    payload={"export_id": export.pk, "export": export.kind, "purpose": export.purpose},
                )
                row.audit_seq = event.seq
            ExportDisclosure.objects.bulk_update(batch, ["audit_seq"])
            written += len(batch)


def exports_sweep(*, now: datetime | None = None) -> int:
    """Re-enqueue exports left behind (DESIGN §7): queued ones nobody picked up, running ones whose worker stopped
    beating, and finished ones whose disclosures were not all written."""
    now = now or timezone.now()
    stale = now - timedelta(minutes=settings.EXPORT_STALE_MINUTES)
    dead = list(
        Export.objects.filter(
            delivery=ExportDelivery.FILE, status=ExportStatus.RUNNING, heartbeat_at__lt=stale
        ).values_list("pk", flat=True)
    )
    Export.objects.filter(pk__in=dead, status=ExportStatus.RUNNING).update(status=ExportStatus.QUEUED)
    waiting = set(dead) | set(
        Export.objects.filter(
            delivery=ExportDelivery.FILE, status=ExportStatus.QUEUED, created_at__lt=stale
        ).values_list("pk", flat=True)
    )
    for export_id in sorted(waiting):
        _enqueue(export_id)
    unfinished = (
        ExportDisclosure.objects.filter(audit_seq__isnull=True, export__status=ExportStatus.FINISHED)
        .values_list("export_id", flat=True)
        .distinct()
    )
    for export_id in list(unfinished):
        export_disclosures_record(export_id=export_id)
    return len(waiting)


# --- Downloading -----------------------------------------------------------------------------------------


def export_file_open(
    *, actor: User, export: Export, name: str, purpose: str = "compliance_review"
) -> tuple[ExportFile, Path]:
    """Check a finished export's file against the SHA-256 recorded when it was written, and audit the download.
    The caller (a view, after export_get_visible) streams the file."""
    if export.status != ExportStatus.FINISHED or export.delivery != ExportDelivery.FILE:
        raise ExportNotReady("This export has no files to download yet.")
    export_file = ExportFile.objects.filter(export=export, name=name).first()
    if export_file is None:
        raise NotFound("No such file in this export.")
    path = export_file_path(export_file)
    sha256, size = file_digest(path) if path.exists() else ("", -1)
    if sha256 != export_file.sha256 or size != export_file.size:
        audit_record_denied(
            action=AuditAction.EXPORT_DOWNLOADED, object_type="export", object_id=export.pk, actor=actor,
            reason="file_changed",
        )  # fmt: skip
        raise ExportFileChanged("This file changed after it was written; it is not disclosed. Export it again.")
    with transaction.atomic():
        audit_record(
            action=AuditAction.EXPORT_DOWNLOADED,
            object_type="export",
            object_id=export.pk,
            actor=actor,
            payload={
                "file": export_file.name,
                "sha256": export_file.sha256,
                "size": export_file.size,
                "purpose": purpose,
            },
        )
    return export_file, path


# --- Streaming -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedExport:
    export: Export
    filename: str
    content_type: str
    chunks: Iterator[bytes]


_STREAM_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSONL: "application/x-ndjson"}


def export_stream(
    *, actor: User, kind: str, parameters: Mapping[str, str], fmt: str, purpose: str = "compliance_review"
) -> StreamedExport:
    """A listing streamed straight to the requester (StreamingHttpResponse) from a server-side cursor: nothing is
    kept. The export is audited when it starts; the disclosed patients and the digest of what was sent are recorded
    when the stream ends (or is cut off), since only then are they known."""
    spec = export_spec_for(actor=actor, kind=kind)
    if spec.listing is None or fmt not in _STREAM_TYPES:
        raise ExportInvalid("Only CSV and JSON Lines listings stream.", fields={"format": ["Use csv or jsonl."]})
    prepared = _prepare(actor, spec, parameters, [fmt], purpose)
    now = timezone.now()
    with transaction.atomic():
        export = Export.objects.create(
            kind=kind, parameters=prepared, formats=[fmt], purpose=purpose, requested_by=actor, created_at=now,
            delivery=ExportDelivery.STREAM, status=ExportStatus.RUNNING, started_at=now, heartbeat_at=now,
            attempts=1,
        )  # fmt: skip
    request = BuildRequest(actor=actor, parameters=prepared, generated_at=now, export_id=export.pk)
    listing = spec.listing(request)
    name = f"{listing.name}-{export.pk}.{fmt}"
    return StreamedExport(export, name, _STREAM_TYPES[ExportFormat(fmt)], _stream_chunks(export, listing, fmt, name))


def _stream_chunks(export: Export, listing: Listing, fmt: str, name: str) -> Iterator[bytes]:
    digest = hashlib.sha256()
    size = 0
    rows = [0]
    complete = False
    encode = csv_chunks if fmt == ExportFormat.CSV else jsonl_chunks
    try:
        for chunk in encode(listing, lambda done: rows.__setitem__(0, done)):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        complete = True
    finally:
        collector = listing.collector or DisclosureCollector()
        patients = collector.resolved()
        now = timezone.now()
        with transaction.atomic():
            Export.objects.filter(pk=export.pk).update(
                status=ExportStatus.FINISHED if complete else ExportStatus.FAILED, finished_at=now, progress=100,
                patients_disclosed=len(patients), error_code="" if complete else "stream_interrupted",
                error_message="" if complete else "The download was cut off; what was sent is accounted for.",
            )  # fmt: skip
            ExportFile.objects.create(
                export=export, name=name, format=fmt, sha256=digest.hexdigest(), size=size, created_at=now
            )
            ExportDisclosure.objects.bulk_create(
                ExportDisclosure(export=export, patient_id=patient_id) for patient_id in sorted(patients)
            )
            export.refresh_from_db()
            _created_audit(
                export, [(name, digest.hexdigest(), size)], Produced(files=(), patient_ids=frozenset(patients),
                                                                     document=None, rows=rows[0]),
            )  # fmt: skip
        export_disclosures_record(export_id=export.pk)
