"""The decision screen in a real browser (issue 11): a clinician hides and shows the wearable series, sees the step
picker appear only for Modify, is told how many attempts are left after a wrong password, signs, and opens the
next item. Everything here works without a line of inline script (the Content-Security-Policy forbids it): the
toggles and the picker are CSS. Screenshots go to var/screenshots/decision-*.png.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clinaiops.care.models import CareTeam, Patient
from clinaiops.care.services import ReadingInput, dose_log_store, symptom_store
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.ingest import reading_ingest
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make
from tests.e2e.browser_helpers import SCREENSHOTS
from tests.e2e.browser_helpers import portal_log_in as _log_in
from tests.factories import PASSWORD, PatientFactory, UserFactory

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def test_clinician_reads_the_context_modifies_signs_and_opens_the_next_item(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    patient: Patient,
    care_team: CareTeam,
    clinician: User,
    deployed_model: ModelVersion,
) -> None:
    now = timezone.now()
    # Older than the 7-day window the policy counts, so the proposal still waits for review.
    for hours, sbp, dbp in ((224, 150, 92), (212, 146, 90), (200, 152, 94)):
        reading_ingest(
            actor=patient.user, patient=patient, data=ReadingInput(now - timedelta(hours=hours), sbp, dbp, 71, "ppg")
        )
    for days_ago in range(10):
        dose_log_store(patient=patient, day=now.date() - timedelta(days=days_ago), taken=days_ago != 4)
    symptom_store(patient=patient, kind="headache", reported_at=now - timedelta(days=2))
    rec = pending_recommendation_make(patient)
    other = PatientFactory(user=UserFactory(username="pat_next", role="patient"), care_team=care_team, code="P-N002")
    second = pending_recommendation_make(other)
    modified_to = next(step for step in range(7) if step not in (rec.from_step, rec.to_step))
    base = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console: list[str] = []

    with chromium_page() as page:
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.set_viewport_size({"width": 1280, "height": 900})
        _log_in(page, base, clinician.username)
        page.goto(f"{base}/recommendations/{rec.pk}/")
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"Patient {patient.code}")
        page.screenshot(path=str(SCREENSHOTS / "decision-screen-1280.png"), full_page=True)

        # Two series, each with its toggle; unticking the wearable hides its points and its table rows.
        card = page.locator("section.bp-card")
        wide = card.locator(".chart-wide")
        wearable_points = wide.locator("g.readings.series-wearable g.reading")
        expect(wearable_points).to_have_count(3)
        expect(wearable_points.first).to_be_visible()
        expect(wide.locator("g.readings.series-cuff g.reading")).to_have_count(3)
        expect(wide.locator("g.proposal-marker")).to_be_visible()
        card.get_by_text("Readings table (6)").click()
        expect(card.locator("tbody tr.series-wearable").first).to_be_visible()
        card.get_by_label("Wearable (cuffless) (3)").uncheck()
        expect(wearable_points.first).to_be_hidden()
        expect(card.locator("tbody tr.series-wearable").first).to_be_hidden()
        expect(wide.locator("g.readings.series-cuff g.reading").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "decision-wearable-hidden-1280.png"), full_page=True)
        card.get_by_label("Wearable (cuffless) (3)").check()
        expect(wearable_points.first).to_be_visible()

        # The factors with the values the model saw; symptoms and adherence beside them.
        factors = page.locator("table.factor-table tbody tr")
        expect(factors).to_have_count(len(rec.top_factors))
        expect(page.locator("section", has=page.get_by_role("heading", name="Symptoms, last 30 days"))).to_contain_text(
            "Headache"
        )

        # The step picker shows for Modify only.
        picker = page.locator("[data-step-picker]")
        expect(picker).to_be_hidden()
        page.get_by_label(f"Accept: {rec.action} to step {rec.to_step}").check()
        expect(picker).to_be_hidden()
        page.get_by_label("Modify: choose another step").check()
        expect(picker).to_be_visible()
        page.get_by_label("New step (for Modify)").select_option(str(modified_to))
        page.get_by_label("Reason (the patient does not see this text)").fill("Prefer a smaller step on this ladder.")

        # A wrong password: nothing is signed, one attempt fewer is left, the form keeps the choice.
        expect(page.locator("[data-attempts-left]")).to_have_attribute("data-attempts-left", "5")
        page.get_by_label("Password", exact=True).fill("not my password")
        page.get_by_role("button", name="Sign and deliver").click()
        expect(page.get_by_text("The password did not match; nothing was signed.")).to_be_visible()
        expect(page.locator("[data-attempts-left]")).to_have_attribute("data-attempts-left", "4")
        expect(page.locator("[data-attempts-left]")).to_contain_text("4 of 5")
        expect(picker).to_be_visible()  # Modify is still chosen, so its picker stays open
        page.screenshot(path=str(SCREENSHOTS / "decision-modify-wrong-password-1280.png"), full_page=True)

        # The right password signs; the worklist offers the next item, which opens the other patient's proposal.
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign and deliver").click()
        expect(page).to_have_url(f"{base}/queue/")
        expect(page.get_by_text(f"Decision signed and delivered to patient {patient.code}.")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "decision-signed-next-item-1280.png"), full_page=True)
        page.locator("[data-next-item]").get_by_role("link").click()
        expect(page).to_have_url(f"{base}/recommendations/{second.pk}/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("P-N002")

        # The signed one now shows its decision, and "next item" too; on a phone the narrow chart is drawn.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/recommendations/{rec.pk}/")
        expect(page.get_by_role("heading", name="Decision: Modified")).to_be_visible()
        expect(page.locator("[data-next-item]").get_by_role("link")).to_have_attribute(
            "href", f"/recommendations/{second.pk}/"
        )
        expect(page.locator(".chart-narrow svg.chart-bp")).to_be_visible()
        expect(page.locator(".chart-wide svg.chart-bp")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(SCREENSHOTS / "decision-signed-390.png"), full_page=True)

    assert console == []
    signed = Recommendation.objects.select_related("decision").get(pk=rec.pk)
    assert (signed.decision.outcome, signed.decision.to_step) == ("modified", modified_to)
    assert signed.final_step == modified_to
