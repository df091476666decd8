"""The clinician portal in a real browser: headless Debian Chromium against Django's live server.

The Django test client never runs the browser's side of the contract: cookies and CSRF tokens round-tripping
through real forms, radio buttons and password fields, redirects followed by a browser, flash messages, inline
SVG actually rendered. These tests sign a decision the way a clinician does.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from playwright.sync_api import expect

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.evaluation import evaluation_run
from inference.models import ModelVersion
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_clinician_reviews_and_signs_a_major_recommendation_in_the_browser(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    patient: Patient,
    clinician: User,
    deployed_model: ModelVersion,
) -> None:
    readings_add(patient, [(168, 99)] * 3)  # too few readings for autonomy → a major proposal
    rec = evaluation_run(patient=patient)
    assert rec is not None and (rec.tier, rec.status) == ("major", "pending_review")
    top_factor = rec.top_factors[0]["label"]
    base = live_server.url

    with chromium_page() as page:
        _log_in(page, base, clinician.username)

        # A clinician lands on the review queue; the proposal waits there.
        expect(page).to_have_url(f"{base}/queue/")
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        row = page.locator("table.worklist").get_by_role("row").filter(has_text=patient.code)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(rec.action)
        row.get_by_role("link", name="Review").click()

        # The detail page: the trend chart and the SHAP factors are rendered as inline SVG.
        expect(page).to_have_url(f"{base}/recommendations/{rec.pk}/")
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"Patient {patient.code}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(rec.action)
        trend = page.locator("section", has=page.get_by_role("heading", name="Blood pressure, last 30 days"))
        expect(trend.locator("svg[role=img]:visible")).to_have_count(1)  # the wide rendering; the phone's is hidden
        assert trend.locator("svg").first.bounding_box()["height"] > 50
        factors = page.locator("section", has=page.get_by_role("heading", name="Top factors (SHAP)"))
        expect(factors.locator("svg[role=img]")).to_be_visible()
        expect(factors.locator("svg")).to_contain_text(top_factor)

        # A wrong password signs nothing and says so; the form keeps the decision.
        page.locator("input[name=outcome][value=accepted]").check()
        page.get_by_label("Reason").fill("Uncontrolled on three readings; titrate.")
        page.get_by_label("Password").fill("not my password")
        page.get_by_role("button", name="Sign and deliver").click()
        expect(page.get_by_text("The password did not match; nothing was signed.")).to_be_visible()
        expect(page).to_have_url(f"{base}/recommendations/{rec.pk}/")
        expect(page.locator("input[name=outcome][value=accepted]")).to_be_checked()

        # The right password signs it; the browser is sent back to an empty queue with the confirmation.
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign and deliver").click()
        expect(page).to_have_url(f"{base}/queue/")
        expect(page.get_by_text(f"Decision signed and delivered to patient {patient.code}.")).to_be_visible()
        expect(page.get_by_text("Nothing waiting for review.")).to_be_visible()

    rec = Recommendation.objects.select_related("decision__signature").get(pk=rec.pk)
    assert rec.status == "delivered"
    assert rec.final_step == rec.to_step
    assert rec.decision.outcome == "accepted"
    assert rec.decision.clinician_id == clinician.pk
    assert rec.decision.signature.signer_id == clinician.pk
    assert rec.decision.signature.printed_name == clinician.printed_name == "Dr Assigned"
    actions = audit_actions(actor=clinician)  # the model's two sign-offs are signatures too, by other people
    assert actions.count("signature.refused") == 1
    assert actions.count("signature.created") == 1


def test_patient_signing_in_to_the_portal_is_sent_to_the_app(
    chromium_page: ChromiumPage, transactional_db: None, live_server: Any, patient: Patient
) -> None:
    base = live_server.url
    with chromium_page() as page:
        _log_in(page, base, patient.user.username)
        expect(page.get_by_role("heading", name="This portal is for the care team")).to_be_visible()
        expect(page.get_by_role("link", name="Review queue")).to_have_count(0)

        response = page.goto(f"{base}/")
        assert response is not None and response.status == 403
        queue = page.goto(f"{base}/queue/")
        assert queue is not None and queue.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/queue/$"))


def test_safety_officer_stops_the_ai_the_clinician_sees_the_banner_and_resuming_restores_autonomy(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    patient: Patient,
    clinician: User,
    safety_officer: User,
    deployed_model: ModelVersion,
) -> None:
    """The stop switch (issue 10, EU AI Act art. 14) the way the people use it: the safety officer signs a stop
    for everyone, every clinician page carries the banner, an evaluation goes to review, and a signed resume
    brings autonomy back."""
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import AIStop

    readings_add(patient, [(121, 77)] * 8)  # at target: a confident "maintain", delivered alone when not stopped
    base = live_server.url

    with chromium_page() as page:
        _log_in(page, base, safety_officer.username)
        page.get_by_role("link", name="Stop switch").click()
        expect(page.get_by_role("heading", name="Stop switch", level=1)).to_be_visible()
        page.get_by_label("Everyone").check()
        page.get_by_label("Why you are stopping the AI").fill("Drift alarm on the new cuff model")
        page.locator("form[data-ai-stop-form]").get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign and stop the AI").click()
        banner = page.locator("[data-ai-stop-banner]")
        expect(banner).to_contain_text("AI stopped for everyone")
        expect(page.get_by_role("row").filter(has_text="Drift alarm on the new cuff model")).to_have_count(1)

        page.context.clear_cookies()
        _log_in(page, base, clinician.username)
        expect(page).to_have_url(f"{base}/queue/")
        expect(page.locator("[data-ai-stop-banner]")).to_contain_text("every proposal goes to clinician review")

    stop = AIStop.objects.get()
    assert stop.in_force and stop.stopped_by == safety_officer
    stopped = evaluation_run(patient=patient)
    assert stopped is not None
    assert (stopped.status, stopped.tier, stopped.arm, stopped.tier_reasons) == (
        "pending_review", "major", "rules_only", ["ai_stopped"]
    )  # fmt: skip

    with chromium_page() as page:
        _log_in(page, base, clinician.username)
        # In the queue for review (the worklist table: the overdue follow-ups below list the patient too).
        expect(page.locator("table.worklist").get_by_role("row").filter(has_text=patient.code)).to_have_count(1)

        page.context.clear_cookies()
        _log_in(page, base, safety_officer.username)
        page.goto(f"{base}/governance/ai-stop/")
        resume = page.locator("form[data-ai-resume-form]")
        resume.get_by_label("Why it is safe to resume").fill("Drift explained; cuff firmware fixed")
        resume.get_by_label("Password").fill(PASSWORD)
        resume.get_by_role("button", name="Sign and resume").click()
        expect(page.locator(".messages")).to_contain_text("AI resumed")
        expect(page.locator("[data-ai-stop-banner]")).to_have_count(0)

    stop.refresh_from_db()
    assert not stop.in_force and stop.resumed_by == safety_officer
    assert audit_actions(object_type="ai_stop") == ["ai.stopped", "ai.resumed"]
    again = evaluation_run(patient=patient, as_of=timezone.now() + timedelta(days=1))
    assert again is not None and (again.status, again.tier) == ("delivered", "feedback")
