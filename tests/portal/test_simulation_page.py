from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from clinaiops.core.models import User
from tests.conftest import audit_actions
from tests.fixtures.simulation_data import results_file_write

URL = "/governance/simulation/"


@pytest.fixture
def results_path(settings: Any, tmp_path: Path) -> Path:
    settings.SIMULATION_RESULTS_PATH = tmp_path / "simulation" / "latest.json"
    return Path(settings.SIMULATION_RESULTS_PATH)


@pytest.mark.parametrize("persona", ["safety_officer", "ml_engineer"])
def test_safety_officer_and_ml_engineer_see_every_arm_the_goal_and_the_charts(
    persona: str, request: pytest.FixtureRequest, results_path: Path, portal_client_for: Callable[[User], Client]
) -> None:
    document = results_file_write(results_path)
    response = portal_client_for(request.getfixturevalue(persona)).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for arm in document["arms"].values():
        assert arm["label"] in page
        # The figures as numbers people read: shares as percentages, never raw fractions or field names.
        assert f"{arm['at_target_end']:.1%}" in page and f"{arm['time_in_range']:.1%}" in page
    assert "at_target_end" not in page
    # Charts are inline SVG with a title and a text description, and the goal is said in words.
    assert page.count('role="img"') == 4 and "<desc>" in page
    assert "Does not hold" in page or "Holds" in page
    assert "at most 30% of clinician-only" in page
    assert "Skin tone (Fitzpatrick)" in page and "V–VI" in page
    assert 'href="/governance/simulation/"' in page  # the nav link


def test_the_goal_checks_say_what_held_and_what_did_not(
    results_path: Path, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    document = results_file_write(results_path)
    checks = {c["name"]: c["passed"] for c in document["goal"]["checks"]}
    # Made-up courses: ClinAIOps reviews 1 per patient-course against 4 (25 %), and beats usual care.
    assert checks["reviews_at_most_30_percent"] and checks["beats_usual_care"] and checks["control_non_inferior"]
    page = portal_client_for(safety_officer).get(URL).content.decode()
    assert page.count("<strong>Holds:</strong>") == sum(checks.values())
    assert page.count("<strong>Does not hold:</strong>") == len(checks) - sum(checks.values())


def test_without_results_the_page_says_how_to_produce_them(
    results_path: Path, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(safety_officer).get(URL).content.decode()
    assert "No simulation has been run yet." in page
    assert "manage.py simulate" in page and str(results_path) in page


def test_an_unreadable_results_file_is_said_in_words_not_a_500(
    results_path: Path, ml_engineer: User, portal_client_for: Callable[[User], Client]
) -> None:
    results_path.parent.mkdir(parents=True)
    results_path.write_text('{"schema": "clinaiops-simulation/1", "arms": {}}')
    response = portal_client_for(ml_engineer).get(URL)
    assert response.status_code == 200
    assert "from another version or incomplete" in response.content.decode()


@pytest.mark.parametrize("persona", ["clinician", "compliance_officer", "patient"])
def test_other_roles_are_refused_and_the_refusal_is_audited(
    persona: str, request: pytest.FixtureRequest, results_path: Path, portal_client_for: Callable[[User], Client]
) -> None:
    results_file_write(results_path)
    user = request.getfixturevalue(persona)
    user = user.user if hasattr(user, "user") else user
    response = portal_client_for(user).get(URL)
    assert response.status_code == 403
    assert "access.denied" in audit_actions(actor=user)
    assert b"Clinician-only remote monitoring" not in response.content


def test_signed_out_visitor_is_sent_to_sign_in(results_path: Path) -> None:
    response = Client().get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]
