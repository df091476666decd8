from __future__ import annotations

from django.conf import settings
from django.db import models

from clinaiops.care.models import Patient
from clinaiops.core.crypto.fields import EncryptedTextField
from governance.models import ApprovalPolicy, AutonomyBounds, Signature
from inference.models import ModelVersion


class Trigger(models.TextChoices):
    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"


class Tier(models.TextChoices):
    MINOR = "minor"
    MAJOR = "major"
    # A *maintain* with no safety reason: delivered to the patient, never queued (governance.policy.FEEDBACK).
    FEEDBACK = "feedback"


# Tiers delivered to the patient when the recommendation is made, without a clinician.
DELIVERED_AT_ONCE = frozenset({Tier.MINOR, Tier.FEEDBACK})


class RecommendationStatus(models.TextChoices):
    PENDING_REVIEW = "pending_review", "Waiting for clinician review"
    DELIVERED = "delivered", "Delivered to the patient"
    ACKNOWLEDGED = "acknowledged", "Acknowledged by the patient"
    DECLINED = "declined", "Declined by the patient"
    SUPERSEDED = "superseded", "Superseded by a newer recommendation"


RECOMMENDATION_TRANSITIONS: dict[str, frozenset[str]] = {
    RecommendationStatus.PENDING_REVIEW: frozenset({RecommendationStatus.DELIVERED, RecommendationStatus.SUPERSEDED}),
    RecommendationStatus.DELIVERED: frozenset(
        {RecommendationStatus.ACKNOWLEDGED, RecommendationStatus.DECLINED, RecommendationStatus.SUPERSEDED}
    ),
    RecommendationStatus.ACKNOWLEDGED: frozenset(),
    RecommendationStatus.DECLINED: frozenset(),
    RecommendationStatus.SUPERSEDED: frozenset(),
}


class Recommendation(models.Model):
    """One titration proposal, with everything needed to reconstruct why it was made and how it was tiered."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="recommendations")
    created_at = models.DateTimeField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    evaluation_date = models.DateField()
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT)
    arm = models.CharField(max_length=16)
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.PROTECT)
    bounds = models.ForeignKey(AutonomyBounds, null=True, blank=True, on_delete=models.PROTECT)
    feature_set_version = models.CharField(max_length=32)
    features = models.JSONField()
    probabilities = models.JSONField()
    top_factors = models.JSONField()
    action = models.CharField(max_length=16)
    from_step = models.PositiveSmallIntegerField()
    to_step = models.PositiveSmallIntegerField()
    confidence = models.FloatField()
    tier = models.CharField(max_length=8, choices=Tier.choices)
    tier_reasons = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=RecommendationStatus.choices)
    # The step the patient is asked to take: the proposal for minor ones, the clinician's choice after review.
    final_step = models.PositiveSmallIntegerField(null=True, blank=True)
    reason_text = models.TextField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one scheduled evaluation per patient per day; on-demand ones are extra.
            models.UniqueConstraint(
                fields=["patient", "evaluation_date"],
                condition=models.Q(trigger="scheduled"),
                name="recommendation_one_scheduled_per_day",
            )
        ]
        indexes = [models.Index(fields=["status", "tier"])]

    def __str__(self) -> str:
        return f"recommendation {self.pk} ({self.action} {self.from_step}→{self.to_step}, {self.tier})"

    @property
    def final_action(self) -> str | None:
        """What the patient is asked to do: the proposal for a minor one, the clinician's decision after review
        (which may differ from `action`, the model's proposal); None until one of them is delivered."""
        if self.final_step is None:
            return None
        if self.final_step == self.from_step:
            return "maintain"
        return "increase" if self.final_step > self.from_step else "decrease"


class DecisionOutcome(models.TextChoices):
    ACCEPTED = "accepted"
    MODIFIED = "modified"
    REJECTED = "rejected"


class ReviewDecision(models.Model):
    recommendation = models.OneToOneField(Recommendation, on_delete=models.PROTECT, related_name="decision")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    outcome = models.CharField(max_length=16, choices=DecisionOutcome.choices)
    to_step = models.PositiveSmallIntegerField()
    # Encrypted at rest; the signature is bound to the plaintext (decision_content reads the decrypted value).
    reason = EncryptedTextField()
    decided_at = models.DateTimeField()
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"{self.outcome} recommendation {self.recommendation_id}"
