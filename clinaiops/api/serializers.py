from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from clinaiops.care.models import Reading, ReadingSource, SymptomKind
from clinaiops.core.regimen import regimen_label
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.wording import decision_wording

# Messages never quote the submitted value (DRF's defaults do: '"x" is not a valid choice.').
CHOICE_MESSAGES: dict[str, Any] = {
    "invalid_choice": "Not one of the allowed values.",
    "not_a_list": "Expected a list of values.",
}


def plausible_time_window() -> tuple[timedelta, timedelta]:
    """How far in the past and in the future a reading or symptom time may be (settings PLAUSIBLE_PAST_DAYS,
    default 365, and PLAUSIBLE_FUTURE_MINUTES, default 5, for a device clock that runs a little fast)."""
    past_days = int(getattr(settings, "PLAUSIBLE_PAST_DAYS", 365))
    future_minutes = int(getattr(settings, "PLAUSIBLE_FUTURE_MINUTES", 5))
    return timedelta(days=past_days), timedelta(minutes=future_minutes)


class AwareDateTimeField(serializers.DateTimeField):
    """A timestamp with an explicit offset, inside the plausible window: a naive time from a phone is ambiguous, so
    it is refused; so is one that is not a real instant (minute 60, 30 February, an offset of +24:00, a year 1 time
    east of UTC, which is before the first representable instant) and one dated 1900 or 9999, a wrong clock."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            parsed = parse_datetime(value) if isinstance(value, str) and len(value) <= 64 else None
            if parsed is not None and parsed.tzinfo is not None:
                parsed.astimezone(UTC)  # raises OverflowError for 0001-01-01T00:00:00+14:00
        except (ValueError, OverflowError):
            raise serializers.ValidationError(
                "Not a real date and time; use ISO 8601, for example 2026-11-21T07:30:00Z."
            ) from None
        if parsed is None:
            raise serializers.ValidationError("Use ISO 8601, for example 2026-11-21T07:30:00Z.")
        if parsed.tzinfo is None:
            raise serializers.ValidationError("Include a timezone offset, for example 2026-11-21T07:30:00Z.")
        past, future = plausible_time_window()
        now = timezone.now()
        if parsed > now + future:
            raise serializers.ValidationError("The time is in the future; check the device clock.")
        if parsed < now - past:
            raise serializers.ValidationError(f"The time is more than {past.days} days ago; check the device clock.")
        return parsed


class StrictInputSerializer(serializers.Serializer[dict[str, Any]]):
    """Refuses fields it does not know: a misspelt field silently dropped is a value the patient thinks was sent."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class ReadingInSerializer(StrictInputSerializer):
    taken_at = AwareDateTimeField()
    systolic = serializers.IntegerField(help_text="mmHg")
    diastolic = serializers.IntegerField(help_text="mmHg")
    heart_rate = serializers.IntegerField(required=False, allow_null=True, help_text="beats per minute")
    source = serializers.ChoiceField(choices=ReadingSource.choices, error_messages=CHOICE_MESSAGES)  # type: ignore[assignment]
    unit = serializers.CharField(required=False, default="mmHg", help_text="Only mmHg is accepted.")

    def validate_unit(self, value: str) -> str:
        if value != "mmHg":
            raise serializers.ValidationError("Only mmHg is accepted; convert kPa by multiplying by 7.5.")
        return value


class ReadingOutSerializer(serializers.ModelSerializer[Reading]):
    class Meta:
        model = Reading
        fields = ["id", "taken_at", "systolic", "diastolic", "heart_rate", "source", "received_at"]


class SymptomInSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=SymptomKind.choices, error_messages=CHOICE_MESSAGES)
    reported_at = AwareDateTimeField(required=False)


class RespondSerializer(StrictInputSerializer):
    response = serializers.ChoiceField(choices=["acknowledge", "decline"], error_messages=CHOICE_MESSAGES)


class RecommendationSerializer(serializers.ModelSerializer[Recommendation]):
    """`action`, `to_step` and `regimen` are what the patient is asked to do: the delivered step, which after a
    review is the clinician's (null while the proposal waits for review). What the model proposed, and how the
    policy tiered it, is `proposal`; the signed decision, if any, is `decision`."""

    action = serializers.SerializerMethodField()
    to_step = serializers.SerializerMethodField()
    regimen = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()
    proposal = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    class Meta:
        model = Recommendation
        fields = [
            "id", "created_at", "status", "from_step", "action", "to_step", "regimen", "reason", "proposal",
            "decision", "delivered_at", "responded_at",
        ]  # fmt: skip

    def get_action(self, rec: Recommendation) -> str | None:
        return rec.final_action

    def get_to_step(self, rec: Recommendation) -> int | None:
        return rec.final_step

    def get_regimen(self, rec: Recommendation) -> str | None:
        return regimen_label(rec.final_step) if rec.final_step is not None else None

    def get_reason(self, rec: Recommendation) -> str:
        if rec.status == RecommendationStatus.PENDING_REVIEW:
            return "Your care team is reviewing a suggestion about your medicine. You will hear back soon."
        decision = getattr(rec, "decision", None)
        if decision is not None:
            return decision_wording(outcome=decision.outcome, from_step=rec.from_step, final_step=decision.to_step)
        return rec.reason_text

    def get_proposal(self, rec: Recommendation) -> dict[str, Any]:
        return {
            "action": rec.action,
            "to_step": rec.to_step,
            "confidence": rec.confidence,
            "tier": rec.tier,
            "model_version": rec.model_version.short_hash,
        }

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
