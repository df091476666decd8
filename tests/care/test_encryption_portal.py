"""The portal shows who the patient is (the banner) on every page of one patient, and finds patients by MRN or
name through the blind index, with the search audited and kept out of URLs (issue 8 §3)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from django.test import Client
from django.utils import timezone

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from tests.factories import PatientFactory, UserFactory


def _banner(page: str) -> str:
    found = re.search(r'<section class="card patient-banner".*?</section>', page, re.S)
    assert found, "no patient banner on the page"
    return found.group(0)


def _identified(patient: Patient, **identifiers: Any) -> Patient:
    for name, value in identifiers.items():
        setattr(patient, name, value)
    patient.save()
    return patient


def test_every_page_of_one_patient_carries_the_banner_and_the_read_is_audited(
    pending_recommendation: Recommendation,
    patient: Patient,
    clinician: User,
    unassigned_clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    _identified(patient, given_name="Wanjiru", family_name="Mahlangu", date_of_birth=date(1962, 7, 19), mrn="30490127")
    age = patient.age_on(timezone.now().date())
    client = portal_client_for(clinician)

    for url in (f"/patients/{patient.pk}/", f"/recommendations/{pending_recommendation.pk}/"):
        banner = _banner(client.get(url).content.decode())
        for shown in ("MAHLANGU, Wanjiru", "19 Jul 1962", f"({age} years)", "30490127", "P-0001"):
            assert shown in banner, (url, shown)
    views = AuditEvent.objects.filter(action="patient.viewed", actor=clinician, object_id=str(patient.pk))
    assert sorted(e.payload_data["view"] for e in views) == ["patient_detail", "recommendation"]

    refused = portal_client_for(unassigned_clinician).get(f"/patients/{patient.pk}/")
    assert refused.status_code == 404 and b"Mahlangu" not in refused.content


def test_the_patient_list_shows_identifiers_of_your_own_patients_only(
    patient: Patient,
    other_patient: Patient,
    clinician: User,
    ml_engineer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    _identified(patient, given_name="Consuelo", family_name="Quiroga", mrn="30491000")
    _identified(other_patient, given_name="Brigitte", family_name="Lachance", mrn="30492000")

    page = portal_client_for(clinician).get("/patients/").content.decode()

    assert "QUIROGA, Consuelo" in page and "30491000" in page and "14 Mar 1962" in page
    assert "Lachance" not in page and "30492000" not in page
    assert portal_client_for(ml_engineer).get("/patients/").status_code == 403
    assert portal_client_for(ml_engineer).post("/patients/", {"q": "30491000"}).status_code == 403


def test_search_by_mrn_or_name_is_a_post_audited_without_the_term(
    patient: Patient,
    other_patient: Patient,
    clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    _identified(patient, given_name="Ifeoma", family_name="Nwosu", mrn="30493001")
    _identified(other_patient, given_name="Ifeoma", family_name="Nwosu", mrn="30493002")  # another team's namesake
    client = portal_client_for(clinician)

    by_mrn = client.post("/patients/", {"q": "3049-3001"}).content.decode()
    by_name = client.post("/patients/", {"q": "nwosu, ifeoma"}).content.decode()
    missed = client.post("/patients/", {"q": "30493002"}).content.decode()

    assert "Search results" in by_mrn and f'href="/patients/{patient.pk}/"' in by_mrn
    assert f'href="/patients/{patient.pk}/"' in by_name and f'href="/patients/{other_patient.pk}/"' not in by_name
    assert "No patient you can see matches that search" in missed and "30493002" not in missed
    searches = AuditEvent.objects.filter(action="patient.searched", actor=clinician).order_by("seq")
    assert [e.payload_data for e in searches] == [
        {"results": 1, "patient_ids": [patient.pk]},
        {"results": 1, "patient_ids": [patient.pk]},
        {"results": 0, "patient_ids": []},
    ]
    assert not any(term in e.payload for e in searches for term in ("3049", "nwosu", "Nwosu", "ifeoma"))
    # A search term in the URL is not a search: it would sit in access logs and browser history.
    listed = client.get("/patients/?q=30493001").content.decode()
    assert "Search results" not in listed
    assert AuditEvent.objects.filter(action="patient.searched").count() == 3


def test_the_patient_list_queries_do_not_grow_with_its_rows(
    care_team: CareTeam,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    for i in range(3):
        PatientFactory(user=UserFactory(username=f"pat_l{i}", role="patient"), care_team=care_team, code=f"P-L{i:03d}")
    client = portal_client_for(clinician)
    with django_assert_num_queries(LIST_QUERIES):
        client.get("/patients/")
    for i in range(3, 20):
        PatientFactory(user=UserFactory(username=f"pat_l{i}", role="patient"), care_team=care_team, code=f"P-L{i:03d}")
    with django_assert_num_queries(LIST_QUERIES):
        page = client.get("/patients/")
    assert len(re.findall(r'href="/patients/\d+/"', page.content.decode())) == 20


# the session, the user, the paginator's count, the page's rows with their care teams, and the stop-switch banner
LIST_QUERIES = 5
