"""Incremental sync and date filters on the patient API's lists, the time given back as sent, and the schema's
bodies and bounds (issue 12)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.care.models import Patient, Reading
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from clinaiops.loops.services.review import review_decide
from tests.conftest import audit_actions, readings_add
from tests.factories import PASSWORD


def _iso(moment: object) -> str:
    return moment.isoformat()  # type: ignore[attr-defined]


def test_a_reading_comes_back_in_the_offset_it_was_sent_in(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    # Five hours west of UTC, an hour ago.
    local = (timezone.now() - timedelta(hours=1)).astimezone(timezone.get_fixed_timezone(-300)).replace(microsecond=0)
    sent = local.isoformat()
    assert sent.endswith("-05:00")
    posted = client.post(
        "/api/v1/readings/", {"taken_at": sent, "systolic": 130, "diastolic": 80, "source": "cuff"}, format="json"
    )
    assert posted.status_code == 201
    assert posted.json()["taken_at"] == sent
    assert Reading.objects.get().utc_offset_minutes == -300
    assert client.get("/api/v1/readings/").json()["results"][0]["taken_at"] == sent
    # A reading stored without an offset (a backfill) is given in UTC.
    readings_add(patient, [(128, 82)], end=timezone.now() - timedelta(hours=3))
    listed = client.get("/api/v1/readings/").json()["results"]
    assert listed[1]["taken_at"].endswith("Z")


def test_since_syncs_the_readings_stored_or_changed_after_it_oldest_change_first(
    patient: Patient, other_patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    client = api_client_for(patient.user)
    readings_add(patient, [(141, 91), (136, 86), (128, 82)])
    readings_add(other_patient, [(175, 105)])
    cursor = timezone.now()
    readings = list(Reading.objects.filter(patient=patient).order_by("taken_at"))
    # The oldest reading changes after the cursor (a heart rate filled later), then a new one arrives.
    Reading.objects.filter(pk=readings[0].pk).update(updated_at=cursor + timedelta(seconds=1))
    readings_add(patient, [(150, 95)], end=timezone.now() + timedelta(minutes=2))
    Reading.objects.filter(patient=patient, systolic=150).update(updated_at=cursor + timedelta(seconds=2))
    body = client.get("/api/v1/readings/", {"since": _iso(cursor)}).json()
    assert [r["systolic"] for r in body["results"]] == [141, 150]
    assert all(r["updated_at"] for r in body["results"])
    later = client.get("/api/v1/readings/", {"since": _iso(cursor + timedelta(hours=1))}).json()
    assert later["count"] == 0


def test_date_filters_bound_the_time_taken_inclusively(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    readings_add(patient, [(141, 91), (136, 86), (128, 82)], hours=24)  # today, yesterday, two days ago
    client = api_client_for(patient.user)
    taken = sorted(Reading.objects.filter(patient=patient).values_list("taken_at", flat=True))
    middle = client.get("/api/v1/readings/", {"from": _iso(taken[1]), "to": _iso(taken[1])}).json()
    assert [r["systolic"] for r in middle["results"]] == [136]
    recent = client.get("/api/v1/readings/", {"from": _iso(taken[1])}).json()
    assert [r["systolic"] for r in recent["results"]] == [128, 136]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/readings/", {"since": "2026-11-21T07:60:00Z"}, "since"),
        ("/api/v1/readings/", {"from": "2026-02-30T07:00:00Z"}, "from"),
        ("/api/v1/readings/", {"to": "2026-11-21T07:00:00+24:00"}, "to"),
        ("/api/v1/readings/", {"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ("/api/v1/readings/", {"since": "2026-11-21T07:00:00"}, "since"),  # no offset
        ("/api/v1/readings/", {"from": "2026-11-22T00:00:00Z", "to": "2026-11-21T00:00:00Z"}, "to"),
        ("/api/v1/symptoms/", {"from": "yesterday"}, "from"),
        ("/api/v1/doses/", {"to": "2026-02-30"}, "to"),
        ("/api/v1/recommendations/", {"updated_since": "2026-13-01T00:00:00Z"}, "updated_since"),
        ("/api/v1/readings/", {"limit": "201"}, "limit"),
        ("/api/v1/symptoms/", {"limit": "0"}, "limit"),
        ("/api/v1/doses/", {"offset": "-1"}, "offset"),
        ("/api/v1/readings/", {"offset": str(2**63)}, "offset"),
    ],
)
def test_an_invalid_filter_or_page_is_a_400_naming_the_parameter(
    url: str, params: dict[str, str], field: str, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).get(url, params)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert list(response.json()["fields"]) == [field]


def test_a_page_holds_at_most_200(patient: Patient, api_client_for: Callable[[User], APIClient]) -> None:
    readings_add(patient, [(130, 80)] * 3, hours=1)
    body = api_client_for(patient.user).get("/api/v1/readings/", {"limit": "200"}).json()
    assert body["count"] == 3 and len(body["results"]) == 3
    assert len(api_client_for(patient.user).get("/api/v1/readings/", {"limit": "2"}).json()["results"]) == 2


def test_updated_since_lists_the_recommendations_changed_since(
    patient: Patient,
    clinician: User,
    pending_recommendation: Recommendation,
    api_client_for: Callable[[User], APIClient],
) -> None:
    client = api_client_for(patient.user)
    Recommendation.objects.filter(pk=pending_recommendation.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = _iso(timezone.now() - timedelta(days=1))
    assert client.get("/api/v1/recommendations/", {"updated_since": since}).json()["count"] == 0
    review_decide(
        actor=clinician, recommendation=pending_recommendation, outcome="rejected", reason="Recheck first",
        password=PASSWORD,
    )  # fmt: skip
    changed = client.get("/api/v1/recommendations/", {"updated_since": since}).json()
    assert [r["id"] for r in changed["results"]] == [pending_recommendation.pk]
    assert changed["results"][0]["decision"]["outcome"] == "rejected"
    assert client.get("/api/v1/recommendations/").json()["count"] == 1


def test_another_patients_recommendation_is_not_synced_and_its_id_is_404_and_audited(
    patient: Patient,
    other_patient: Patient,
    pending_recommendation: Recommendation,
    api_client_for: Callable[[User], APIClient],
) -> None:
    client = api_client_for(other_patient.user)
    since = _iso(timezone.now() - timedelta(days=1))
    assert client.get("/api/v1/recommendations/", {"updated_since": since}).json()["count"] == 0
    assert client.get(f"/api/v1/recommendations/{pending_recommendation.pk}/").status_code == 404
    assert "access.denied" in audit_actions()


def test_lists_and_sync_are_refused_to_staff(clinician: User, api_client_for: Callable[[User], APIClient]) -> None:
    client = api_client_for(clinician)
    for url in (
        "/api/v1/readings/?since=2026-11-21T00:00:00Z",
        "/api/v1/recommendations/?updated_since=2026-11-21T00:00:00Z",
    ):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_the_schema_documents_bodies_bounds_and_filters(db: None) -> None:
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]

    def body(path: str, method: str = "get", code: str = "200") -> dict[str, object]:
        ref = paths[path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    assert set(body("/api/v1/me/")["properties"]) == {"code", "target", "current_step", "regimen", "care_team"}  # type: ignore[call-overload]
    assert "results" in body("/api/v1/me/access-log/")["properties"]  # type: ignore[operator]
    assert "open_alerts" in body("/api/v1/symptoms/", "post", "201")["properties"]  # type: ignore[operator]
    assert "guidance" in body("/api/v1/readings/", "post", "201")["properties"]  # type: ignore[operator]
    reading_in = components["ReadingIn"]["properties"]
    assert (reading_in["systolic"]["minimum"], reading_in["systolic"]["maximum"]) == (50, 300)
    assert (reading_in["diastolic"]["minimum"], reading_in["diastolic"]["maximum"]) == (25, 200)
    assert (reading_in["heart_rate"]["minimum"], reading_in["heart_rate"]["maximum"]) == (25, 250)
    batch = components["ReadingBatchIn"]["properties"]["readings"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 500)
    reading_params = {p["name"] for p in paths["/api/v1/readings/"]["get"]["parameters"]}
    assert {"since", "from", "to", "limit", "offset"} <= reading_params
    assert {p["name"] for p in paths["/api/v1/doses/"]["get"]["parameters"]} >= {"from", "to", "limit", "offset"}
    assert "updated_since" in {p["name"] for p in paths["/api/v1/recommendations/"]["get"]["parameters"]}


@pytest.mark.parametrize("offset", ["+22:15", "-13:00", "+14:01"])
def test_an_offset_no_time_zone_uses_is_a_400_on_filters_and_readings(
    offset: str, patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    """PostgreSQL refuses an instant written with an offset beyond ±15:59: found by the schema fuzzing as a 500."""
    client = api_client_for(patient.user)
    when = f"2026-11-21T07:30:00{offset}"
    listed = client.get("/api/v1/readings/", {"since": when})
    assert listed.status_code == 400 and list(listed.json()["fields"]) == ["since"]
    posted = client.post(
        "/api/v1/readings/", {"taken_at": when, "systolic": 130, "diastolic": 80, "source": "cuff"}, format="json"
    )
    assert posted.status_code == 400 and list(posted.json()["fields"]) == ["taken_at"]
    assert client.get("/api/v1/readings/", {"since": "2026-11-21T07:30:00+14:00"}).status_code == 200
