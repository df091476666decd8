"""The FHIR endpoints as the OpenAPI schema describes them: the outline of the request bodies, the refusals each
answers with, the conditional-create header. Documentation only; the profiles themselves are checked in
observations.py, with fhir.resources."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_serializer
from rest_framework import serializers

# As many entries as the native batch sync takes (POST /api/v1/readings/batch/).
MAX_BUNDLE_ENTRIES = 500


@extend_schema_serializer(component_name="OperationOutcome")
class FhirOperationOutcomeDoc(serializers.Serializer[Any]):
    """Documentation only: the schema's one OperationOutcome component (clinaiops/api/schema.py writes it in full,
    for refusals and answers alike)."""

    resourceType = serializers.ChoiceField(choices=["OperationOutcome"])  # FHIR's element name
    issue = serializers.ListField(child=serializers.DictField())


OUTCOME = OpenApiResponse(FhirOperationOutcomeDoc, description="A FHIR OperationOutcome.")
REFUSALS: dict[int | str, Any] = {
    400: OpenApiResponse(FhirOperationOutcomeDoc, description="Not a valid resource; issue.expression names it."),
    401: OpenApiResponse(FhirOperationOutcomeDoc, description="Not signed in."),
    403: OpenApiResponse(FhirOperationOutcomeDoc, description="Not a FHIR sender, or a subject out of reach."),
    409: OpenApiResponse(FhirOperationOutcomeDoc, description="A different reading is stored for this measurement."),
    413: OpenApiResponse(FhirOperationOutcomeDoc, description="The body is too large."),
    415: OpenApiResponse(FhirOperationOutcomeDoc, description="Send application/fhir+json or application/json."),
    422: OpenApiResponse(FhirOperationOutcomeDoc, description="The Idempotency-Key was used for another request."),
}
IF_NONE_EXIST_PARAMETER = OpenApiParameter(
    name="If-None-Exist",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Conditional create: identifier=system|value. A stored reading with it answers 200, nothing stored.",
)


# The request bodies as the schema describes them: the outline of what is accepted (the profiles are checked in
# observations.py, with fhir.resources); a generated client gets the resource type, status and the required elements.
_CODING = {"type": "object", "properties": {"system": {"type": "string"}, "code": {"type": "string"}}}
_QUANTITY = {
    "type": "object",
    "required": ["value", "system", "code"],
    "properties": {
        "value": {"type": "number"},
        "unit": {"type": "string"},
        "system": {"type": "string", "enum": ["http://unitsofmeasure.org"]},
        "code": {"type": "string", "enum": ["mm[Hg]", "kPa", "/min"]},
    },
}
OBSERVATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "A US Core Blood Pressure (LOINC 85354-9, components 8480-6 and 8462-4, mm[Hg] or kPa) or Heart Rate "
        "(8867-4, /min) Observation."
    ),
    "required": ["resourceType", "status", "code", "subject", "effectiveDateTime"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Observation"]},
        "status": {"type": "string", "enum": ["final", "amended", "corrected"]},
        "identifier": {"type": "array", "items": {"type": "object"}},
        "category": {"type": "array", "items": {"type": "object"}},
        "code": {"type": "object", "properties": {"coding": {"type": "array", "items": _CODING}}},
        "subject": {"type": "object", "properties": {"reference": {"type": "string", "example": "Patient/P0001"}}},
        "effectiveDateTime": {"type": "string", "format": "date-time"},
        "valueQuantity": _QUANTITY,
        "component": {"type": "array", "items": {"type": "object", "properties": {"valueQuantity": _QUANTITY}}},
        "device": {"type": "object"},
    },
}
BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Bundle of type transaction (all or nothing) or batch (each entry on its own) of Observations.",
    "required": ["resourceType", "type", "entry"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["transaction", "batch"]},
        "entry": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BUNDLE_ENTRIES,
            "items": {
                "type": "object",
                "required": ["resource", "request"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": OBSERVATION_SCHEMA,
                    "request": {
                        "type": "object",
                        "required": ["method", "url"],
                        "properties": {
                            "method": {"type": "string", "enum": ["POST"]},
                            "url": {"type": "string", "enum": ["Observation"]},
                            "ifNoneExist": {"type": "string", "example": "identifier=urn:oid:1.2.3|bp-1"},
                        },
                    },
                },
            },
        },
    },
}


def bodies(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/fhir+json": schema, "application/json": schema}
