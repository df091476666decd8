from __future__ import annotations

from django.conf import settings
from django.db import models

from governance.accounting import EXPORT_KIND_LABELS


class ExportKind(models.TextChoices):
    DECISION_RECORD = "decision_record", EXPORT_KIND_LABELS["decision_record"]
    DECISIONS = "decisions", EXPORT_KIND_LABELS["decisions"]
    AUDIT_RANGE = "audit_range", EXPORT_KIND_LABELS["audit_range"]
    ACCOUNTING = "accounting", EXPORT_KIND_LABELS["accounting"]
    EVIDENCE_BUNDLE = "evidence_bundle", EXPORT_KIND_LABELS["evidence_bundle"]
    LEDGER_VERIFICATION = "ledger_verification", EXPORT_KIND_LABELS["ledger_verification"]
    # Declared now so the permission table is complete; built in the second round (issue 9) on inference's typed gates.
    MODEL_CARD = "model_card", EXPORT_KIND_LABELS["model_card"]
    FAIRNESS = "fairness", EXPORT_KIND_LABELS["fairness"]
    EXPLAINABILITY = "explainability", EXPORT_KIND_LABELS["explainability"]


class ExportFormat(models.TextChoices):
    JSON = "json", "JSON"
    HTML = "html", "HTML"
    PDF = "pdf", "PDF"
    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"
    ZIP = "zip", "Signed evidence bundle (zip)"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


# QUEUED → RUNNING when a worker claims it; RUNNING → QUEUED only when the sweeper finds its worker dead.
EXPORT_TRANSITIONS: dict[str, frozenset[str]] = {
    ExportStatus.QUEUED: frozenset({ExportStatus.RUNNING, ExportStatus.FAILED}),
    ExportStatus.RUNNING: frozenset({ExportStatus.FINISHED, ExportStatus.FAILED, ExportStatus.QUEUED}),
    ExportStatus.FINISHED: frozenset(),
    ExportStatus.FAILED: frozenset(),
}


class ExportDelivery(models.TextChoices):
    FILE = "file", "Files kept for download"
    STREAM = "stream", "Streamed straight to the requester"


class Export(models.Model):
    """One compliance export: what was asked for (kind, parameters, formats), by whom and why, and how the job
    went. Its files are ExportFile rows. Parameters hold ids, codes and dates only, never free text."""

    kind = models.CharField(max_length=32, choices=ExportKind.choices)
    parameters = models.JSONField(default=dict)
    formats = models.JSONField(default=list)
    delivery = models.CharField(max_length=8, choices=ExportDelivery.choices, default=ExportDelivery.FILE)
    purpose = models.CharField(max_length=32, default="compliance_review")
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="exports")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A stable code and a message safe to show (no PHI) when the job failed.
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    # How many patients the export disclosed (each one also has an export.created event in their accounting).
    patients_disclosed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["requested_by", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="export_progress_percent"),
        ]

    def __str__(self) -> str:
        return f"export #{self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status == ExportStatus.FINISHED


class ExportFile(models.Model):
    """One file an export produced, with the SHA-256 and size recorded when it was written: a download is checked
    against them, so a file changed on disk is refused rather than disclosed."""

    export = models.ForeignKey(Export, on_delete=models.PROTECT, related_name="files")
    name = models.CharField(max_length=128)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["export", "name"]
        constraints = [models.UniqueConstraint(fields=["export", "name"], name="export_file_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} of export #{self.export_id}"


class ExportDisclosure(models.Model):
    """A patient whose data an export disclosed. The patient's accounting reads the `export.created` event written
    on the patient; this row makes writing those events resumable: they are appended in small transactions after
    the export finishes (holding the ledger's append lock for thousands of events at once would stall every other
    writer), and `audit_seq` says which are done, so a crash midway is finished by the sweeper, never doubled."""

    export = models.ForeignKey(Export, on_delete=models.PROTECT, related_name="disclosures")
    patient = models.ForeignKey("care.Patient", on_delete=models.PROTECT, related_name="+")
    audit_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["export", "patient"], name="export_disclosure_once")]
        indexes = [models.Index(fields=["export", "audit_seq"])]

    def __str__(self) -> str:
        return f"export #{self.export_id} disclosed patient {self.patient_id}"
