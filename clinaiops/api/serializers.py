from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import TextChoices
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinaiops.care.guidance import alert_guidance
from clinaiops.care.models import (
    Alert,
    AlertKind,
    AlertPriority,
    AlertStatus,
    DoseLog,
    Reading,
    ReadingSource,
    Symptom,
    SymptomKind,
    SymptomSeverity,
)
from clinaiops.care.services import MAX_NOTE_LENGTH as MAX_SYMPTOM_NOTE
from clinaiops.care.validation import DBP_RANGE, HR_RANGE, SBP_RANGE, TARGET_DBP_RANGE, TARGET_SBP_RANGE
from clinaiops.core.regimen import MAX_STEP, MIN_STEP, regimen_label
from clinaiops.loops.models import DecisionOutcome, Recommendation, RecommendationStatus, Tier
from clinaiops.loops.wording import decision_wording
from inference.models import TitrationLabel

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


MIN_UTC_OFFSET, MAX_UTC_OFFSET = timedelta(hours=-12), timedelta(hours=14)


class AwareDateTimeField(serializers.DateTimeField):
    """A timestamp with an explicit offset, inside the plausible window: a naive time from a phone is ambiguous, so
    it is refused; so is one that is not a real instant (minute 60, 30 February, an offset of +24:00, a year 1 time
    east of UTC, which is before the first representable instant) and one dated 1900 or 9999, a wrong clock.
    `plausible=False` keeps the parsing but not the window: a query filter (`since=` of a first sync) may reach back
    further than a reading may."""

    def __init__(self, *, plausible: bool = True, **kwargs: Any) -> None:
        self.plausible = plausible
        super().__init__(**kwargs)

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
        offset = parsed.utcoffset()
        # Every time zone on Earth is within -12:00 to +14:00, in whole minutes; PostgreSQL refuses an instant written
        # with an offset beyond ±15:59 (a 500 the fuzzing found at +22:15), and the offset is stored in minutes.
        if offset is None or not MIN_UTC_OFFSET <= offset <= MAX_UTC_OFFSET or offset % timedelta(minutes=1):
            raise serializers.ValidationError("Use a UTC offset from -12:00 to +14:00, in whole minutes.")
        if not self.plausible:
            return parsed
        past, future = plausible_time_window()
        now = timezone.now()
        if parsed > now + future:
            raise serializers.ValidationError("The time is in the future; check the device clock.")
        if parsed < now - past:
            raise serializers.ValidationError(f"The time is more than {past.days} days ago; check the device clock.")
        return parsed


def utc_offset_minutes(moment: datetime) -> int | None:
    """The offset a parsed time was sent with, in minutes east of UTC (None for a naive time)."""
    offset = moment.utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


def isoformat_in_offset(moment: datetime, offset_minutes: int | None) -> str:
    """An instant written in the offset it was sent with (`-05:00`), or in UTC (`Z`) when that is not known."""
    local = moment.astimezone(dt_timezone(timedelta(minutes=offset_minutes or 0)))
    text = local.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class StrictInputSerializer(serializers.Serializer[dict[str, Any]]):
    """Refuses fields it does not know: a misspelt field silently dropped is a value the patient thinks was sent."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return attrs


class PlausibleIntegerField(serializers.IntegerField):
    """An integer whose plausibility range (clinaiops/care/validation.py) the schema documents as minimum and
    maximum, while the reading-ingest service enforces it: a refused reading is then audited with the fields at
    fault (reading.refused), whichever way it came in, and the messages are the service's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The schema reads min_value/max_value; the checks themselves are the service's.
        self.validators = [v for v in self.validators if not isinstance(v, MinValueValidator | MaxValueValidator)]


READING_IN_EXAMPLE = {
    "taken_at": "2026-11-21T07:30:00-05:00",
    "systolic": 138,
    "diastolic": 86,
    "heart_rate": 72,
    "source": "cuff",
}


class ReadingInSerializer(StrictInputSerializer):
    taken_at = AwareDateTimeField(
        help_text=(
            "When the reading was taken, ISO 8601 with an offset; at most a year ago and 5 minutes ahead. The offset "
            "is kept and given back as sent."
        )
    )
    systolic = PlausibleIntegerField(min_value=SBP_RANGE[0], max_value=SBP_RANGE[1], help_text="Systolic, mmHg.")
    diastolic = PlausibleIntegerField(
        min_value=DBP_RANGE[0], max_value=DBP_RANGE[1], help_text="Diastolic, mmHg; lower than systolic."
    )
    heart_rate = PlausibleIntegerField(
        min_value=HR_RANGE[0], max_value=HR_RANGE[1], required=False, allow_null=True, help_text="Beats per minute."
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=ReadingSource.choices, error_messages=CHOICE_MESSAGES, help_text="The device that measured it."
    )
    unit = serializers.ChoiceField(
        choices=["mmHg"],
        required=False,
        default="mmHg",
        error_messages={"invalid_choice": "Only mmHg is accepted; convert kPa by multiplying by 7.5."},
        help_text="Only mmHg.",
    )


class ReadingOutSerializer(serializers.ModelSerializer[Reading]):
    taken_at = serializers.SerializerMethodField(
        help_text="When it was taken, in the UTC offset it was sent with (`Z` when the sender gave none)."
    )
    systolic = serializers.IntegerField(min_value=SBP_RANGE[0], max_value=SBP_RANGE[1], help_text="mmHg")
    diastolic = serializers.IntegerField(min_value=DBP_RANGE[0], max_value=DBP_RANGE[1], help_text="mmHg")
    heart_rate = serializers.IntegerField(
        min_value=HR_RANGE[0], max_value=HR_RANGE[1], allow_null=True, help_text="Beats per minute."
    )
    source = serializers.ChoiceField(choices=ReadingSource.choices)  # type: ignore[assignment]
    received_at = serializers.DateTimeField(help_text="When the server stored it (UTC).")
    updated_at = serializers.DateTimeField(help_text="When it last changed (UTC): the cursor of `?since=`.")

    class Meta:
        model = Reading
        fields = ["id", "taken_at", "systolic", "diastolic", "heart_rate", "source", "received_at", "updated_at"]

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_taken_at(self, reading: Reading) -> str:
        return isoformat_in_offset(reading.taken_at, reading.utc_offset_minutes)


class AlertOutSerializer(serializers.ModelSerializer[Alert]):
    """A safety alert as the patient sees it: what, when, whether the care team has it in hand, and what to do."""

    kind = serializers.ChoiceField(choices=AlertKind.choices)
    priority = serializers.ChoiceField(choices=AlertPriority.choices, help_text="P0: the care team acts at once.")
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    guidance = serializers.SerializerMethodField(help_text="What to do now, in plain words; null if nothing.")

    class Meta:
        model = Alert
        fields = ["id", "kind", "priority", "status", "opened_at", "acknowledged_at", "guidance"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_guidance(self, alert: Alert) -> str | None:
        return alert_guidance(alert.kind)


def alerts_answer(open_alerts: list[Alert]) -> dict[str, Any]:
    """The alert part of a reading's or symptom's answer: the kinds (`alerts`), the words (`guidance`) and the
    alerts themselves, for every safety finding of it whose alert is open, newly or already."""
    guidance = [text for text in dict.fromkeys(alert_guidance(a.kind) for a in open_alerts) if text]
    return {
        "alerts": [alert.kind for alert in open_alerts],
        "guidance": "\n\n".join(guidance) or None,
        "open_alerts": AlertOutSerializer(open_alerts, many=True).data,
    }


def _alert_kinds_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=AlertKind.choices),
        help_text="The kind of every open safety alert this raised or found already open; empty if none.",
    )


def _guidance_field() -> serializers.CharField:
    return serializers.CharField(
        allow_null=True, help_text="What to do now, in plain words (call the care team, or emergency services)."
    )


def _open_alerts_field() -> AlertOutSerializer:
    return AlertOutSerializer(many=True, help_text="Those alerts, with their status and guidance.")


class ReadingIngestedSerializer(ReadingOutSerializer):
    """A stored reading (201 new, 200 a resend of one already stored) and what its safety check found."""

    alerts = _alert_kinds_field()
    guidance = _guidance_field()
    open_alerts = _open_alerts_field()

    class Meta(ReadingOutSerializer.Meta):
        fields = [*ReadingOutSerializer.Meta.fields, "alerts", "guidance", "open_alerts"]


# --- Batch sync -----------------------------------------------------------------------------------------------

MAX_BATCH_READINGS = 500


class BatchItemStatus(TextChoices):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


class BatchItemErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """Why a reading of a batch was refused, in the API's one error shape."""

    code = serializers.CharField(help_text="Stable, for programs: validation_failed, conflict, ...")
    message = serializers.CharField(help_text="For people; never quotes what was sent.")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # Declared here: a class attribute named `fields` would hide Serializer.fields.
        declared = super().get_fields()
        declared["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), help_text="Messages per field at fault."
        )
        return declared


@extend_schema_field(ReadingInSerializer(many=True))
class BatchReadingsField(serializers.ListField):
    """The readings of a batch, each validated on its own by the view (one bad reading is one refused item, not a
    refused batch); here only that it is a list of 1 to MAX_BATCH_READINGS."""

    child = serializers.JSONField()


class ReadingBatchInSerializer(StrictInputSerializer):
    """Readings a phone kept while offline, sent at once."""

    readings = BatchReadingsField(
        min_length=1,
        max_length=MAX_BATCH_READINGS,
        help_text=f"1 to {MAX_BATCH_READINGS} readings, each as for POST /readings/.",
    )


class BatchItemSerializer(serializers.Serializer[dict[str, Any]]):
    index = serializers.IntegerField(
        min_value=0, max_value=MAX_BATCH_READINGS - 1, help_text="The reading's position in the request."
    )
    status = serializers.ChoiceField(
        choices=BatchItemStatus.choices,
        help_text="created: stored now; duplicate: already stored (same time, source and values); refused: see error.",
    )
    reading = ReadingOutSerializer(allow_null=True, help_text="The stored reading; null when refused.")
    error = BatchItemErrorSerializer(allow_null=True, help_text="Why it was refused; null otherwise.")
    alerts = _alert_kinds_field()
    guidance = _guidance_field()
    open_alerts = _open_alerts_field()


class ReadingBatchOutSerializer(serializers.Serializer[dict[str, Any]]):
    created = serializers.IntegerField(min_value=0, max_value=MAX_BATCH_READINGS)
    duplicate = serializers.IntegerField(min_value=0, max_value=MAX_BATCH_READINGS)
    refused = serializers.IntegerField(min_value=0, max_value=MAX_BATCH_READINGS)
    results = BatchItemSerializer(many=True, help_text="One per reading sent, in the order sent.")


# --- Query filters --------------------------------------------------------------------------------------------


class _RangeFilterSerializer(serializers.Serializer[dict[str, Any]]):
    """`from` and `to` (both inclusive), the same names on readings, symptoms and doses. Declared in get_fields,
    since `from` is a Python keyword."""

    def range_field(self, *, bound: str) -> serializers.Field[Any, Any, Any, Any]:
        raise NotImplementedError

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = self.range_field(bound="from")
        fields["to"] = self.range_field(bound="to")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"to": ["Must not be before `from`."]})
        return attrs


class _TimeRangeFilterSerializer(_RangeFilterSerializer):
    def range_field(self, *, bound: str) -> serializers.Field[Any, Any, Any, Any]:
        return AwareDateTimeField(
            plausible=False,
            required=False,
            help_text=f"Only those at or {'after' if bound == 'from' else 'before'} this time (ISO 8601, with offset).",
        )


class ReadingFilterSerializer(_TimeRangeFilterSerializer):
    since = AwareDateTimeField(
        plausible=False,
        required=False,
        help_text=(
            "Incremental sync: only readings stored or changed at or after this time (their `updated_at`), oldest "
            "change first. Pass the largest `updated_at` of the last sync; a reading may come twice, never not at all."
        ),
    )


class SymptomFilterSerializer(_TimeRangeFilterSerializer):
    pass


class DoseFilterSerializer(_RangeFilterSerializer):
    def range_field(self, *, bound: str) -> serializers.Field[Any, Any, Any, Any]:
        return serializers.DateField(
            required=False,
            help_text=f"Only days {'from' if bound == 'from' else 'up to'} this one (YYYY-MM-DD), inclusive.",
        )


class RecommendationFilterSerializer(serializers.Serializer[dict[str, Any]]):
    updated_since = AwareDateTimeField(
        plausible=False,
        required=False,
        help_text="Only recommendations made, delivered, answered or decided at or after this time (ISO 8601).",
    )


# --- Symptoms -------------------------------------------------------------------------------------------------


class SymptomInSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=SymptomKind.choices, error_messages=CHOICE_MESSAGES)
    reported_at = AwareDateTimeField(required=False, help_text="When it happened; now if left out.")
    severity = serializers.ChoiceField(
        choices=SymptomSeverity.choices,
        required=False,
        error_messages=CHOICE_MESSAGES,
        help_text="How bad it is, in the patient's words.",
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_SYMPTOM_NOTE,
        trim_whitespace=True,
        help_text=f"Free text, at most {MAX_SYMPTOM_NOTE} characters; stored encrypted, seen by the care team.",
    )


class SymptomOutSerializer(serializers.ModelSerializer[Symptom]):
    kind = serializers.ChoiceField(choices=SymptomKind.choices)
    severity = serializers.SerializerMethodField(help_text="mild, moderate or severe; null if not given.")
    note = serializers.CharField(help_text="The patient's note; empty if none.")

    class Meta:
        model = Symptom
        fields = ["id", "kind", "severity", "reported_at", "note"]

    @extend_schema_field(serializers.ChoiceField(choices=SymptomSeverity.choices, allow_null=True))
    def get_severity(self, symptom: Symptom) -> str | None:
        return symptom.severity or None


class SymptomReportedSerializer(SymptomOutSerializer):
    """A symptom stored (201), or a resend of one already stored (200), and what its safety check found."""

    alerts = _alert_kinds_field()
    guidance = _guidance_field()
    open_alerts = _open_alerts_field()

    class Meta(SymptomOutSerializer.Meta):
        fields = [*SymptomOutSerializer.Meta.fields, "alerts", "guidance", "open_alerts"]


# --- Doses ----------------------------------------------------------------------------------------------------


def latest_day_anywhere() -> date:
    """The latest calendar date on Earth now (UTC+14): a patient east of UTC may log today before the server's
    today has begun, so "not in the future" is judged there."""
    return (timezone.now() + timedelta(hours=14)).date()


class PlausibleDayField(serializers.DateField):
    def to_internal_value(self, value: Any) -> date:
        day: date = super().to_internal_value(value)
        past, _ = plausible_time_window()
        if day > latest_day_anywhere():
            raise serializers.ValidationError("The day is in the future.")
        if day < timezone.now().date() - past:
            raise serializers.ValidationError(f"The day is more than {past.days} days ago.")
        return day


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF's BooleanField also takes 0, 1, "yes" and "off", which a buggy client sends
    by accident as easily as on purpose."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class DoseInSerializer(StrictInputSerializer):
    day = PlausibleDayField(help_text="The day of the dose (YYYY-MM-DD), not in the future, at most a year ago.")
    taken = StrictBooleanField(help_text="Whether the day's dose was taken: true or false.")


class DoseOutSerializer(serializers.ModelSerializer[DoseLog]):
    step = serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, help_text="The regimen step that day.")
    regimen = serializers.SerializerMethodField(help_text="The regimen that day, in words.")

    class Meta:
        model = DoseLog
        fields = ["id", "day", "taken", "step", "regimen"]

    def get_regimen(self, dose: DoseLog) -> str:
        return regimen_label(dose.step)


class AdherenceSerializer(serializers.Serializer[dict[str, Any]]):
    days = serializers.IntegerField(min_value=1, max_value=365, help_text="The window: the last N days, today too.")
    logged = serializers.IntegerField(min_value=0, max_value=365, help_text="Days with a dose logged.")
    taken = serializers.IntegerField(min_value=0, max_value=365, help_text="Logged days with the dose taken.")
    percent = serializers.IntegerField(
        min_value=0, max_value=100, allow_null=True, help_text="taken / logged, in percent; null if nothing logged."
    )


class ScheduledDaySerializer(serializers.Serializer[dict[str, Any]]):
    day = serializers.DateField()
    doses = serializers.IntegerField(min_value=0, max_value=1, help_text="Doses scheduled that day (daily: 1).")
    taken = serializers.BooleanField(allow_null=True, help_text="As logged; null if not logged.")


class DoseScheduleSerializer(serializers.Serializer[dict[str, Any]]):
    current_step = serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP)
    regimen = serializers.CharField(help_text="The current regimen, in words.")
    frequency = serializers.ChoiceField(choices=["daily"], help_text="Every step of the ladder is taken once a day.")
    scheduled = ScheduledDaySerializer(many=True, help_text="The last 14 days, newest first, with what was logged.")
    adherence = AdherenceSerializer(many=True, help_text="Over the last 14 and 30 days.")


class RespondSerializer(StrictInputSerializer):
    response = serializers.ChoiceField(choices=["acknowledge", "decline"], error_messages=CHOICE_MESSAGES)


class ProposalSerializer(serializers.Serializer[dict[str, Any]]):
    action = serializers.ChoiceField(choices=TitrationLabel.choices, help_text="What the model proposed.")
    to_step = serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP)
    confidence = serializers.FloatField(min_value=0, max_value=1, help_text="The model's probability of `action`.")
    tier = serializers.ChoiceField(
        choices=Tier.choices, help_text="minor and feedback are delivered at once; major waits for a clinician."
    )
    model_version = serializers.CharField(help_text="The short hash of the model version that proposed it.")


class DecisionSerializer(serializers.Serializer[dict[str, Any]]):
    outcome = serializers.ChoiceField(choices=DecisionOutcome.choices)
    to_step = serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, allow_null=True)
    decided_at = serializers.DateTimeField()
    signed_by = serializers.CharField(help_text="The clinician's printed name, as signed.")
    signed_at = serializers.DateTimeField()
    meaning = serializers.CharField(help_text="What the signature means (21 CFR 11.50).")
    manifestation = serializers.CharField(help_text="The signature as displayed.")


class RecommendationSerializer(serializers.ModelSerializer[Recommendation]):
    """`action`, `to_step` and `regimen` are what the patient is asked to do: the delivered step, which after a
    review is the clinician's (null while the proposal waits for review). What the model proposed, and how the
    policy tiered it, is `proposal`; the signed decision, if any, is `decision`."""

    status = serializers.ChoiceField(choices=RecommendationStatus.choices)  # type: ignore[assignment]
    from_step = serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, help_text="The step it started from.")
    action = serializers.SerializerMethodField(help_text="What the patient is asked to do; null while under review.")
    to_step = serializers.SerializerMethodField(help_text="The step to move to; null while under review.")
    regimen = serializers.SerializerMethodField(help_text="That step's regimen, in words; null while under review.")
    reason = serializers.SerializerMethodField(help_text="Why, in plain words.")
    proposal = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField(help_text="The clinician's signed decision; null if none.")

    class Meta:
        model = Recommendation
        fields = [
            "id", "created_at", "status", "from_step", "action", "to_step", "regimen", "reason", "proposal",
            "decision", "delivered_at", "responded_at",
        ]  # fmt: skip

    @extend_schema_field(serializers.ChoiceField(choices=TitrationLabel.choices, allow_null=True))
    def get_action(self, rec: Recommendation) -> str | None:
        return rec.final_action

    @extend_schema_field(serializers.IntegerField(min_value=MIN_STEP, max_value=MAX_STEP, allow_null=True))
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

    @extend_schema_field(ProposalSerializer)
    def get_proposal(self, rec: Recommendation) -> dict[str, Any]:
        return {
            "action": rec.action,
            "to_step": rec.to_step,
            "confidence": rec.confidence,
            "tier": rec.tier,
            "model_version": rec.model_version.short_hash,
        }

    @extend_schema_field(DecisionSerializer(allow_null=True))
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


# --- The patient's record -------------------------------------------------------------------------------------


class TargetSerializer(serializers.Serializer[dict[str, Any]]):
    systolic = serializers.IntegerField(
        min_value=TARGET_SBP_RANGE[0], max_value=TARGET_SBP_RANGE[1], help_text="Home systolic target, mmHg."
    )
    diastolic = serializers.IntegerField(
        min_value=TARGET_DBP_RANGE[0], max_value=TARGET_DBP_RANGE[1], help_text="Home diastolic target, mmHg."
    )


class MeSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField(help_text="The patient's pseudonymous code, for example P-0187.")
    target = TargetSerializer(help_text="Keep home readings below this, as set by the care team.")
    current_step = serializers.IntegerField(
        min_value=MIN_STEP, max_value=MAX_STEP, help_text="The step on the regimen ladder."
    )
    regimen = serializers.CharField(help_text="The current regimen, in words.")
    care_team = serializers.CharField(help_text="The care team's name.")


class AccessEntrySerializer(serializers.Serializer[dict[str, Any]]):
    when = serializers.DateTimeField()
    who = serializers.CharField(help_text="The person, by name.")
    role = serializers.CharField(help_text="Their role, in words.")
    action = serializers.CharField(help_text="What they did, in words.")
    what = serializers.CharField(help_text="Which part of the record.")
    why = serializers.CharField(help_text="The reason given or recorded.")


class AccessLogSerializer(serializers.Serializer[dict[str, Any]]):
    results = AccessEntrySerializer(
        many=True, help_text="Who viewed, accessed in an emergency or disclosed, newest first."
    )
