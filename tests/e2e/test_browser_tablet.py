"""Every portal page at 390 px (a phone) and 768 px (a tablet), as each persona, in headless Chromium (issue 11):

* nothing is wider than the screen (document.documentElement.scrollWidth <= the viewport's width): tables scroll
  inside their cards and charts scale;
* no console errors (a Content-Security-Policy violation is one) and no request answered 404 (the favicon);
* the skip link is the first thing Tab reaches, and the app bar's links show a focus ring.

The pages are the URL matrix's (tests/portal/test_url_matrix.py): each HTML page of the portal and the compliance
surface that the persona may open (200 in its column). Screenshots go to var/screenshots/tablet-*.png.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion
from tests.conftest import readings_add
from tests.portal.test_url_matrix import MATRIX, PERSONAS, _kwargs, _surface_patterns

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = (390, 768)
# The HTML surfaces; the rest answer JSON, CSV or a stream.
HTML_SURFACES = ("portal:", "compliance:")
NOT_HTML = {
    "portal:session", "portal:visit-summary-pdf", "compliance:audit-stream", "compliance:accounting-stream",
    "compliance:decisions-stream",
}  # fmt: skip
# Every persona that signs in to the portal; a patient may open only the account pages and the sign-in page there.
PORTAL_PERSONAS = (
    "patient",
    "clinician",
    "unassigned_clinician",
    "ml_engineer",
    "safety_officer",
    "compliance_officer",
)


def _pages_for(persona: str, objects: dict[str, int]) -> list[tuple[str, str]]:
    """(name, url) of every HTML page `persona` may open, from the URL matrix."""
    column = PERSONAS.index(persona)
    pages = []
    for name, pattern in sorted(_surface_patterns().items()):
        # A pattern without a matrix row fails tests/portal/test_url_matrix.py; it is not this test's to guess.
        if not name.startswith(HTML_SURFACES) or name in NOT_HTML or MATRIX.get(name, (0,) * 8)[column] != 200:
            continue
        pages.append((name, reverse(name, kwargs=_kwargs(name, pattern, objects))))
    return pages


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def test_every_portal_page_fits_a_phone_and_a_tablet_for_every_persona(
    chromium_page: ChromiumPage,
    transactional_db: None,
    live_server: Any,
    request: pytest.FixtureRequest,
    pending_recommendation: Recommendation,
    patient: Patient,
    deployed_model: ModelVersion,
) -> None:
    readings_add(patient, [(186, 112)])  # a crisis: the alert exists and the alert pages have rows
    objects = {
        "recommendation": pending_recommendation.pk,
        "patient": patient.pk,
        "alert": Alert.objects.filter(patient=patient).values_list("pk", flat=True).first() or 0,
        "model": deployed_model.pk,
        "audit_event": AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first() or 0,
    }
    personas = {
        persona: patient.user if persona == "patient" else request.getfixturevalue(persona)
        for persona in PORTAL_PERSONAS
    }
    cookies = {persona: _session_cookie(user) for persona, user in personas.items()}
    plan = {persona: _pages_for(persona, objects) for persona in PORTAL_PERSONAS}
    assert sum(len(pages) for pages in plan.values()) > 30, "the URL matrix lists the portal's pages"
    base = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    too_wide: list[str] = []
    problems: list[str] = []

    with chromium_page() as page:
        page.on("console", lambda m: problems.append(f"{page.url}: console {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        page.on("response", lambda r: problems.append(f"404 {r.url}") if r.status == 404 else None)
        for persona, pages in plan.items():
            page.context.clear_cookies()
            page.context.add_cookies([{"name": "sessionid", "value": cookies[persona], "url": base}])
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 844 if width == 390 else 1024})
                for name, url in pages:
                    response = page.goto(base + url)
                    assert response is not None and response.status == 200, (
                        f"{persona} {url}: {response and response.status}"
                    )
                    scroll_width = page.evaluate("document.documentElement.scrollWidth")
                    if scroll_width > width:
                        too_wide.append(f"{persona} {url} at {width}px: {scroll_width}px wide")
                    shot = name.replace(":", "-")
                    page.screenshot(path=str(SCREENSHOTS / f"tablet-{persona}-{shot}-{width}.png"))

        # Keyboard: the first Tab reaches the skip link, which takes focus past the app bar to the page.
        page.context.clear_cookies()
        page.context.add_cookies([{"name": "sessionid", "value": cookies["clinician"], "url": base}])
        page.set_viewport_size({"width": 768, "height": 1024})
        page.goto(f"{base}/patients/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to the main content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # The app bar's links show a visible ring on the dark bar: a white outline, not the default shadow.
        page.keyboard.press("Shift+Tab")  # back into the app bar
        nav_link = page.locator("header.top nav a").first
        nav_link.focus()
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineColor]; }"
        )
        assert outline == ["solid", "rgb(255, 255, 255)"]
        page.screenshot(path=str(SCREENSHOTS / "tablet-focus-ring-768.png"))

    assert too_wide == []
    assert problems == []
