"""The recommendation state machine (clinaiops.loops.models.RECOMMENDATION_TRANSITIONS), enforced in one place."""

from __future__ import annotations

from typing import Any

from clinaiops.core.errors import InvalidTransition
from clinaiops.loops.models import RECOMMENDATION_TRANSITIONS, Recommendation


def recommendation_transition(rec: Recommendation, to_status: str, **changes: Any) -> None:
    """Move `rec` to `to_status`, refusing moves outside the map. The update is conditional on the status read,
    so of two concurrent moves exactly one wins. Caller holds the transaction and writes the audit event."""
    if to_status not in RECOMMENDATION_TRANSITIONS[rec.status]:
        raise InvalidTransition(f"This recommendation is {rec.get_status_display().lower()} and cannot change now.")
    updated = Recommendation.objects.filter(pk=rec.pk, status=rec.status).update(status=to_status, **changes)
    if updated != 1:
        raise InvalidTransition("This recommendation was changed by someone else; reload and try again.")
    rec.status = to_status
    for name, value in changes.items():
        setattr(rec, name, value)
