"""Device gateways: client-credentials sign-in, care-team scope, FHIR only, audited as the actor; and the
CapabilityStatement and the FHIR 404."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import CareTeam, Patient, Reading
from clinaiops.core.models import Role, User
from tests.api.fhir_examples import FHIR_JSON, blood_pressure, bundle, expressions, gateway_client, post, recent
from tests.factories import PASSWORD, DeviceGatewayFactory

OBSERVATION = "/api/v1/fhir/Observation"


@pytest.fixture
def gateway(care_team: CareTeam) -> User:
    return DeviceGatewayFactory(care_teams=[care_team])


@pytest.fixture
def outside_gateway(other_team: CareTeam) -> User:
    return DeviceGatewayFactory(care_teams=[other_team])


def _client_token(client_id: str, secret: str) -> Any:
    return APIClient().post(
        "/api/v1/auth/token/",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        format="json",
    )


def test_a_gateway_signs_in_with_client_credentials_and_gets_an_access_token_only(gateway: User) -> None:
    response = _client_token(gateway.username, PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert "refresh" not in body


def test_client_credentials_refuse_a_wrong_secret_and_a_person_alike(gateway: User, patient: Patient) -> None:
    wrong = _client_token(gateway.username, "not the secret")
    person = _client_token(patient.user.username, PASSWORD)
    assert wrong.status_code == person.status_code == 401
    assert wrong.json() == person.json()
    # And a gateway cannot take the password grant, which would give it a refresh token.
    password_grant = APIClient().post(
        "/api/v1/auth/token/", {"username": gateway.username, "password": PASSWORD}, format="json"
    )
    assert password_grant.status_code == 401
    assert "refresh" not in password_grant.json()


def test_gateway_sign_ins_go_through_the_same_lockout(gateway: User, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    assert _client_token(gateway.username, "guess one").status_code == 401
    locked = _client_token(gateway.username, "guess two")
    assert (locked.status_code, locked.json()["code"]) == (429, "account_locked")
    assert _client_token(gateway.username, PASSWORD).status_code == 429  # even the right secret


def test_a_gateway_posts_for_a_patient_of_its_team_and_is_the_audited_actor(gateway: User, patient: Patient) -> None:
    response = post(gateway_client(gateway), OBSERVATION, blood_pressure(code=patient.code))
    assert response.status_code == 201, response.content
    reading = Reading.objects.get(patient=patient)
    event = AuditEvent.objects.get(action="reading.ingested", object_id=str(reading.pk))
    assert (event.actor, event.actor_role) == (gateway, Role.DEVICE_GATEWAY)


def test_a_gateway_in_another_team_is_refused_and_audited(
    outside_gateway: User, patient: Patient, other_patient: Patient
) -> None:
    client = gateway_client(outside_gateway)
    refused = post(client, OBSERVATION, blood_pressure(code=patient.code))
    unknown = post(client, OBSERVATION, blood_pressure(code="P-4040"))
    assert refused.status_code == unknown.status_code == 403
    assert refused.json() == unknown.json()
    assert expressions(refused.json()) == ["Observation.subject"]
    assert not Reading.objects.exists()
    assert AuditEvent.objects.filter(action="access.denied", actor=outside_gateway).count() == 2
    # Its own team's patient is fine, in a Bundle too.
    answer = post(client, "/api/v1/fhir/", bundle("batch", blood_pressure(code=other_patient.code))).json()
    assert answer["entry"][0]["response"]["status"] == "201 Created"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/me/"),
        ("get", "/api/v1/readings/"),
        ("post", "/api/v1/readings/"),
        ("post", "/api/v1/symptoms/"),
        ("get", "/api/v1/recommendations/"),
        ("get", "/api/v1/me/access-log/"),
    ],
)
def test_a_gateway_may_use_the_fhir_endpoints_only(gateway: User, patient: Patient, method: str, url: str) -> None:
    response = getattr(gateway_client(gateway), method)(url, {}, format="json")
    assert response.status_code == 403


def test_metadata_is_a_capability_statement() -> None:
    response = APIClient().get("/api/v1/fhir/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert (statement["fhirVersion"], statement["format"], statement["kind"]) == ("4.0.1", ["json"], "instance")
    [rest] = statement["rest"]
    [observation] = rest["resource"]
    assert observation["type"] == "Observation"
    assert set(observation["supportedProfile"]) == {
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-heart-rate",
    }
    assert [i["code"] for i in observation["interaction"]] == ["create"]
    assert observation["conditionalCreate"] is True
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}


def test_an_unknown_fhir_url_answers_an_operation_outcome_404() -> None:
    response = APIClient().get("/api/v1/fhir/Patient/P-0001")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_wrong_method_answers_an_operation_outcome(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).get(OBSERVATION)
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_an_unsupported_media_type_answers_an_operation_outcome(
    patient: Patient, api_client_for: Callable[[User], APIClient]
) -> None:
    response = api_client_for(patient.user).post(OBSERVATION, "x=1", content_type="text/plain; charset=Jane-Doe")
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Jane-Doe" not in response.content.decode()


def test_create_device_gateway_prints_the_secret_once_and_stores_only_its_hash(
    care_team: CareTeam, patient: Patient
) -> None:
    out = StringIO()
    call_command("create_device_gateway", "--team", care_team.name, "--name", "Ward 3 hub", stdout=out)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    gateway = User.objects.get(username=lines["client_id"])
    assert gateway.role == Role.DEVICE_GATEWAY
    assert lines["client_secret"] not in gateway.password
    assert check_password(lines["client_secret"], gateway.password)
    assert list(gateway.care_teams.all()) == [care_team]
    assert AuditEvent.objects.filter(action="care_team.member_added", object_id=str(care_team.pk)).exists()
    # The printed credentials work.
    token = _client_token(lines["client_id"], lines["client_secret"]).json()["access"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert post(client, OBSERVATION, blood_pressure(code=patient.code, when=recent())).status_code == 201


def test_create_device_gateway_refuses_an_unknown_team(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("create_device_gateway", "--team", "No such team", stdout=StringIO())
    assert not User.objects.filter(role=Role.DEVICE_GATEWAY).exists()


def test_a_new_secret_or_a_sign_out_revokes_the_gateway_token(gateway: User, patient: Patient) -> None:
    client = gateway_client(gateway)
    assert post(client, OBSERVATION, blood_pressure(code=patient.code)).status_code == 201
    gateway.set_password("a new secret")
    gateway.save()
    revoked = post(client, OBSERVATION, blood_pressure(code=patient.code, when=recent(minutes=5), ident="bp-2"))
    assert revoked.status_code == 401
    assert revoked.json()["issue"][0]["details"]["coding"][0]["code"] == "token_revoked"
    gateway.set_password(PASSWORD)
    gateway.save()
    client = gateway_client(gateway)
    assert client.post("/api/v1/auth/logout/", {}, format="json").status_code == 204
    assert post(client, OBSERVATION, blood_pressure(code=patient.code, ident="bp-3")).status_code == 401
