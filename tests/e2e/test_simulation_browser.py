"""The simulation page (issue 10) in a real browser: the safety officer follows the nav link and reads the arms,
the rendered SVG charts and the goal; a screenshot is kept in var/screenshots/simulation-page.png."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from clinaiops.core.models import User
from tests.factories import PASSWORD
from tests.fixtures.simulation_data import results_file_write

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_safety_officer_reads_the_simulated_arms_and_the_goal(
    chromium_page: Callable[[], AbstractContextManager[Any]],
    transactional_db: None,
    live_server: Any,
    safety_officer: User,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.SIMULATION_RESULTS_PATH = tmp_path / "latest.json"
    results_file_write(settings.SIMULATION_RESULTS_PATH)
    with chromium_page() as page:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(safety_officer.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Simulation").click()
        expect(page.get_by_role("heading", name="Simulated clinical value", level=1)).to_be_visible()
        expect(page.get_by_role("img", name="Patients at target at the end")).to_be_visible()
        expect(page.get_by_text("ClinAIOps needs at most 30% of clinician-only's reviews")).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "simulation-page.png"), full_page=True)
