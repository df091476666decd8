"""Every URL of every surface (the patient API, the portal, the compliance pages and API, the operability
endpoints), requested by every persona (and anonymously): the status each gets is pinned here. A URL pattern with
no row fails the test, so each new view must say who may use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Alert, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation
from inference.models import ModelVersion
from tests.conftest import readings_add

PERSONAS = (
    "anonymous", "patient", "other_patient", "clinician", "unassigned_clinician", "ml_engineer", "safety_officer",
    "compliance_officer",
)  # fmt: skip


def _row(
    anonymous: int, patients: tuple[int, int], clinicians: tuple[int, int], ml: int, safety: int, comp: int
) -> tuple[int, ...]:
    """(patient, other patient) and (assigned, unassigned clinician) are pairs, so a row reads like the table."""
    return (anonymous, *patients, *clinicians, ml, safety, comp)


PATIENT_ONLY = _row(401, (200, 200), (403, 403), 403, 403, 403)
# GET, persona by persona in the order of PERSONAS. "Own" objects are the patient's, on the clinician's team.
MATRIX: dict[str, tuple[int, ...]] = {
    # Patient API: JWT; staff tokens are refused (403), another patient's object does not exist (404).
    "api:token": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "api:token-refresh": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "api:logout": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "api:me": PATIENT_ONLY,
    "api:access-log": PATIENT_ONLY,
    "api:readings": PATIENT_ONLY,
    "api:readings-batch": _row(401, (405, 405), (403, 403), 403, 403, 403),
    "api:symptoms": PATIENT_ONLY,
    "api:doses": PATIENT_ONLY,
    "api:dose-schedule": PATIENT_ONLY,
    "api:recommendations": PATIENT_ONLY,
    "api:recommendation": _row(401, (200, 404), (403, 403), 403, 403, 403),
    "api:recommendation-respond": _row(401, (405, 405), (403, 403), 403, 403, 403),
    "api:schema": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "api:docs": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "api:goals": PATIENT_ONLY,
    "api:notes": PATIENT_ONLY,
    "api:follow-up": PATIENT_ONLY,
    "api:care-team": PATIENT_ONLY,
    "api:alerts": PATIENT_ONLY,
    # FHIR ingest is POST only, for patients and device gateways; staff are refused before the method is looked at.
    "api:fhir-bundle": _row(401, (405, 405), (403, 403), 403, 403, 403),
    "api:fhir-observation": _row(401, (405, 405), (403, 403), 403, 403, 403),
    "api:fhir-metadata": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "api:fhir-not-found": _row(401, (405, 405), (403, 403), 403, 403, 403),
    # Portal: sessions; anonymous goes to the login page (302), a wrong role is refused (403), a patient outside
    # the clinician's care teams does not exist (404), POST-only actions answer GET with 405.
    "portal:home": _row(302, (403, 403), (302, 302), 302, 302, 302),
    "portal:login": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "portal:logout": _row(405, (405, 405), (405, 405), 405, 405, 405),
    # Account pages (issue 8 §4): anyone signed in; verification has nothing to ask of these personas (no device,
    # MFA not required in tests) and sends them on; the session clock answers 401 to anonymous scripts.
    "portal:account": _row(302, (200, 200), (200, 200), 200, 200, 200),
    "portal:password-change": _row(302, (200, 200), (200, 200), 200, 200, 200),
    "portal:mfa-verify": _row(302, (302, 302), (302, 302), 302, 302, 302),
    "portal:mfa-enrol": _row(302, (200, 200), (200, 200), 200, 200, 200),
    "portal:mfa-remove": _row(302, (405, 405), (405, 405), 405, 405, 405),
    "portal:session": _row(401, (200, 200), (200, 200), 200, 200, 200),
    "portal:queue": _row(302, (403, 403), (200, 200), 403, 403, 403),
    "portal:recommendation": _row(302, (403, 403), (200, 404), 403, 403, 403),
    "portal:patients": _row(302, (403, 403), (200, 200), 403, 403, 403),
    "portal:patient": _row(302, (403, 403), (200, 404), 403, 403, 403),
    "portal:alerts": _row(302, (403, 403), (200, 200), 403, 200, 403),
    "portal:alert-ack": _row(405, (405, 405), (405, 405), 405, 405, 405),
    # Issue 11: a clinical alert's page is its care team's (the safety officer's inbox holds security alerts only).
    "portal:alert": _row(302, (403, 403), (200, 404), 403, 404, 403),
    "portal:inbox": _row(302, (403, 403), (200, 200), 403, 200, 403),
    "portal:break-glass": _row(302, (403, 403), (200, 200), 403, 403, 403),
    # The patient–clinician loop (issue 11): the care team's clinicians; another team's patient does not exist.
    "portal:care-plan": _row(302, (403, 403), (200, 404), 403, 403, 403),
    "portal:visit-summary": _row(302, (403, 403), (200, 404), 403, 403, 403),
    "portal:visit-summary-pdf": _row(302, (403, 403), (200, 404), 403, 403, 403),
    # The simulated human–AI team (issue 10): the safety officer's and the ML engineer's.
    "portal:simulation": _row(302, (403, 403), (403, 403), 200, 200, 403),
    "portal:models": _row(302, (403, 403), (200, 200), 200, 200, 200),
    "portal:model": _row(302, (403, 403), (200, 200), 200, 200, 200),
    "portal:policy": _row(302, (403, 403), (200, 200), 200, 200, 200),
    # The stop switch (issue 10): the clinical safety officer's page only; resuming is POST-only.
    "portal:ai-stop": _row(302, (403, 403), (403, 403), 403, 200, 403),
    "portal:ai-resume": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:audit": _row(302, (403, 403), (403, 403), 403, 200, 200),
    "portal:audit-event": _row(302, (403, 403), (403, 403), 403, 200, 200),
    "portal:accounting": _row(302, (403, 403), (403, 403), 403, 403, 200),
    "portal:monitoring": _row(302, (403, 403), (403, 403), 200, 200, 200),
    "portal:monitoring-drift-list": _row(302, (403, 403), (403, 403), 200, 200, 200),
    "portal:monitoring-drift": _row(302, (403, 403), (403, 403), 404, 404, 404),  # no report exists
    "portal:monitoring-drift-run": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:monitoring-alerts": _row(302, (403, 403), (403, 403), 200, 200, 200),
    "portal:monitoring-alert-ack": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:monitoring-canary-advance": _row(405, (405, 405), (405, 405), 405, 405, 405),
    # Governance actions (issue 11): POST only; the comparison is read by staff like the models page.
    "portal:model-signoff": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:model-promote": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:serving-rollback": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:models-compare": _row(302, (403, 403), (200, 200), 200, 200, 200),
    "portal:policy-countersign": _row(405, (405, 405), (405, 405), 405, 405, 405),
    "portal:policy-withdraw": _row(405, (405, 405), (405, 405), 405, 405, 405),
    # Compliance pages (compliance.permissions): staff only, patients refused (403); a clinician reads decisions of
    # their care teams' patients (another's is 404) and streams the decisions listing (scoped to their teams), the
    # officers also the ledger and, given a patient, the accounting (400 without one). No export exists (404).
    "compliance:exports": _row(302, (403, 403), (200, 200), 200, 200, 200),
    "compliance:export-start": _row(302, (403, 403), (405, 405), 405, 405, 405),
    "compliance:export": _row(302, (403, 403), (404, 404), 404, 404, 404),
    "compliance:export-file": _row(302, (403, 403), (404, 404), 404, 404, 404),
    "compliance:ledger-verify": _row(302, (403, 403), (405, 405), 405, 405, 405),
    "compliance:decision": _row(302, (403, 403), (200, 404), 403, 200, 200),
    "compliance:audit-stream": _row(302, (403, 403), (403, 403), 403, 200, 200),
    "compliance:accounting-stream": _row(302, (403, 403), (403, 403), 403, 400, 400),
    "compliance:decisions-stream": _row(302, (403, 403), (200, 200), 403, 200, 200),
    # The patient's own disclosure accounting, through the API only.
    "compliance-api:access-log-export": PATIENT_ONLY,
    # Probes and the scrape: open in tests (METRICS_TOKEN unset; production sets it, tests/ops pin the refusal).
    "ops:metrics": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "ops:healthz": _row(200, (200, 200), (200, 200), 200, 200, 200),
    "ops:readyz": _row(200, (200, 200), (200, 200), 200, 200, 200),
}

# The object each pattern with an id is requested for: one of the fixtures' objects, or an id that exists nowhere.
MISSING = 999_999
OBJECT_OF: dict[str, str | int] = {
    "api:recommendation": "recommendation",
    "api:recommendation-respond": "recommendation",
    "portal:recommendation": "recommendation",
    "portal:patient": "patient",
    "portal:care-plan": "patient",
    "portal:visit-summary": "patient",
    "portal:visit-summary-pdf": "patient",
    "portal:alert-ack": "alert",
    "portal:alert": "alert",
    "portal:model": "model",
    "portal:audit-event": "audit_event",
    "portal:monitoring-drift": MISSING,
    "compliance:export": MISSING,
    "compliance:export-file": MISSING,
    "compliance:decision": "recommendation",
    "portal:monitoring-alert-ack": MISSING,
    "portal:ai-resume": MISSING,
    "portal:model-signoff": "model",
    "portal:model-promote": "model",
    "portal:policy-countersign": MISSING,
    "portal:policy-withdraw": MISSING,
}


# Further arguments of a pattern, after its object id.
EXTRA_KWARGS: dict[str, dict[str, str]] = {"compliance:export-file": {"name": "decisions.csv"}}


def _kwargs(name: str, pattern: URLPattern, objects: dict[str, int]) -> dict[str, int | str]:
    converters = list(pattern.pattern.converters)  # type: ignore[attr-defined]
    if not converters:
        return {}
    assert name in OBJECT_OF, f"say in OBJECT_OF which object {name} is requested for"
    extra = EXTRA_KWARGS.get(name, {})
    assert len(converters) == 1 + len(extra), f"{name} takes several arguments; say them in EXTRA_KWARGS"
    target = OBJECT_OF[name]
    return {converters[0]: objects[target] if isinstance(target, str) else target, **extra}


def _patterns(resolver: URLResolver, namespace: str) -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, namespace if entry.namespace is None else f"{namespace}:{entry.namespace}")
        else:
            assert entry.name, f"an unnamed URL pattern under {namespace}: {entry.pattern}"
            yield f"{namespace}:{entry.name}", entry


# The URL namespaces walked: every surface. "api" and "compliance-api" are asked with a JWT, the rest with a
# portal session.
SURFACES = {"api", "portal", "compliance", "compliance-api", "ops"}
API_SURFACES = ("api:", "compliance-api:")


def _surface_patterns() -> dict[str, URLPattern]:
    found: dict[str, URLPattern] = {}
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace in SURFACES:
            found.update(_patterns(entry, entry.namespace))
    return found


def test_every_url_of_every_surface_has_a_row_in_the_matrix() -> None:
    patterns = _surface_patterns()
    assert set(patterns) - set(MATRIX) == set(), "add the new URL to MATRIX with the status each persona gets"
    assert set(MATRIX) - set(patterns) == set(), "a URL in MATRIX no longer exists"


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_persona_gets_the_expected_status_on_every_url(
    persona: str,
    request: pytest.FixtureRequest,
    pending_recommendation: Recommendation,
    patient: Patient,
    other_patient: Patient,
    deployed_model: ModelVersion,
    api_client_for: Callable[[User], APIClient],
    portal_client_for: Callable[[User], Client],
) -> None:
    readings_add(patient, [(186, 112)])
    objects = {
        "recommendation": pending_recommendation.pk,
        "patient": patient.pk,
        "alert": Alert.objects.get(patient=patient).pk,
        "model": deployed_model.pk,
        "audit_event": AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first(),
    }
    user = None
    if persona != "anonymous":
        user = {"patient": patient.user, "other_patient": other_patient.user}.get(persona) or request.getfixturevalue(
            persona
        )
    api = api_client_for(user) if user is not None else APIClient()
    portal = portal_client_for(user) if user is not None else Client()
    column = PERSONAS.index(persona)
    got, expected = {}, {}
    for name, pattern in _surface_patterns().items():
        url = reverse(name, kwargs=_kwargs(name, pattern, objects))
        client = api if name.startswith(API_SURFACES) else portal
        got[name] = client.get(url).status_code
        expected[name] = MATRIX[name][column]
    assert got == expected
