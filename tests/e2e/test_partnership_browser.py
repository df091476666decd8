"""The patient–clinician loop in a real browser: a clinician sets a goal, writes a note and overrides the
follow-up date on the care plan, then opens the printable visit summary. Screenshots: var/screenshots/partnership-*.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.partnership.models import CareNote, FollowUpPlan, LifestyleGoal
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_clinician_sets_a_goal_writes_a_note_and_overrides_the_follow_up_in_the_browser(
    chromium_page: ChromiumPage, transactional_db: None, live_server: Any, patient: Patient, clinician: User
) -> None:
    readings_add(patient, [(124, 78), (150, 95), (128, 79), (119, 74), (146, 92), (126, 77)] * 2)
    due = timezone.localdate() + timedelta(days=21)
    base = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto(f"{base}/login/")
        page.get_by_label("Username").fill(clinician.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        # The patient page carries the care plan section, with the follow-up and its reason.
        page.goto(f"{base}/patients/{patient.pk}/")
        section = page.locator("section", has=page.get_by_role("heading", name="Care plan"))
        expect(section).to_contain_text("Next follow-up")
        section.get_by_role("link", name="Open the care plan").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Care plan")

        # A bad target: the field says why, and the form stays open with what was typed.
        page.get_by_text("Set a lifestyle goal").click()
        page.get_by_label("Goal", exact=True).select_option("activity")
        page.get_by_label("Target", exact=True).fill("5000")
        page.get_by_role("button", name="Set goal").click()
        goal_form = page.locator("form", has=page.get_by_role("button", name="Set goal"))
        expect(goal_form).to_contain_text("That target is outside the plausible range.")
        expect(goal_form).to_contain_text("For physical activity, enter 10 to 1,500 minutes a week.")
        page.screenshot(path=str(SCREENSHOTS / "partnership-goal-refused.png"), full_page=True)
        page.get_by_label("Target", exact=True).fill("150")
        page.get_by_role("button", name="Set goal").click()
        expect(page.locator(".messages")).to_contain_text("Goal set: Physical activity.")
        goals = page.locator("section", has=page.get_by_role("heading", name="Shared goals"))
        expect(goals.get_by_role("row").filter(has_text="Physical activity")).to_contain_text("150 minutes a week")

        page.get_by_text("Write a note").click()
        page.get_by_label("Note", exact=True).fill("Great progress; keep walking after dinner.")
        page.get_by_label("The patient can read this note").check()
        page.get_by_role("button", name="Save note").click()
        expect(page.locator(".messages")).to_contain_text("the patient can read it")
        expect(page.locator("ul.notes")).to_contain_text("keep walking after dinner")

        page.get_by_text("Change the date").click()
        page.get_by_label("Next follow-up on").fill(due.isoformat())
        page.get_by_label("Reason for the change").fill("Review after the new dose settles")
        page.get_by_role("button", name="Set follow-up date").click()
        expect(page.locator(".messages")).to_contain_text("Follow-up date changed.")
        follow = page.locator("section", has=page.get_by_role("heading", name="Next follow-up"))
        expect(follow).to_contain_text(f"{due.day} {due:%b %Y}")
        expect(follow).to_contain_text("Set by Dr Assigned: Review after the new dose settles")
        page.screenshot(path=str(SCREENSHOTS / "partnership-care-plan.png"), full_page=True)

        # The printable visit summary: header, date, chart, and no editing forms.
        page.get_by_role("link", name="patient's copy").first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Your blood pressure care")
        expect(page.locator("svg[role=img]").first).to_be_visible()
        assert page.locator("form").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "partnership-visit-summary-patient.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(SCREENSHOTS / "partnership-visit-summary-print.png"), full_page=True)

    assert LifestyleGoal.objects.get(patient=patient).target_value == 150
    assert CareNote.objects.get(patient=patient).visible_to_patient
    assert FollowUpPlan.objects.get(patient=patient).override_due_on == due
    assert {"goal.set", "note.written", "followup.overridden"} <= set(audit_actions(actor=clinician))
