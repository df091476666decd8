"""A little of the patient–clinician loop for the demo, written through the same audited services the portal
uses. fixtures/demo.py calls `partnership_demo_seed` once the history is seeded (the lead wires it in).

Deterministic: what each patient gets depends only on their position in `patients`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.partnership.services import (
    MAX_FOLLOWUP_BACKDATE_DAYS,
    care_note_write,
    followup_override_set,
    followup_record,
    goal_checkin_record,
    lifestyle_goal_set,
)

_VISIBLE_NOTES = (
    "Your readings are coming down nicely. Keep taking your tablets in the morning.",
    "Try to keep salty foods (bread, cheese, ready meals) to once a day.",
    "A 30-minute walk after dinner on most days will help your blood pressure.",
)
_PRIVATE_NOTES = (
    "Possible white-coat effect: clinic readings run 15 mmHg above home readings.",
    "Discussed ankle swelling on amlodipine; review at next follow-up.",
)

# A week of the patient's own check-ins for every sixth patient: enough to show progress, cheap for `make demo`.
CHECKIN_DAYS = 7


@dataclass(frozen=True)
class PartnershipSeedCounts:
    goals: int
    checkins: int
    notes: int
    followups: int
    overrides: int


def partnership_demo_seed(
    *, clinician: User, patients: Sequence[Patient], today: date | None = None
) -> PartnershipSeedCounts:
    """Goals, check-ins, notes and recorded follow-ups for `patients` (all on `clinician`'s care team).

    - every patient: a follow-up recorded 0–31 days ago (staggered), so only those the rule wants back sooner
      (a recent alert, volatile readings) are overdue, and the worklist is not flooded on day one;
    - every third patient: salt, activity and medicine-taking goals, and a sleep goal for every sixth;
    - every sixth: a week (CHECKIN_DAYS) of the patient's own check-ins (salt, activity, sleep);
    - every fourth: a note the patient can see, and every eighth a private clinical note;
    - every twentieth: a clinician's override of the follow-up date, with a reason.
    """
    today = today or timezone.localdate()
    goals = checkins = notes = followups = overrides = 0
    for index, patient in enumerate(patients):
        followup_record(
            actor=clinician,
            patient=patient,
            held_on=today - timedelta(days=index % (MAX_FOLLOWUP_BACKDATE_DAYS + 1)),
            today=today,
        )
        followups += 1
        if index % 3 == 0:
            for kind, target in (("sodium", 1500), ("activity", 150), ("adherence", 90)):
                lifestyle_goal_set(actor=clinician, patient=patient, kind=kind, target_value=Decimal(target))
                goals += 1
            if index % 6 == 0:
                lifestyle_goal_set(actor=clinician, patient=patient, kind="sleep", target_value=Decimal(7))
                goals += 1
        if index % 6 == 0:
            for day in range(CHECKIN_DAYS):
                on = today - timedelta(days=day)
                wobble = (index + day) % 5
                for kind, value in (
                    ("sodium", 1400 + 150 * wobble),
                    ("activity", 10 + 8 * wobble),
                    ("sleep", Decimal("6.0") + Decimal("0.4") * wobble),
                ):
                    goal_checkin_record(actor=patient.user, patient=patient, kind=kind, day=on, value=value)
                    checkins += 1
        if index % 4 == 0:
            body = _VISIBLE_NOTES[index % len(_VISIBLE_NOTES)]
            care_note_write(actor=clinician, patient=patient, body=body, visible_to_patient=True)
            notes += 1
        if index % 8 == 0:
            body = _PRIVATE_NOTES[index % len(_PRIVATE_NOTES)]
            care_note_write(actor=clinician, patient=patient, body=body, visible_to_patient=False)
            notes += 1
        if index % 20 == 0:
            followup_override_set(
                actor=clinician,
                patient=patient,
                due_on=today + timedelta(days=10 + index % 7),
                reason="Review after the dose change settles.",
                today=today,
            )
            overrides += 1
    return PartnershipSeedCounts(goals, checkins, notes, followups, overrides)
