"""US Core example resources (the JSON files here, written from the published profiles) and the helpers of the
FHIR tests: the examples moved to a recent time (the API
refuses a measurement older than its plausible window), and a device gateway's client-credentials sign-in."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.core.models import User
from tests.factories import PASSWORD

EXAMPLES = Path(__file__).parent
FHIR_JSON = "application/fhir+json"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return copy.deepcopy(data)


def recent(minutes: int = 30, offset: str = "+01:00") -> str:
    """An ISO time `minutes` ago, written with the UTC offset `offset` (the instant is the same)."""
    sign = 1 if offset[0] == "+" else -1
    hours, mins = (int(part) for part in offset[1:].split(":"))
    delta = timedelta(hours=hours, minutes=mins) * sign
    moment = (timezone.now() - timedelta(minutes=minutes)).replace(microsecond=0)
    local = (moment + delta).replace(tzinfo=None)
    return local.isoformat() + offset


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def blood_pressure(
    *,
    code: str = "P-0001",
    systolic: float = 132,
    diastolic: float = 84,
    when: str | None = None,
    unit: str = "mm[Hg]",
    ident: str | None = None,
) -> dict[str, Any]:
    observation = example("blood-pressure")
    if ident is not None:
        observation["identifier"][0]["value"] = ident
    observation["subject"] = {"reference": f"Patient/{code}"}
    observation["effectiveDateTime"] = when or recent()
    for component, value in zip(observation["component"], (systolic, diastolic), strict=True):
        component["valueQuantity"]["value"] = value
        component["valueQuantity"]["code"] = unit
    return observation


def heart_rate(*, code: str = "P-0001", value: float = 68, when: str | None = None) -> dict[str, Any]:
    observation = example("heart-rate")
    observation["subject"] = {"reference": f"Patient/{code}"}
    observation["effectiveDateTime"] = when or recent()
    observation["valueQuantity"]["value"] = value
    return observation


def entry(resource: dict[str, Any], if_none_exist: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "POST", "url": "Observation"}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"resource": resource, "request": request}


def bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [entry(r) for r in resources]}


def post(client: APIClient, url: str, body: Any, **extra: Any) -> Any:
    return client.post(url, json.dumps(body), content_type=FHIR_JSON, **extra)


def gateway_client(gateway: User) -> APIClient:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/",
        {"grant_type": "client_credentials", "client_id": gateway.username, "client_secret": PASSWORD},
        format="json",
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


def expressions(outcome: dict[str, Any]) -> list[str]:
    return [e for issue in outcome.get("issue", []) for e in issue.get("expression", [])]
