"""The decision screen (issue 11): the proposal with its clinical context, and signing it.

Context: the proposal marked on the chart; cuff, wearable and typed-in readings as separate series with toggles;
the target as a band; the readings table, symptoms, doses and adherence; each SHAP factor beside the value the
model saw, in words and units; as-of times on every block. Signing: attempts left before the signature
lock-out, the step picker for Modify only, and "next item" once signed. Query counts are pinned here for the
decision screen and the patient list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from clinaiops.care.models import CareTeam, Patient
from clinaiops.care.services import ReadingInput, dose_log_store, symptom_store
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.ingest import reading_ingest
from clinaiops.portal.decision_screen import feature_value_words
from inference.features import FEATURE_LABELS
from inference.models import ModelVersion
from tests.conftest import pending_recommendation_make
from tests.factories import PASSWORD, PatientFactory, UserFactory


def _page(client: Client, rec: Recommendation) -> str:
    response = client.get(f"/recommendations/{rec.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _reading(patient: Patient, hours_ago: float, sbp: int, dbp: int, source: str) -> None:
    taken = timezone.now() - timedelta(hours=hours_ago)
    reading_ingest(actor=patient.user, patient=patient, data=ReadingInput(taken, sbp, dbp, 70, source))


def _section(html: str, heading_id: str) -> str:
    """The <section> labelled by `heading_id`."""
    match = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, re.S)
    assert match, f"no section {heading_id}"
    return match.group(0)


# --- Clinical context ------------------------------------------------------------------------------------------


def test_each_shap_factor_is_shown_beside_the_value_the_model_saw_in_words_and_units(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    rec = pending_recommendation
    factors = _section(_page(portal_client_for(clinician), rec), "factors-heading")
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"value\">(.*?)</td>", factors)
    assert len(rows) == len(rec.top_factors) > 0
    for (label, value), factor in zip(rows, rec.top_factors, strict=True):
        words = FEATURE_LABELS[factor["feature"]]
        assert label == words[:1].upper() + words[1:]
        assert value == feature_value_words(factor["feature"], rec.features[factor["feature"]])
        assert not re.search(r"\d\.\d{3}", value), "a raw float reached the page"
    assert "The model's inputs as of the proposal" in factors


@pytest.mark.parametrize(
    ("feature", "value", "words"),
    [
        ("sbp_mean_7d", 152.4, "152 mmHg"),
        ("sbp_excess_7d", 22.4, "+22 mmHg"),
        ("frac_above_target_14d", 0.857, "86 %"),
        ("adherence_14d", 1.0, "100 %"),
        ("readings_7d", 1.0, "1 reading"),
        ("days_since_change", 60.0, "60 days or more"),
        ("diabetes", 1.0, "yes"),
        ("sbp_slope_14d", -0.42, "-0.4 mmHg a day"),
        ("some_future_feature", 0.5, "0.5"),
        ("age", None, "not recorded"),
    ],
)
def test_feature_values_read_as_a_clinician_says_them(feature: str, value: float | None, words: str) -> None:
    assert feature_value_words(feature, value) == words


def test_cuff_wearable_and_typed_in_readings_are_separate_series_with_toggles_and_a_table(
    patient: Patient, deployed_model: ModelVersion, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    # Older than the model's 7-day window, so the proposal still lacks readings and waits for review.
    _reading(patient, 240, 150, 92, "ppg")
    _reading(patient, 230, 146, 90, "ppg")
    _reading(patient, 220, 158, 96, "manual")
    rec = pending_recommendation_make(patient)  # three cuff readings
    card = re.search(r'<section class="card bp-card".*?</section>', _page(portal_client_for(clinician), rec), re.S)
    assert card
    html = card.group(0)
    toggles = re.findall(r'data-series-toggle="(\w+)"> ([^<]+)</label>', html)
    assert toggles == [("cuff", "Home cuff (3)"), ("wearable", "Wearable (cuffless) (2)"),
                       ("manual", "Typed in (office or other cuff) (1)")]  # fmt: skip
    # Both renderings of the chart draw each series in its own groups, which the toggles hide (portal.css).
    assert html.count('data-series="wearable"') == 2
    assert html.count('class="sbp-line series-cuff"') == 2 and html.count('class="sbp-line series-wearable"') == 2
    # The table is the chart's text alternative: one row per reading, each in its series.
    rows = re.findall(r'<tr class="series-(\w+)"><td>[^<]+</td><td class="num">(\d+)</td>', html)
    assert sorted(rows) == sorted([("cuff", "168")] * 3 + [("wearable", "150"), ("wearable", "146"), ("manual", "158")])
    table = html.split("<tbody>")[1]
    assert "<td>PPG wearable</td>" in table and "<td>Manual entry</td>" in table  # words, not source codes


def test_the_chart_marks_the_proposal_and_shades_the_target_band(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    html = _page(portal_client_for(clinician), pending_recommendation)
    assert html.count('class="proposal-marker"') == 2  # wide and narrow renderings
    assert f"proposed: {pending_recommendation.action}" in html
    assert 'class="target-band band-sbp"' in html and 'class="target-band band-dbp"' in html
    assert re.search(r'<div class="chart chart-narrow"><svg[^>]*viewBox="0 0 340 ', html)


def test_symptoms_doses_adherence_and_regimen_history_are_shown_with_their_as_of_times(
    patient: Patient, deployed_model: ModelVersion, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    today = timezone.now().date()
    for days_ago in range(7):
        dose_log_store(patient=patient, day=today - timedelta(days=days_ago), taken=days_ago not in (2, 5))
    symptom_store(patient=patient, kind="dizziness", reported_at=timezone.now() - timedelta(days=3))
    rec = pending_recommendation_make(patient)
    html = _page(portal_client_for(clinician), rec)
    symptoms = _section(html, "symptoms-heading")
    assert "<strong>Dizziness</strong>" in symptoms
    doses = _section(html, "doses-heading")
    this_week = re.search(r"<tr><td>[^<]+</td><td class=\"num\">(.*?)</td><td class=\"num\">(.*?)</td>", doses)
    assert this_week and this_week.groups() == ("5 of 7", "71 %")
    assert f"Doses logged to {today:%d %b %Y}" in doses
    for block in (symptoms, doses, _section(html, "bp-heading")):
        assert re.search(r"as of \d\d \w{3} \d{4} \d\d:\d\d UTC", block, re.I)


def test_other_personas_never_see_the_decision_screen(
    pending_recommendation: Recommendation,
    unassigned_clinician: User,
    ml_engineer: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    url = f"/recommendations/{pending_recommendation.pk}/"
    assert portal_client_for(unassigned_clinician).get(url).status_code == 404
    assert portal_client_for(ml_engineer).get(url).status_code == 403


# --- Signing ---------------------------------------------------------------------------------------------------


def test_the_form_says_how_many_attempts_are_left_before_the_signature_lock_out(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(clinician)
    url = f"/recommendations/{pending_recommendation.pk}/"
    assert 'data-attempts-left="5"' in _page(client, pending_recommendation)
    wrong = {"outcome": "accepted", "reason": "Titrate", "password": "not it"}
    after_one = client.post(url, wrong).content.decode()
    assert 'data-attempts-left="4"' in after_one
    assert "4 of 5</strong> attempts left before the signature lock-out" in after_one
    for _ in range(3):
        client.post(url, wrong)
    assert "attempts-low" in _page(client, pending_recommendation)  # one left: it stands out
    client.post(url, wrong)  # the fifth locks the account (governance.services)
    clinician.refresh_from_db()
    assert clinician.is_locked
    locked = Client()
    locked.force_login(clinician)
    page = locked.get(url)
    assert page.status_code in (200, 302)
    if page.status_code == 200:  # a lock ends the sessions it can; one that remains sees the lock
        assert 'data-attempts-left="0"' in page.content.decode()


def test_the_step_picker_belongs_to_modify_and_marks_the_current_and_proposed_steps(
    pending_recommendation: Recommendation, clinician: User, portal_client_for: Callable[[User], Client]
) -> None:
    rec = pending_recommendation
    html = _page(portal_client_for(clinician), rec)
    form = re.search(r'<form method="post" class="stack decision-form".*?</form>', html, re.S)
    assert form
    # The picker is its own block, which portal.css shows only while Modify is chosen.
    picker = re.search(r'<div class="step-picker" data-step-picker>(.*?)</div>', form.group(0), re.S)
    assert picker and 'name="to_step"' in picker.group(1)
    assert f"Step {rec.from_step}: " in picker.group(1) and "(current)</option>" in picker.group(1)
    assert "(proposed)</option>" in picker.group(1)
    assert f"Accept: {rec.action} to step {rec.to_step}" in form.group(0)
    assert f"Reject: stay on step {rec.from_step}" in form.group(0)


def test_after_signing_the_next_item_is_offered_on_the_queue_and_on_the_decided_screen(
    pending_recommendation: Recommendation,
    care_team: CareTeam,
    clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    other = PatientFactory(user=UserFactory(username="pat_next", role="patient"), care_team=care_team, code="P-N001")
    second = pending_recommendation_make(other)
    client = portal_client_for(clinician)
    url = f"/recommendations/{pending_recommendation.pk}/"
    signed = client.post(url, {"outcome": "accepted", "reason": "Titrate", "password": PASSWORD}, follow=True)
    assert signed.redirect_chain[-1][0] == "/queue/"
    assert f'href="/recommendations/{second.pk}/"' in re.search(
        r"data-next-item>.*?</p>", signed.content.decode(), re.S
    ).group(0)  # type: ignore[union-attr]
    decided = _page(client, pending_recommendation)
    next_item = re.search(r'<p class="next-item" data-next-item>.*?</p>', decided, re.S)
    assert next_item and f'href="/recommendations/{second.pk}/"' in next_item.group(0)
    assert "P-N001" in next_item.group(0)
    # Signing the last one leaves nothing: the screen says so and links back to the queue.
    client.post(f"/recommendations/{second.pk}/", {"outcome": "rejected", "reason": "Recheck", "password": PASSWORD})
    assert "Nothing else is waiting for review." in _page(client, second)


# --- Query counts (STYLE.md: hot pages pin theirs) -------------------------------------------------------------


def test_decision_screen_queries_do_not_grow_with_the_record(
    patient: Patient,
    deployed_model: ModelVersion,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    rec = pending_recommendation_make(patient)
    client = portal_client_for(clinician)
    with django_assert_num_queries(DECISION_SCREEN):
        _page(client, rec)
    for hours in (50, 60, 70):
        _reading(patient, hours, 150, 90, "ppg")
    for days_ago in range(10):
        dose_log_store(patient=patient, day=timezone.now().date() - timedelta(days=days_ago), taken=True)
    symptom_store(patient=patient, kind="headache", reported_at=timezone.now() - timedelta(days=1))
    with django_assert_num_queries(DECISION_SCREEN):
        _page(client, rec)


def test_patient_list_queries_do_not_grow_with_the_list(
    patient: Patient,
    care_team: CareTeam,
    clinician: User,
    portal_client_for: Callable[[User], Client],
    django_assert_num_queries: Any,
) -> None:
    client = portal_client_for(clinician)
    with django_assert_num_queries(PATIENT_LIST):
        assert client.get("/patients/").status_code == 200
    for i in range(5):
        PatientFactory(user=UserFactory(username=f"pat_l{i}", role="patient"), care_team=care_team, code=f"P-L{i:03d}")
    with django_assert_num_queries(PATIENT_LIST):
        page = client.get("/patients/")
    assert len(re.findall(r'href="/patients/\d+/"', page.content.decode())) == 6


# Pinned per database, as in tests/portal/test_query_counts.py (the audit append is one uncounted call on
# PostgreSQL, two counted queries on SQLite). The decision screen is the page before issue 11 (10) plus four:
# symptoms, doses, the regimen history and the signature attempts left; readings are read once for the chart, its
# phone rendering and the table.
DECISION_SCREEN = {"postgresql": 14, "sqlite": 16}[connection.vendor]
PATIENT_LIST = {"postgresql": 5, "sqlite": 5}[connection.vendor]
