"""Governance actions in a real browser (issue 11): an ML engineer signs off a validated version with an
e-signature, promotes it to shadow and compares two versions; a safety officer reads the model page's charts.
Screenshots go to var/screenshots/governance-*.png.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from playwright.sync_api import expect

from clinaiops.core.models import User
from governance.models import ApprovalPolicy, ModelSignoff
from inference.models import ModelVersion, ServingPointer
from tests.conftest import audit_actions
from tests.e2e.browser_helpers import SCREENSHOTS
from tests.e2e.browser_helpers import portal_log_in as _log_in
from tests.factories import PASSWORD
from tests.portal.test_governance_actions import trained_model  # noqa: F401 - the fixture for this tree's features

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"governance-{name}.png"), full_page=True)


def test_ml_engineer_signs_off_promotes_to_shadow_and_compares_then_safety_officer_reads_the_charts(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    trained_model: ModelVersion,  # noqa: F811
    ml_engineer: User,
    safety_officer: User,
) -> None:
    base = live_server.url
    version = trained_model
    with chromium_page() as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        _log_in(page, base, ml_engineer.username)
        page.goto(f"{base}/models/{version.pk}/")
        form = page.locator("form.signoff-form")
        expect(form).to_be_visible()
        form.get_by_label("Password").fill("not my password")
        form.get_by_role("button", name=f"Sign off {version.short_hash}").click()
        expect(page.locator("form.signoff-form")).to_contain_text("Incorrect password.")
        page.locator("form.signoff-form").get_by_label("Password").fill(PASSWORD)
        page.locator("form.signoff-form").get_by_role("button", name=f"Sign off {version.short_hash}").click()
        expect(page.locator(".messages")).to_contain_text("Signed off")
        _shot(page, "signed-off")
        page.get_by_role("button", name="Promote to shadow").click()
        expect(page.locator(".messages")).to_contain_text("The shadow arm now serves")
        page.goto(f"{base}/models/")
        expect(page.get_by_role("heading", name="Compare two versions")).to_have_count(0)  # one version only
        page.goto(f"{base}/models/compare/?a={version.pk}&b={version.pk}")
        expect(page.get_by_role("heading", name="Gates")).to_be_visible()
        _shot(page, "compare")
        page.get_by_role("button", name="Log out").click()

        _log_in(page, base, safety_officer.username)
        page.goto(f"{base}/models/{version.pk}/")
        for css in ("chart-reliability", "chart-roc", "chart-confusion"):
            expect(page.locator(f"svg.{css}")).to_be_visible()
            assert page.locator(f"svg.{css}").bounding_box()["height"] > 100
        expect(page.locator("form.signoff-form")).to_contain_text("needs a full review")
        page.locator("details").filter(has=page.locator("svg.chart-fairness")).first.evaluate("d => d.open = true")
        _shot(page, "model-charts")
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("document.documentElement.scrollWidth")
        _shot(page, "model-390")

        # The safety officer previews a policy change: the diff and the impact, before anything is signed.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/governance/policy/")
        page.get_by_label("Minimum model confidence").fill("0.9")
        page.get_by_label("Reason for the change").fill("Fewer unreviewed changes while the cohort is small")
        page.get_by_role("button", name="Preview the change and its impact").click()
        preview = page.locator(".preview")
        expect(preview).to_contain_text("Impact over the last 14 days")
        expect(preview.locator("table.policy-diff")).to_contain_text("0.9")
        expect(page.get_by_label("Reason for the change")).to_have_value(
            "Fewer unreviewed changes while the cohort is small"
        )
        _shot(page, "policy-preview")

    assert ModelSignoff.objects.filter(model_version=version, signer=ml_engineer).count() == 1
    assert ServingPointer.objects.get(arm="shadow").model_version_id == version.pk
    assert "signature.refused" in audit_actions(actor=ml_engineer)
    assert width <= 420, f"the model page overflows at 390 px: {width} px wide"
    assert ApprovalPolicy.objects.count() == 1  # the preview signed nothing
