"""The clinician's worklist and an alert, in a real browser (issue 11): the clinician opens the worklist, sees the
patient with the crisis first and the overdue item marked in words, filters to the overdue ones, opens the alert
from the alerts inbox, sees the triggering reading, its owner and history, is refused without a disposition, and
acknowledges with one. Screenshots: var/screenshots/worklist-*.png and alert-*.png.

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

from clinaiops.care.models import Alert, CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make, readings_add
from tests.e2e.browser_helpers import portal_log_in as _log_in
from tests.e2e.browser_helpers import screenshot as _shot
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def test_clinician_triages_the_worklist_and_acknowledges_an_alert_with_a_disposition(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    patient: Patient,
    care_team: CareTeam,
    clinician: User,
    deployed_model: ModelVersion,
    settings: Any,
) -> None:
    settings.EVALUATION_ON_READING = False
    settings.REVIEW_SLA_HOURS = 48
    crisis = PatientFactory(user=UserFactory(username="pat_crisis", role="patient"), care_team=care_team, code="P-0143")
    waited = pending_recommendation_make(patient)
    pending_recommendation_make(crisis)
    readings_add(crisis, [(192, 122)], end=timezone.now() - timedelta(minutes=20))
    Recommendation.objects.filter(pk=waited.pk).update(created_at=timezone.now() - timedelta(hours=60))
    alert = Alert.objects.get(patient=crisis, kind="hypertensive_crisis")
    base = live_server.url

    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        _log_in(page, base, clinician.username)
        expect(page).to_have_url(f"{base}/queue/")
        rows = page.locator("table.worklist tbody tr")
        expect(rows).to_have_count(2)
        # The crisis patient is first although newer; the older item is overdue, said in words.
        expect(rows.nth(0)).to_contain_text("P-0143")
        expect(rows.nth(0)).to_contain_text("Open safety alert")
        expect(rows.nth(1)).to_contain_text("P-0001")
        expect(rows.nth(1)).to_contain_text("Overdue by 12 h")
        _shot(page, "worklist-1-triage.png")

        page.locator('[data-facet="overdue:1"]').click()
        expect(page).to_have_url(f"{base}/queue/?overdue=1")
        expect(rows).to_have_count(1)
        expect(rows.nth(0)).to_contain_text("P-0001")
        expect(page.get_by_text("1 shown with these filters")).to_be_visible()
        _shot(page, "worklist-2-overdue-filter.png")

        page.get_by_role("link", name="Inbox", exact=True).click()
        expect(page.get_by_role("heading", name="Clinical inbox")).to_be_visible()
        expect(page.get_by_text(f"P0 alert {alert.pk} for patient P-0143 is yours")).to_be_visible()
        _shot(page, "alert-0-inbox.png")

        page.get_by_role("link", name="Alerts", exact=True).click()
        page.get_by_role("link", name=f"Open alert {alert.pk}").click()
        expect(page.get_by_role("heading", name=f"Alert {alert.pk}: Hypertensive crisis")).to_be_visible()
        expect(page.locator("tr.trigger")).to_contain_text("192/122")
        expect(page.locator("tr.trigger")).to_contain_text("triggered this alert")
        expect(page.get_by_text("Opened by the safety rule on a reading")).to_be_visible()
        expect(page.get_by_text("Notified: Dr Assigned")).to_be_visible()
        _shot(page, "alert-1-page.png")

        # No disposition: refused at the field, nothing stored.
        page.get_by_label("Note", exact=True).fill("Called the patient")
        page.get_by_role("button", name=f"Acknowledge alert {alert.pk}").click()
        expect(page.locator("fieldset .errorlist")).to_contain_text("This field is required")
        expect(page.get_by_label("Note", exact=True)).to_have_value("Called the patient")
        _shot(page, "alert-2-field-error.png")

        page.get_by_label("Advised the emergency department").check()
        page.get_by_label("Note", exact=True).fill("Called the patient: chest tightness, advised the ED now")
        page.get_by_role("button", name=f"Acknowledge alert {alert.pk}").click()
        expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
        expect(page.get_by_text("No open alerts.")).to_be_visible()
        page.goto(f"{base}/alerts/{alert.pk}/")
        expect(page.get_by_text("Acknowledged: advised the emergency department (Dr Assigned)")).to_be_visible()
        _shot(page, "alert-3-acknowledged.png")

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/queue/")
        _shot(page, "worklist-3-phone.png")

    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.acknowledged_by) == ("acknowledged", "advised_emergency", clinician)
    assert alert.acknowledgement_note == "Called the patient: chest tightness, advised the ED now"


def test_safety_officer_works_the_security_inbox_and_never_sees_clinical_alerts(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    patient: Patient,
    safety_officer: User,
    unassigned_clinician: User,
) -> None:
    from clinaiops.care.services import break_glass_open

    readings_add(patient, [(186, 112)])  # a clinical alert: the care team's, not the safety officer's
    break_glass_open(actor=unassigned_clinician, patient_code=patient.code, reason="Covering the crisis tonight")
    alert = Alert.objects.get(kind="break_glass")
    base = live_server.url

    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        _log_in(page, base, safety_officer.username)
        page.get_by_role("link", name="Inbox", exact=True).click()
        expect(page.get_by_role("heading", name="Security inbox")).to_be_visible()
        expect(
            page.get_by_text(f"Security alert {alert.pk}: emergency access to patient {patient.code}")
        ).to_be_visible()
        expect(page.get_by_text("is yours")).to_have_count(0)
        page.get_by_role("link", name="Alerts", exact=True).click()
        expect(page.get_by_role("heading", name="Open security alerts")).to_be_visible()
        expect(page.get_by_text("Hypertensive crisis")).to_have_count(0)
        page.get_by_role("link", name=f"Open alert {alert.pk} to acknowledge").click()
        expect(page.get_by_text("Covering the crisis tonight")).to_be_visible()
        page.get_by_label("Access was justified").check()
        page.get_by_label("Note", exact=True).fill("Checked with the night ward: covering the P0")
        _shot(page, "alert-4-security.png")
        page.get_by_role("button", name=f"Acknowledge alert {alert.pk}").click()
        expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
        expect(page.get_by_text("No open security alerts.")).to_be_visible()

    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.acknowledged_by) == (
        "acknowledged",
        "access_justified",
        safety_officer,
    )
