"""The API's own records: what an `Idempotency-Key` was first answered with (clinaiops/api/idempotency.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from clinaiops.core.crypto.fields import EncryptedTextField


class IdempotencyRecord(models.Model):
    """One POST of one user under one key. The row is inserted first, in the request's transaction, so a concurrent
    duplicate waits on the unique key and then finds the committed answer; it never makes a second write."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, the path and the canonical JSON of the body: the same key with another request is 422.
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    # The rendered JSON answer, encrypted: a reading's answer holds its blood pressure (PHI).
    response_body = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_user_key_unique")]

    def __str__(self) -> str:
        return f"idempotency key of user {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"
