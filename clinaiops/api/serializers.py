from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from clinaiops.care.models import Reading, ReadingSource, SymptomKind
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.wording import decision_wording


class AwareDateTimeField(serializers.DateTimeField):
    """A timestamp with an explicit offset: a naive time from a phone is ambiguous, so it is refused."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise serializers.ValidationError("Use ISO 8601, for example 2026-11-21T07:30:00Z.")
        if parsed.tzinfo is None:
            raise serializers.ValidationError("Include a timezone offset, for example 2026-11-21T07:30:00Z.")
        return parsed


class ReadingInSerializer(serializers.Serializer[dict[str, Any]]):
    taken_at = AwareDateTimeField()
    systolic = serializers.IntegerField(help_text="mmHg")
    diastolic = serializers.IntegerField(help_text="mmHg")
    heart_rate = serializers.IntegerField(required=False, allow_null=True, help_text="beats per minute")
    source = serializers.ChoiceField(choices=ReadingSource.choices)  # type: ignore[assignment]
    unit = serializers.CharField(required=False, default="mmHg", help_text="Only mmHg is accepted.")

    def validate_unit(self, value: str) -> str:
        if value != "mmHg":
            raise serializers.ValidationError("Only mmHg is accepted; convert kPa by multiplying by 7.5.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class ReadingOutSerializer(serializers.ModelSerializer[Reading]):
    class Meta:
        model = Reading
        fields = ["id", "taken_at", "systolic", "diastolic", "heart_rate", "source", "received_at"]


class SymptomInSerializer(serializers.Serializer[dict[str, Any]]):
    kind = serializers.ChoiceField(choices=SymptomKind.choices)
    reported_at = AwareDateTimeField(required=False)


class RespondSerializer(serializers.Serializer[dict[str, Any]]):
    response = serializers.ChoiceField(choices=["acknowledge", "decline"])


class RecommendationSerializer(serializers.ModelSerializer[Recommendation]):
    reason = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    regimen = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    class Meta:
        model = Recommendation
        fields = [
            "id", "created_at", "action", "from_step", "to_step", "final_step", "regimen", "tier", "status",
            "reason", "model_version", "confidence", "decision", "delivered_at", "responded_at",
        ]  # fmt: skip

    def get_reason(self, rec: Recommendation) -> str:
        if rec.status == RecommendationStatus.PENDING_REVIEW:
            return "Your care team is reviewing a suggestion about your medicine. You will hear back soon."
        decision = getattr(rec, "decision", None)
        if decision is not None:
            return decision_wording(outcome=decision.outcome, from_step=rec.from_step, final_step=decision.to_step)
        return rec.reason_text

    def get_model_version(self, rec: Recommendation) -> str:
        return rec.model_version.short_hash

    def get_regimen(self, rec: Recommendation) -> str | None:
        return regimen_label(rec.final_step) if rec.final_step is not None else None

    def get_decision(self, rec: Recommendation) -> dict[str, Any] | None:
        decision = getattr(rec, "decision", None)
        if decision is None:
            return None
        signature = decision.signature
        return {
            "outcome": decision.outcome,
            "to_step": decision.to_step,
            "decided_at": decision.decided_at,
            "signed_by": signature.printed_name,
            "signed_at": signature.signed_at,
            "meaning": signature.meaning,
            "manifestation": signature.manifestation,
        }
