from __future__ import annotations

from django.db import models


class Reading(models.Model):
    """The same columns and natural key as clinaiops.care.Reading, without the foreign key."""

    patient_id = models.BigIntegerField()
    taken_at = models.DateTimeField()
    systolic = models.PositiveSmallIntegerField()
    diastolic = models.PositiveSmallIntegerField()
    heart_rate = models.PositiveSmallIntegerField(null=True)
    source = models.CharField(max_length=8)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient_id", "taken_at", "source"], name="ceiling_reading_key")]

    def __str__(self) -> str:
        return f"reading {self.pk}"


class Recommendation(models.Model):
    """The columns a patient's recommendation list returns, copied from the product's rows in the same run."""

    patient_id = models.BigIntegerField(db_index=True)
    created_at = models.DateTimeField()
    action = models.CharField(max_length=16)
    from_step = models.PositiveSmallIntegerField()
    to_step = models.PositiveSmallIntegerField()
    final_step = models.PositiveSmallIntegerField(null=True)
    confidence = models.FloatField()
    tier = models.CharField(max_length=8)
    status = models.CharField(max_length=16)
    reason_text = models.TextField()
    top_factors = models.JSONField()
    delivered_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"recommendation {self.pk}"
