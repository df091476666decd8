"""The server's CapabilityStatement (GET /api/v1/fhir/metadata): what this FHIR endpoint takes, checked by the
library's model."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from clinaiops.api.fhir.observations import PROFILE_BLOOD_PRESSURE, PROFILE_HEART_RATE

CAPABILITY_DATE = "2026-12-01"


@cache
def capability_statement() -> dict[str, Any]:
    statement = CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": CAPABILITY_DATE,
            "kind": "instance",
            "publisher": "ClinAIOps",
            "description": (
                "Home blood-pressure readings in, as US Core Blood Pressure and Heart Rate Observations: one at a "
                "time or in a transaction or batch Bundle. Sign in with a Bearer token (a patient, or a device "
                "gateway with the client-credentials grant at /api/v1/auth/token/)."
            ),
            "implementation": {"description": "ClinAIOps patient mobile API, FHIR R4 ingest"},
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": (
                        "Units are UCUM: mm[Hg] or kPa (converted to mmHg) and /min. The subject is Patient/<code>: "
                        "the signed-in patient, or a patient of the device gateway's care teams. Errors are "
                        "OperationOutcomes whose issue.expression names the element."
                    ),
                    "security": {
                        "cors": False,
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "OAuth",
                                    }
                                ]
                            }
                        ],
                        "description": "Bearer tokens from /api/v1/auth/token/ (password or client_credentials).",
                    },
                    "resource": [
                        {
                            "type": "Observation",
                            "supportedProfile": [PROFILE_BLOOD_PRESSURE, PROFILE_HEART_RATE],
                            "interaction": [{"code": "create"}],
                            "conditionalCreate": True,
                            "documentation": (
                                "Conditional create with ifNoneExist (or the If-None-Exist header) of the form "
                                "identifier=system|value; the identifier is stored, so a resend stores nothing twice."
                            ),
                        }
                    ],
                    "interaction": [
                        {"code": "transaction", "documentation": "All or nothing."},
                        {"code": "batch", "documentation": "Each entry answered on its own."},
                    ],
                }
            ],
        }
    )
    data: dict[str, Any] = statement.model_dump(mode="json", exclude_none=True)
    return data
