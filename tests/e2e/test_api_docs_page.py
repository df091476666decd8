"""The API's docs page (/api/v1/docs/) in a real browser: Swagger UI renders every operation of the schema from our
own static files, under the site's Content-Security-Policy, with no console error and no request to another host.

Every ORM call happens before or after the `with chromium_page()` block (see tests/e2e/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from tests.e2e.browser_helpers import screenshot

pytestmark = pytest.mark.slow

ChromiumPage = Callable[[], AbstractContextManager[Any]]


def test_the_docs_page_renders_every_operation_from_our_own_files(
    chromium_page: ChromiumPage, transactional_db: None, live_server: Any
) -> None:
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operations = sum(1 for item in schema["paths"].values() for method in item if method in {"get", "post"})
    base = live_server.url
    host = urlsplit(base).netloc

    with chromium_page() as page:
        problems: list[str] = []
        foreign: list[str] = []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "request", lambda request: urlsplit(request.url).netloc not in {host, ""} and foreign.append(request.url)
        )

        page.goto(f"{base}/api/v1/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("ClinAIOps patient mobile API")
        expect(page.locator(".opblock").first).to_be_visible()
        expect(page.locator(".opblock")).to_have_count(operations)
        # One operation opened: its error responses are the documented one shape.
        page.locator(".opblock-summary-path", has_text="/api/v1/readings/").first.click()
        expect(page.locator(".responses-table").first).to_contain_text("503")
        # The table of error codes from the schema's description.
        expect(page.locator(".swagger-ui .info")).to_contain_text("token_expired")
        screenshot(page, "api-docs.png")

    assert problems == []
    assert foreign == []
