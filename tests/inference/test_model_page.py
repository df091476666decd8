"""The portal's model page reads the version's lineage (governance.lineage) and shows words, not codes."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from clinaiops.care.models import Patient
from clinaiops.core.models import User
from governance.lineage import model_version_lineage
from inference.models import ModelVersion


def test_the_model_page_shows_lineage_in_words(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    page = portal_client_for(safety_officer).get(f"/models/{deployed_model.pk}/").content.decode()

    assert "validation rows 120" in page and "n_validation" not in page and "120.000" not in page
    assert "simulated (synthetic cohort): 600" in page and "{&#x27;" not in page and "{'" not in page
    assert '<span class="badge">Approved</span>' in page
    assert ">ONNX parity<" in page and ">onnx_parity<" not in page
    assert ">passed<" in page and ">needs full review<" in page and ">pass<" not in page
    assert "(Clinical safety officer)" in page and "(safety_officer)" not in page
    assert "production moved to this version by mleng (test)" in page
    assert "inverse regularisation C 1" in page


def test_the_page_and_the_lineage_command_show_the_same_lineage(
    deployed_model: ModelVersion, safety_officer: User, portal_client_for: Callable[[User], Client]
) -> None:
    lineage = model_version_lineage(deployed_model)
    page = portal_client_for(safety_officer).get(f"/models/{deployed_model.pk}/").content.decode()

    assert len(lineage.signoffs) == 2 and all(signoff.verified for signoff in lineage.signoffs)
    for signoff in lineage.signoffs:
        assert signoff.manifestation in page
    assert lineage.serving_on == ("production",) and "Serving now on: production." in page


def test_patients_cannot_read_the_model_page(
    deployed_model: ModelVersion, patient: Patient, portal_client_for: Callable[[User], Client]
) -> None:
    assert portal_client_for(patient.user).get(f"/models/{deployed_model.pk}/").status_code == 403
