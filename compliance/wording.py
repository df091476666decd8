"""Words for the codes the compliance reports show (STYLE: people read words, not codes), in one place. The
ledger's own codes (actions, roles, purposes, export kinds) are worded in governance.accounting, which the portal
shares."""

from __future__ import annotations

TIER_WORDS = {
    "minor": "minor: delivered to the patient without review",
    "major": "major: a clinician decides",
    "feedback": "feedback: no change proposed, delivered to the patient without review",
}
TRIGGER_WORDS = {"scheduled": "scheduled evaluation", "on_demand": "evaluation asked for by a clinician"}
DECISION_WORDS = {"accepted": "accepted", "modified": "modified", "rejected": "rejected", "": "no clinician decision"}
APPROVAL_WORDS = {
    "registered": "registered, not validated",
    "validated": "validated, awaiting sign-offs",
    "rejected": "rejected by its gates",
    "approved": "approved by two sign-offs",
    "retired": "retired",
}
STATUS_WORDS = {
    "pending_review": "waiting for clinician review",
    "delivered": "delivered to the patient",
    "acknowledged": "acknowledged by the patient",
    "declined": "declined by the patient",
    "superseded": "superseded",
}


def words(table: dict[str, str], code: str | None) -> str:
    return table.get(code or "", (code or "").replace("_", " "))
