"""What the patient is told to do when a reading or symptom raises a safety alert: plain words, shown by the app
beside the alert (the care team has already been alerted; DESIGN §2). Not medical advice beyond "measure again" and
"get help now"; each hospital reviews this wording before go-live (docs/design-notes.md).

Sources, checked against the public patient pages (issue 12):
- hypertensive crisis: the American Heart Association's "Hypertensive crisis: when you should call 911 for high
  blood pressure". At 180/120 or higher, wait about five minutes and measure again; call 911 at once if there are
  signs of organ damage (chest pain, shortness of breath, back pain, numbness or weakness, a change in vision,
  difficulty speaking), without waiting to see whether the pressure comes down; if it is still this high without
  them, contact the care team as soon as possible. The alert itself fires at SBP >= 180 or DBP >= 120
  (clinaiops.loops.safety, ACC/AHA 2017).
- low blood pressure: the NHS and NHLBI patient pages. Get up slowly and drink water; get help at once for
  fainting, confusion, cold and clammy skin or fast, shallow breathing (signs of shock).
"""

from __future__ import annotations

from clinaiops.care.models import AlertKind

GUIDANCE: dict[str, str] = {
    AlertKind.HYPERTENSIVE_CRISIS: (
        "Your blood pressure is very high. Sit quietly, wait 5 minutes and measure again. Call emergency "
        "services (911) now if you have chest pain, shortness of breath, back pain, numbness, weakness, a change "
        "in vision or trouble speaking: do not wait for it to come down. Your care team has been alerted and will "
        "contact you; if it is still this high and you have not heard from them, call them."
    ),
    AlertKind.SUSTAINED_HYPOTENSION: (
        "Your blood pressure has been low. Sit or lie down, get up slowly and drink some water. Do not take an "
        "extra dose of your medicine. Your care team has been alerted and will contact you. Call emergency "
        "services (911) now if you faint, feel confused, have chest pain, or your skin is cold and clammy."
    ),
}

# The alert's name in the patient's words (the codes are for the care team and the client's logic).
TITLES: dict[str, str] = {
    AlertKind.HYPERTENSIVE_CRISIS: "Very high blood pressure",
    AlertKind.SUSTAINED_HYPOTENSION: "Low blood pressure",
}

# Shown with the care team's contact: the one line a patient needs when no alert is open.
URGENT_HELP = (
    "If you feel very unwell (chest pain, shortness of breath, sudden weakness, numbness or trouble speaking), "
    "call emergency services (911) now; do not wait for your care team."
)


def alert_guidance(kind: str) -> str | None:
    """The patient-facing guidance for an alert of this kind, or None (a break-glass alert is not the patient's)."""
    return GUIDANCE.get(kind)


def alert_title(kind: str) -> str:
    """The alert's name in the patient's words."""
    return TITLES.get(kind, "Alert about your blood pressure")
