"""The model card's "Simulated clinical value" section (issue 10): from the latest `manage.py simulate` results when
present, saying whether the simulation's model is this version, and "not run" when there are none."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinaiops.core.models import User
from compliance.models import Export
from compliance.services import export_file_path
from governance.simulation_results import simulation_card_section
from inference.models import ModelVersion
from tests.fixtures.simulation_data import results_file_write


def _card(run_export: Callable[..., Export], actor: User) -> tuple[dict[str, Any], str]:
    export = run_export(actor=actor, kind="model_card", parameters={"version": "production"}, formats=["json", "html"])
    assert export.status == "finished", export.error_message
    data = json.loads(export_file_path(export.files.get(format="json")).read_text())
    return data, export_file_path(export.files.get(format="html")).read_text()


def test_the_card_shows_the_simulated_arms_and_the_goal_in_words(
    settings: Any, tmp_path: Path, deployed_model: ModelVersion, ml_engineer: User, run_export: Callable[..., Export]
) -> None:
    settings.SIMULATION_RESULTS_PATH = tmp_path / "latest.json"
    document = results_file_write(settings.SIMULATION_RESULTS_PATH, model_sha256=deployed_model.sha256)
    data, html = _card(run_export, ml_engineer)
    section = data["simulated_clinical_value"]
    assert section["run"] is True and section["model"] == "this version"
    assert [a["label"] for a in section["arms"]] == [a["label"] for a in document["arms"].values()]
    assert "Simulated clinical value" in html
    assert f"{document['arms']['clinaiops']['at_target_end']:.1%}" in html
    assert ("Holds:" in html) and len(section["goals"]) == len(document["goal"]["checks"])


def test_a_simulation_of_another_model_says_so(
    settings: Any, tmp_path: Path, deployed_model: ModelVersion, ml_engineer: User, run_export: Callable[..., Export]
) -> None:
    settings.SIMULATION_RESULTS_PATH = tmp_path / "latest.json"
    results_file_write(settings.SIMULATION_RESULTS_PATH, model_sha256="cd" * 32)
    data, _ = _card(run_export, ml_engineer)
    assert "not this version" in data["simulated_clinical_value"]["model"]


def test_without_results_the_section_says_not_run(
    settings: Any, tmp_path: Path, deployed_model: ModelVersion, ml_engineer: User, run_export: Callable[..., Export]
) -> None:
    settings.SIMULATION_RESULTS_PATH = tmp_path / "missing.json"
    data, html = _card(run_export, ml_engineer)
    assert data["simulated_clinical_value"]["run"] is False
    assert "Simulation not run" in html


def test_the_section_is_read_from_the_results_file(tmp_path: Path) -> None:
    """The section's content without a model card export (governance.simulation_results)."""
    path = tmp_path / "latest.json"
    assert simulation_card_section(model_sha256="ab" * 32, path=path)["run"] is False
    document = results_file_write(path, model_sha256="ab" * 32)
    section = simulation_card_section(model_sha256="ab" * 32, path=path)
    assert section["run"] is True and section["model"] == "this version"
    assert section["arms"][2]["at_target_end"] == f"{document['arms']['clinaiops']['at_target_end']:.1%}"
    assert section["goal_passed"] is document["goal"]["passed"]
