"""Export jobs: progress, idempotent when run twice, failures recorded, left-behind jobs swept, downloads checked
against the recorded SHA-256, and the pages that start them and list them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

from django.test import Client
from django.utils import timezone

from clinaiops.audit.models import AuditAction, AuditEvent, AuditOutcome
from clinaiops.audit.synthetic import synthetic_ledger_create
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from compliance.models import Export, ExportDisclosure, ExportStatus
from compliance.services import export_file_path, export_request, export_run, exports_sweep
from tests.compliance.conftest import streamed


def _created_events(export: Export) -> int:
    return AuditEvent.objects.filter(
        action=AuditAction.EXPORT_CREATED, object_type="export", object_id=str(export.pk)
    ).count()


def test_running_a_job_twice_exports_once(
    decided: Recommendation, compliance_officer: User, patient: Patient, run_export: Callable[..., Export]
) -> None:
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json", "pdf"],
    )
    files = {(f.name, f.sha256) for f in export.files.all()}
    again = export_run(export_id=export.pk)
    assert (again.status, {(f.name, f.sha256) for f in again.files.all()}) == (ExportStatus.FINISHED, files)
    assert _created_events(export) == 1
    disclosures = AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED, object_type="patient")
    assert list(disclosures.values_list("object_id", flat=True)) == [str(patient.pk)]


def test_a_job_reports_progress_while_it_runs(db: None, compliance_officer: User) -> None:
    from compliance import services

    synthetic_ledger_create(12_000)
    seen: list[tuple[int, int, int]] = []
    real = services._progress_recorder

    def spying(export_id: int) -> Callable[[int, int], None]:
        record = real(export_id)

        def both(done: int, total: int) -> None:
            record(done, total)  # what a page polling the job reads
            seen.append(Export.objects.values_list("progress", "progress_done", "progress_total").get(pk=export_id))

        return both

    export = export_request(actor=compliance_officer, kind="audit_range", parameters={}, formats=["csv"], enqueue=False)
    with (
        mock.patch.object(services, "_progress_recorder", spying),
        mock.patch.object(services, "_PROGRESS_SECONDS", 0.0),
        mock.patch("compliance.listings.PROGRESS_EVERY", 2000),
    ):
        export = export_run(export_id=export.pk)
    assert (export.status, export.progress) == (ExportStatus.FINISHED, 100)
    moving = [row for row in seen if row[1]]
    assert moving[:5] == [
        (16, 2000, 12_000),
        (33, 4000, 12_000),
        (50, 6000, 12_000),
        (66, 8000, 12_000),
        (83, 10_000, 12_000),
    ]
    assert moving[-1] == (99, 12_000, 12_000)  # 100 only once the files are recorded


def test_a_failed_job_is_marked_failed_and_discloses_nothing(
    decided: Recommendation, compliance_officer: User, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        mock.patch("compliance.outputs.html_pdf", side_effect=OSError("no fonts")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        export = export_request(
            actor=compliance_officer,
            kind="decision_record",
            parameters={"recommendation_id": str(decided.pk)},
            formats=["pdf"],
        )
    export.refresh_from_db()
    assert (export.status, export.error_code) == (ExportStatus.FAILED, "export_failed")
    assert "no fonts" not in export.error_message  # the message is safe to show; the detail is in the log
    assert not export.files.exists()
    assert _created_events(export) == 0


def test_the_sweeper_requeues_a_job_whose_worker_died_and_finishes_unwritten_disclosures(
    decided: Recommendation,
    compliance_officer: User,
    patient: Patient,
    run_export: Callable[..., Export],
    django_capture_on_commit_callbacks: Any,
) -> None:
    stale = timezone.now() - timedelta(hours=1)
    export = export_request(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json"],
        enqueue=False,
    )
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING, heartbeat_at=stale, created_at=stale)
    disclosures = AuditEvent.objects.filter(action=AuditAction.EXPORT_CREATED, object_type="patient")
    # The sweeper re-runs the job; this time the worker dies right after the export finished, before it wrote the
    # patients' disclosures (simulated by that step doing nothing).
    with (
        mock.patch("compliance.services.export_disclosures_record"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert exports_sweep() == 1
    export.refresh_from_db()
    assert (export.status, export.attempts) == (ExportStatus.FINISHED, 1)
    assert disclosures.count() == 0
    assert ExportDisclosure.objects.filter(export=export, audit_seq__isnull=True).count() == 1
    # The next sweeps write the missing disclosure, once.
    exports_sweep()
    exports_sweep()
    assert list(disclosures.values_list("object_id", flat=True)) == [str(patient.pk)]
    assert ExportDisclosure.objects.filter(export=export, audit_seq__isnull=True).count() == 0


def test_a_file_changed_on_disk_is_not_disclosed(
    decided: Recommendation,
    compliance_officer: User,
    run_export: Callable[..., Export],
    portal_client_for: Callable[[User], Client],
) -> None:
    export = run_export(
        actor=compliance_officer,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["json"],
    )
    stored = export.files.get()
    path = export_file_path(stored)
    path.write_text(path.read_text().replace("Dr Assigned", "Dr Someone"))
    client = portal_client_for(compliance_officer)
    response = client.get(f"/compliance/exports/{export.pk}/files/{stored.name}", follow=True)
    assert b"This file changed after it was written" in response.content
    refused = AuditEvent.objects.get(action=AuditAction.EXPORT_DOWNLOADED)
    assert (refused.outcome, refused.payload_data["reason"]) == (AuditOutcome.DENIED, "file_changed")


def test_downloads_are_audited_and_scoped_to_who_may_see_the_export(
    decided: Recommendation,
    clinician: User,
    unassigned_clinician: User,
    compliance_officer: User,
    ml_engineer: User,
    patient: Patient,
    run_export: Callable[..., Export],
    portal_client_for: Callable[[User], Client],
) -> None:
    export = run_export(
        actor=clinician,
        kind="decision_record",
        parameters={"recommendation_id": str(decided.pk)},
        formats=["pdf"],
        purpose="care",
    )
    name = export.files.get().name
    url = f"/compliance/exports/{export.pk}/files/{name}"
    own = portal_client_for(clinician).get(url)
    assert own.status_code == 200
    assert own["Content-Disposition"].startswith("attachment")
    assert streamed(own).startswith(b"%PDF")
    assert portal_client_for(compliance_officer).get(url).status_code == 200
    assert portal_client_for(unassigned_clinician).get(url).status_code == 404
    assert portal_client_for(ml_engineer).get(url).status_code == 404
    assert portal_client_for(patient.user).get(url).status_code == 403
    downloads = AuditEvent.objects.filter(action=AuditAction.EXPORT_DOWNLOADED, outcome=AuditOutcome.SUCCESS)
    assert list(downloads.values_list("actor", flat=True)) == [clinician.pk, compliance_officer.pk]
    assert downloads.first().payload_data["sha256"] == export.files.get().sha256  # type: ignore[union-attr]


def test_the_pages_start_a_job_show_its_progress_and_list_it_for_download(
    db: None,
    compliance_officer: User,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    synthetic_ledger_create(300, checkpoint_every=100)
    client = portal_client_for(compliance_officer)
    page = client.get("/compliance/exports/?kind=audit_range").content.decode()
    assert "Start the audit range report export" in page
    queued = client.post("/compliance/exports/start/", {"kind": "audit_range", "formats": ["csv"], "purpose": "audit"})
    detail = client.get(queued["Location"]).content.decode()
    assert "Queued" in detail
    assert 'http-equiv="refresh"' in detail  # it polls while the job runs
    assert "<progress" in detail
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            "/compliance/exports/start/",
            {
                "kind": "evidence_bundle",
                "formats": ["zip"],
                "purpose": "regulator_request",
                "from": "2026-01-01",
                "to": "2026-01-01",
            },
        )
    finished = client.get(started["Location"]).content.decode()
    assert "Finished" in finished
    assert 'http-equiv="refresh"' not in finished
    assert "request from a regulator" in finished
    listing = client.get("/compliance/exports/").content.decode()
    zip_name = re.search(r"files/(evidence-bundle-\d+\.zip)", listing)
    assert zip_name is not None
    # A clinician sees only their own exports.
    assert "evidence-bundle" not in portal_client_for(clinician).get("/compliance/exports/").content.decode()
    refused = client.post(
        "/compliance/exports/start/", {"kind": "accounting", "formats": ["json"], "patient_code": "P-9999"}, follow=True
    )
    assert b"No patient has that code" in refused.content
