"""What the reading endpoints (single, batch) share: the validated reading for the ingest service, and the answer a
stored or resent reading gets."""

from __future__ import annotations

from typing import Any

from clinaiops.api.serializers import ReadingOutSerializer, alerts_answer, utc_offset_minutes
from clinaiops.care.selectors import alerts_open_for_reading
from clinaiops.care.services import ReadingInput
from clinaiops.loops.services.ingest import IngestResult


def reading_input(data: dict[str, Any]) -> ReadingInput:
    """A validated reading for the ingest service, with the UTC offset it was sent in, to give it back as sent."""
    return ReadingInput(
        taken_at=data["taken_at"],
        systolic=data["systolic"],
        diastolic=data["diastolic"],
        heart_rate=data.get("heart_rate"),
        source=data["source"],
        utc_offset_minutes=utc_offset_minutes(data["taken_at"]),
    )


def reading_answer(result: IngestResult) -> dict[str, Any]:
    """The reading as stored, and the open alert of each of its safety findings. A resend ran no safety rule (its
    original did), so it is told of the alerts its original raised that are still open."""
    open_alerts = result.open_alerts if result.created else alerts_open_for_reading(reading=result.reading)
    return {**ReadingOutSerializer(result.reading).data, **alerts_answer(open_alerts)}
