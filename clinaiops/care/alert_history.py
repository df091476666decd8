"""Reads for an alert's own page: the readings that triggered it, who was told and when, and what was done.

The history is read from the audit ledger, the one record every step already writes in its own transaction
(opening, notifications, escalation steps, acknowledgement, refusals): what the page shows is what an auditor
can verify, and no second history can drift from it. The ledger holds ids and codes only; the names come from
the user table here, the words from the maps below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from clinaiops.audit.models import AuditAction, AuditEvent, AuditOutcome
from clinaiops.care.models import Alert, AlertDisposition, AlertKind, Reading
from clinaiops.core.models import User

# The hypotension rule looks back 24 h (DESIGN §2), so the readings of that window explain either kind of alert.
TRIGGER_WINDOW = timedelta(hours=24)
MAX_TRIGGER_READINGS = 20


@dataclass(frozen=True)
class AlertHistoryEntry:
    at: datetime
    what: str
    by: str
    refused: bool = False


def alert_triggering_readings(*, alert: Alert) -> list[Reading]:
    """The patient's readings of the 24 h up to the alert's opening (the triggering one among them), newest first."""
    if alert.kind == AlertKind.BREAK_GLASS:
        return []
    return list(
        Reading.objects.filter(
            patient_id=alert.patient_id,
            taken_at__gte=alert.opened_at - TRIGGER_WINDOW,
            taken_at__lte=alert.opened_at + timedelta(minutes=1),
        ).order_by("-taken_at", "-pk")[:MAX_TRIGGER_READINGS]
    )


def _ids(value: object) -> list[int]:
    """The user ids a payload lists (a JSON list of integers), or none."""
    return [int(pk) for pk in value if isinstance(pk, int)] if isinstance(value, list) else []


def _names(ids: set[int]) -> dict[int, str]:
    return {user.pk: user.signature_name for user in User.objects.filter(pk__in=ids)}


def _listed(ids: list[int], names: dict[int, str]) -> str:
    return ", ".join(names.get(pk, f"user {pk}") for pk in ids) or "nobody (no one to notify)"


def _entry_words(event: AuditEvent, data: dict[str, object], names: dict[int, str]) -> str:
    recipients = _ids(data.get("recipient_ids"))
    if event.outcome == AuditOutcome.DENIED:
        return "Refused: not responsible for this alert"
    if event.action == AuditAction.ALERT_OPENED:
        return (
            "Opened: emergency access was used"
            if data.get("kind") == AlertKind.BREAK_GLASS
            else ("Opened by the safety rule on a reading")
        )
    if event.action == AuditAction.ALERT_NOTIFIED:
        return f"Notified: {_listed(recipients, names)}"
    if event.action == AuditAction.ALERT_ESCALATED:
        if data.get("system_reason") == "escalation_chain_spent":
            team = _listed(recipients, names)
            return f"Still unacknowledged at the end of the chain: the whole care team notified ({team})"
        if data.get("to_user_id") is None:
            return "Escalated (before escalation chains: nobody was notified)"
        to = _listed(recipients, names)
        return f"Not acknowledged in time: escalated to {to} (step {data.get('step')} of the chain)"
    if event.action == AuditAction.ALERT_ACKNOWLEDGED:
        code = str(data.get("disposition") or "")
        label = AlertDisposition(code).label if code in AlertDisposition.values else "no disposition recorded"
        return f"Acknowledged: {str(label).lower()}"
    return event.action


def alert_history(*, alert: Alert) -> list[AlertHistoryEntry]:
    """Every ledger event about the alert, oldest first, in words."""
    events = list(AuditEvent.objects.filter(object_type="alert", object_id=str(alert.pk)).order_by("seq"))
    ids: set[int] = {event.actor_id for event in events if event.actor_id is not None}
    payloads = [event.payload_data for event in events]
    for data in payloads:
        ids.update(_ids(data.get("recipient_ids")))
    names = _names(ids)
    return [
        AlertHistoryEntry(
            at=event.recorded_at,
            what=_entry_words(event, data, names),
            by=names.get(event.actor_id, "") if event.actor_id is not None else "the system",
            refused=event.outcome == AuditOutcome.DENIED,
        )
        for event, data in zip(events, payloads, strict=True)
    ]
