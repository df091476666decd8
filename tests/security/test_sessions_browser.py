"""Issue 8 §4 in a real browser (headless Chromium, see tests/e2e/conftest.py): the idle warning appears before the
logoff, "Stay signed in" keeps the session, the logoff happens without it, and the Content-Security-Policy
(no inline script) blocks nothing the pages need."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from playwright.sync_api import expect

from clinaiops.core.models import User
from tests.e2e.conftest import chromium_page  # noqa: F401 - the fixture
from tests.factories import PASSWORD

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def test_the_idle_warning_offers_to_stay_and_the_session_ends_without_it(
    chromium_page: ChromiumPage,  # noqa: F811
    transactional_db: None,
    live_server: Any,
    clinician: User,
    settings: Any,
) -> None:
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 8
    settings.SESSION_IDLE_WARNING_SECONDS = 6
    base = live_server.url
    violations: list[str] = []

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    with chromium_page() as page:
        page.on("console", console)
        page.goto(f"{base}/login/")
        page.get_by_label("Username").fill(clinician.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/queue/")
        warning = page.get_by_role("alertdialog")
        expect(warning).to_be_visible(timeout=8_000)
        expect(warning).to_contain_text("You will be signed out in")
        page.get_by_role("button", name="Stay signed in").click()
        expect(warning).to_be_hidden()
        # Stayed: the warning comes back later, and without an answer the browser is signed out.
        expect(warning).to_be_visible(timeout=8_000)
        expect(page).to_have_url(f"{base}/login/?next=%2Fqueue%2F", timeout=15_000)
        expect(page.get_by_text("Signed out after 8 seconds without activity.")).to_be_visible()
        page.goto(f"{base}/queue/")
        expect(page).to_have_url(f"{base}/login/?next=/queue/")
    assert violations == []


def test_signing_out_ends_the_session_and_the_back_button_shows_nothing_stored(
    chromium_page: ChromiumPage,  # noqa: F811
    transactional_db: None,
    live_server: Any,
    clinician: User,
) -> None:
    base = live_server.url
    violations: list[str] = []
    with chromium_page() as page:
        page.on(
            "console", lambda message: violations.append(message.text) if "Security Policy" in message.text else None
        )
        page.goto(f"{base}/login/")
        page.get_by_label("Username").fill(clinician.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/queue/")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{base}/login/")
        # The page was not kept (no-store): going back asks the server, which answers with the sign-in form.
        page.go_back()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert violations == []
