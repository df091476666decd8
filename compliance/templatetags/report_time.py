"""A report's timestamps for people: "2026-03-01 14:05:09 UTC". The JSON keeps the exact ISO 8601 value with
microseconds (the ledger's own format), which is what an auditor matches against the listings."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def moment(value: object) -> str:
    """An ISO 8601 timestamp (as the documents store it) to the second, in UTC; anything else unchanged, and
    nothing for a missing value."""
    if value is None or value == "":
        return ""
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is None:
        return text  # a date or a naive value: shown as stored
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
