"""What the browser tests share: signing in through the portal's form and writing screenshots to var/screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def portal_log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Any, name: str) -> None:
    """A full-page screenshot at var/screenshots/<name>, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
