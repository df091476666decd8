from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    READING_INGESTED = "reading.ingested"
    READING_REFUSED = "reading.refused"
    ALERT_OPENED = "alert.opened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_ESCALATED = "alert.escalated"
    SYMPTOM_REPORTED = "symptom.reported"
    AUTONOMY_PAUSED = "autonomy.paused"
    AUTONOMY_RESUMED = "autonomy.resumed"
    EVALUATION_SKIPPED = "evaluation.skipped"
    RECOMMENDATION_CREATED = "recommendation.created"
    RECOMMENDATION_DELIVERED = "recommendation.delivered"
    RECOMMENDATION_QUEUED = "recommendation.queued"
    RECOMMENDATION_RESPONDED = "recommendation.responded"
    RECOMMENDATION_SUPERSEDED = "recommendation.superseded"
    REVIEW_DECIDED = "review.decided"
    REGIMEN_CHANGED = "regimen.changed"
    SIGNATURE_CREATED = "signature.created"
    SIGNATURE_REFUSED = "signature.refused"
    POLICY_CREATED = "policy.created"
    BOUNDS_SET = "bounds.set"
    PATIENT_ENROLLED = "patient.enrolled"
    PATIENT_RECORD_VIEWED = "patient.viewed"
    ACCESS_DENIED = "access.denied"
    SNAPSHOT_CREATED = "dataset.snapshot_created"
    LABEL_RECORDED = "dataset.label_recorded"
    TRAINING_STARTED = "training.started"
    TRAINING_FINISHED = "training.finished"
    MODEL_REGISTERED = "model.registered"
    MODEL_TRANSITIONED = "model.transitioned"
    SERVING_POINTER_SET = "serving.pointer_set"
    EXPORT_CREATED = "export.created"


class AuditOutcome(models.TextChoices):
    SUCCESS = "success"
    DENIED = "denied"


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained ledger (DESIGN §4). Never updated or deleted; on
    PostgreSQL a trigger refuses both."""

    seq = models.BigIntegerField(unique=True)
    recorded_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_role = models.CharField(max_length=32)
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # Ids, codes and digests only: never free-text PHI.
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"]), models.Index(fields=["action"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"
