from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    READING_INGESTED = "reading.ingested"
    READING_REFUSED = "reading.refused"
    ALERT_OPENED = "alert.opened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_ESCALATED = "alert.escalated"
    # Who an alert's notice went to (inbox and the NOTIFIERS channels), and a care team's escalation chain (issue 11).
    ALERT_NOTIFIED = "alert.notified"
    ESCALATION_CHAIN_SET = "care_team.escalation_chain_set"
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
    TRAINING_REQUEUED = "training.requeued"
    MODEL_REGISTERED = "model.registered"
    MODEL_TRANSITIONED = "model.transitioned"
    SERVING_POINTER_SET = "serving.pointer_set"
    # The model lifecycle's own events (issue 7: an action says what happened, not "pointer set" or "policy").
    CANARY_STAGE_ADVANCED = "canary.stage_advanced"
    CIRCUIT_BREAKER_TRIPPED = "canary.breaker_tripped"
    CHANGE_CONTROL_PLAN_DECLARED = "change_control.plan_declared"
    DRIFT_REPORT_CREATED = "drift.report_created"
    EXPORT_CREATED = "export.created"
    EXPORT_DOWNLOADED = "export.downloaded"
    LEDGER_VERIFIED = "audit.verified"
    CHECKPOINT_CREATED = "audit.checkpoint_created"
    # The oldest months detached for archive (`manage.py ledger_archive`): the only way the ledger may start after
    # seq 1, and itself in the chain.
    LEDGER_ARCHIVED = "audit.archived"
    # An operator moved a DEFAULT partition's rows into their months (`manage.py partitions --split-default`).
    PARTITION_DEFAULT_SPLIT = "partitions.default_split"
    ACCOUNT_LOCKED = "account.locked"
    # Sessions and tokens (issue 8 §4): API sign-out, a refused reuse of a spent refresh token (its sign-in is
    # revoked), a password change (every API token revoked), and the second factor.
    SIGNED_OUT = "auth.signed_out"
    TOKEN_REUSE_REFUSED = "auth.token_reuse_refused"  # noqa: S105 - an action name, not a secret
    PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - an action name, not a secret
    MFA_ENROLLED = "mfa.enrolled"
    MFA_REMOVED = "mfa.removed"
    MFA_REFUSED = "mfa.refused"
    BREAK_GLASS = "access.break_glass"
    # Who may see whom, and what a patient's care aims at (issue 7: no change without a service and its event).
    CARE_TEAM_CREATED = "care_team.created"
    CARE_TEAM_MEMBER_ADDED = "care_team.member_added"
    CARE_TEAM_MEMBER_REMOVED = "care_team.member_removed"
    PATIENT_TEAM_ASSIGNED = "patient.team_assigned"
    PATIENT_TARGET_SET = "patient.target_set"
    USER_ROLE_SET = "user.role_set"
    DOSE_LOGGED = "dose.logged"
    EVALUATION_REFUSED = "evaluation.refused"
    # Encryption at rest (issue 8 §3): a staff search by identifier (counts and ids, never the term), and key rotation.
    PATIENT_SEARCHED = "patient.searched"
    KEYS_ROTATION_STARTED = "keys.rotation_started"
    KEYS_ROTATED = "keys.rotated"
    # The stop switch (issue 10, EU AI Act art. 14): a clinical safety officer stops the AI, for everyone or one
    # clinic, and later resumes it; both are e-signed.
    AI_STOPPED = "ai.stopped"
    AI_RESUMED = "ai.resumed"
    # The patient–clinician loop (issue 11): goals, notes, follow-up. Digests only, never the text or values.
    GOAL_SET = "goal.set"
    GOAL_ENDED = "goal.ended"
    GOAL_CHECKIN_RECORDED = "goal.checkin_recorded"
    NOTE_WRITTEN = "note.written"
    FOLLOWUP_OVERRIDDEN = "followup.overridden"
    FOLLOWUP_OVERRIDE_CLEARED = "followup.override_cleared"
    FOLLOWUP_RECORDED = "followup.recorded"
    # Approval-policy changes that need a second signer (issue 11): proposed (signed), then countersigned
    # (POLICY_CREATED) or withdrawn (signed).
    POLICY_CHANGE_PROPOSED = "policy.change_proposed"
    POLICY_CHANGE_WITHDRAWN = "policy.change_withdrawn"


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
    # An AuditAction value. No `choices=` on purpose: the list grows with every capability, and a ledger column
    # must not need a migration each time a new kind of event is named.
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # Canonical JSON text of ids, codes and digests only: never free-text PHI. Stored as text, not jsonb, so
    # the hashed bytes are exactly the stored bytes.
    payload = models.TextField(default="{}")
    prev_hash = models.CharField(max_length=64)
    # Not indexed: nothing looks events up by hash except a verifier diagnosing a break, and every index is paid
    # on each append.
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    @property
    def payload_data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data


class AuditCheckpoint(models.Model):
    """An Ed25519 signature over the ledger head: proves what the ledger held at `seq`, so later deletion,
    truncation or rewriting of anything up to it is detectable even by someone who can recompute hashes. Each is
    also published to the witness outside the database (clinaiops.audit.witness)."""

    seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    reason = models.CharField(max_length=32)
    # The signed hash prefixes of the events segment_start..seq (clinaiops.audit.chain.segment_hashes), which name
    # the edited event even after every hash after it was recomputed. Empty (and None) on checkpoints made before.
    segment_start = models.BigIntegerField(null=True, blank=True)
    segment_hashes = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"
