"""The OpenAPI schema's error responses (issue 12): every operation documents each 4xx and 5xx it can answer, in the
one error shape, so that a generated client can decode any refusal and schemathesis can hold the API to it.

- `ErrorDocumentingAutoSchema` (REST_FRAMEWORK DEFAULT_SCHEMA_CLASS) adds the statuses an operation can give,
  judged from what the operation is: a request body (400, 413, 415), parameters (400; 414 for a URL too long),
  authentication or a credential endpoint (401), authentication (403, and 404: a patient account without a patient
  record), a path id (404), `Idempotency-Key` (409, 422), a throttle (429), and 500 and 503 (a database outage)
  everywhere. A view may add statuses with an `error_statuses` attribute. A status the view documents itself keeps
  its description and gets the shared schema, so there is one error component, not one per view.
- Under /api/v1/fhir/ the refusals are FHIR OperationOutcomes (the FHIR views answer in FHIR), except the 500 and
  503 that Django's handler and the outage middleware give before or after any view, which are the one error shape.
- `error_components_add` (a drf-spectacular postprocessing hook) writes the `Error`, `ErrorCode` and
  `OperationOutcome` components and puts the table of error codes in the schema's description.
- The request schemas say what the server refuses, so that a request the schema allows is one the API takes (what
  schemathesis' positive checks hold it to): a StrictInputSerializer's body has `additionalProperties: false`, a
  string may not hold NUL or be blank where DRF refuses those, and `Idempotency-Key` has its pattern.

The error codes are collected from the code that raises them (ApplicationError subclasses, the token refusal codes,
DRF's exceptions as the handler passes them on, the outage code), plus the few given as literals where they are
raised; tests/api/test_schema_contract.py checks that every literal code in clinaiops/api/ is listed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

from clinaiops.api.auth import TokenRefusal
from clinaiops.api.auth_services import INVALID_CREDENTIALS, MFA_INVALID, MFA_REQUIRED
from clinaiops.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from clinaiops.api.parsers import MAX_JSON_DEPTH, JSONTooDeep
from clinaiops.api.serializers import StrictInputSerializer
from clinaiops.core.db_outage import OUTAGE_CODE
from clinaiops.core.errors import ApplicationError

_T = TypeVar("_T")

ERROR_COMPONENT = "Error"
ERROR_CODE_COMPONENT = "ErrorCode"
OUTCOME_COMPONENT = "OperationOutcome"
JSON = "application/json"
FHIR_JSON = "application/fhir+json"
API_PREFIX = "/api/v1"
FHIR_PREFIX = f"{API_PREFIX}/fhir/"
CREDENTIALS_PREFIX = f"{API_PREFIX}/auth/"

# The packages whose ApplicationErrors reach the patient API (its views and the services they call). Governance,
# inference and compliance raise theirs in the portal; compliance's one API view turns its errors into DRF's.
API_ERROR_PACKAGES = ("clinaiops.api", "clinaiops.core", "clinaiops.care", "clinaiops.loops", "clinaiops.partnership")
# Modules that define errors the API answers with, imported so that the list does not depend on what else has
# loaded: AccountLocked, EncryptedValueUnreadable, AlreadyDecided.
ERROR_MODULES = ("clinaiops.core.auth", "clinaiops.core.crypto.envelope", "clinaiops.loops.services.review")
# DRF exceptions clinaiops.api.errors renames (their DRF codes never reach a client).
_RENAMED_BY_HANDLER = (
    drf_exceptions.ValidationError,
    drf_exceptions.ParseError,
    drf_exceptions.UnsupportedMediaType,
    drf_exceptions.MethodNotAllowed,
)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    meaning: str


# What each code means to an app, and what it should do. A code found in the source without a line here is still
# listed, with its class's docstring or its status's phrase.
MEANINGS: dict[str, str] = {
    "validation_failed": "A field or query parameter is invalid; `fields` names each one. Fix the request.",
    "malformed_json": "The body is not JSON (or not in its declared charset).",
    JSONTooDeep.default_code: f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.",
    "bad_request": "The request could not be read at all (Django refused it before the API did).",
    "idempotency_key_invalid": "The Idempotency-Key header is not 1 to 255 visible ASCII characters.",
    "application_error": "Refused by a rule of the service; the message says which.",
    TokenRefusal.EXPIRED.value: "The access token has expired: refresh it, then retry.",
    TokenRefusal.INVALID.value: "Not one of our tokens (garbage, wrong type, wrong signature): sign in.",
    TokenRefusal.REVOKED.value: "The sign-in has ended (signed out, password changed, refresh token reused): sign in.",
    INVALID_CREDENTIALS: "The username or password is wrong; nothing was issued.",
    MFA_REQUIRED: "The account signs in with a second factor: send the authenticator's code as `otp`.",
    MFA_INVALID: "The second-factor code was wrong or already used.",
    "unauthenticated": "Who is asking is not established; sign in.",
    "not_authenticated": "No `Authorization: Bearer <access token>` header was sent.",
    "authentication_failed": "The credentials were refused.",
    "permission_denied": "Signed in, but this account may not do this (staff use the portal).",
    "emergency_access_read_only": "Break-glass access reads only; it cannot change the record.",
    "not_found": "No such object, or not yours (another patient's object answers 404, never 403), or no such URL.",
    "method_not_allowed": "This path does not take this method; the `Allow` header lists those it takes.",
    "not_acceptable": "The `Accept` header asks for a type the API cannot answer in (it answers JSON).",
    "conflict": "The request conflicts with the current state of the record.",
    "invalid_transition": "The object is not in a state that allows this.",
    "duplicate_reading": "A reading at the same time and source with different values is already stored.",
    "already_decided": "This recommendation has already been answered.",
    "evaluation_refused": "An evaluation was asked for again too soon.",
    "safety_alert_open": "Refused while a safety alert is open.",
    "idempotency_key_in_progress": "A request with this Idempotency-Key is still running, or gave up: retry.",
    "payload_too_large": "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (256 KiB by default).",
    "unsupported_media_type": "Send the body as application/json.",
    "idempotency_key_reused": "This Idempotency-Key was used for a different request: use a new key per operation.",
    "throttled": "Too many requests (sign-in attempts from this address): wait `Retry-After` seconds.",
    "account_locked": "The account is locked after repeated failures: wait `Retry-After` seconds.",
    "error": "A refusal without a more specific code; the message says why.",
    "server_error": "Something went wrong on our side; try again later (the error is logged, never its data).",
    "encrypted_value_unreadable": "A stored value could not be decrypted: an operator's problem, reported to them.",
    OUTAGE_CODE: "The database is not answering: retry after `Retry-After` seconds (a resent reading is stored once).",
}

# Codes given as literals where they are raised (`code="…"` on an ApplicationError, error_body("…") in
# clinaiops/api/errors.py), with the status they answer.
LITERAL_CODES: dict[str, int] = {
    # clinaiops/api/errors.py
    "validation_failed": 400,
    "malformed_json": 400,
    "bad_request": 400,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "server_error": 500,
    # raised with code= (clinaiops/api/idempotency.py, clinaiops/care/services.py)
    "idempotency_key_invalid": 400,
    "idempotency_key_in_progress": 409,
    "duplicate_reading": 409,
}


def _subclasses(cls: type[_T]) -> Iterator[type[_T]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _doc_line(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split(". ")[0].split("\n\n")[0].replace("\n", " ").strip().rstrip(".") if doc else ""


def error_codes() -> list[ErrorCode]:
    """Every code the API's error shape can carry, with its status and meaning, sorted by status then code."""
    for module in ERROR_MODULES:
        importlib.import_module(module)
    found: dict[str, tuple[int, str]] = {}

    def add(code: str, status: int, doc: str = "") -> None:
        found.setdefault(code, (status, doc))

    application_errors: list[type[ApplicationError]] = [ApplicationError, *_subclasses(ApplicationError)]
    for cls in application_errors:
        if cls.__module__.startswith(API_ERROR_PACKAGES):
            add(str(cls.code), int(cls.status), _doc_line(cls))
    for code, status in LITERAL_CODES.items():
        add(code, status)
    for refusal in TokenRefusal:
        add(refusal.value, 401)
    for code in (INVALID_CREDENTIALS, MFA_REQUIRED, MFA_INVALID):
        add(code, 401)
    add(JSONTooDeep.default_code, 400)
    add(OUTAGE_CODE, 503)
    # DRF's own exceptions, whose codes the handler passes on (a throttle's `throttled`, `not_authenticated`, ...).
    drf_errors: list[type[drf_exceptions.APIException]] = [
        drf_exceptions.APIException,
        *_subclasses(drf_exceptions.APIException),
    ]
    for drf_error in drf_errors:
        if drf_error.__module__ == drf_exceptions.__name__ and not issubclass(drf_error, _RENAMED_BY_HANDLER):
            add(str(drf_error.default_code), int(drf_error.status_code), "")
    codes = [
        ErrorCode(code=code, status=status, meaning=MEANINGS.get(code) or doc or HTTPStatus(status).phrase)
        for code, (status, doc) in found.items()
    ]
    return sorted(codes, key=lambda c: (c.status, c.code))


def error_code_table(codes: Iterable[ErrorCode]) -> str:
    rows = "\n".join(f"| `{c.code}` | {c.status} | {c.meaning} |" for c in codes)
    return f"| code | status | meaning |\n|---|---|---|\n{rows}"


# --- Per-operation statuses ------------------------------------------------------------------------------------

STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "The request is invalid: a field or parameter (named in `fields`), malformed or too deeply nested JSON.",
    401: "Not signed in, or the token expired, is not ours or was revoked; the code says which.",
    403: "Signed in, but this account may not do this.",
    404: "Not found: no such object, not yours, or no patient record for this account.",
    409: "Conflicts with what is stored, or the same Idempotency-Key is still in progress.",
    413: "The body is too large.",
    415: "The body is not application/json.",
    422: "This Idempotency-Key was used for a different request.",
    429: "Too many attempts: wait `Retry-After` seconds.",
    500: "Something went wrong on our side.",
    503: "The database is not answering: retry after `Retry-After` seconds.",
}
# A request line over gunicorn's limit_request_line (4094 bytes) never reaches Django: gunicorn answers 414 itself,
# in HTML, which no view can change. Documented as what it is, on the operations whose URL a client makes long.
URI_TOO_LONG = 414
URI_TOO_LONG_RESPONSE: dict[str, Any] = {
    "description": (
        "The URL is longer than the web server takes (gunicorn: a 4094-byte request line). The web server answers "
        "this itself, in HTML, before the API sees the request."
    ),
    "content": {"text/html": {"schema": {"type": "string"}}},
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}}
}
STATUS_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {"description": 'The scheme to use: `Bearer realm="api"`.', "schema": {"type": "string"}}
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


NO_NUL = "^[^\\u0000]*$"
# For a field that may be blank: drf-spectacular then offers "" as a oneOf branch of its own, so this one must not.
NO_NUL_NOT_EMPTY = "^[^\\u0000]+$"
NOT_BLANK_NO_NUL = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
# The same rule as clinaiops.api.idempotency's: 1 to 255 visible ASCII characters.
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$", "minLength": 1, "maxLength": 255}


# One example a status, in the words the API uses (clinaiops/api/errors.py, auth.py, idempotency.py, db_outage.py).
STATUS_EXAMPLES: dict[int, tuple[str, str, dict[str, list[str]]]] = {
    400: (
        "validation_failed",
        "Some fields are invalid.",
        {"systolic": ["Ensure this value is less than or equal to 300."]},
    ),
    401: (TokenRefusal.EXPIRED.value, "The token has expired.", {}),
    403: ("permission_denied", "This API is for patients; staff use the clinician portal.", {}),
    404: ("not_found", "Not found.", {}),
    409: ("idempotency_key_in_progress", "A request with this Idempotency-Key was in progress; retry.", {}),
    413: ("payload_too_large", "The request body is too large.", {}),
    415: ("unsupported_media_type", "Send the body as application/json.", {}),
    422: (
        "idempotency_key_reused",
        "This Idempotency-Key was used for another request; use a new key for each operation.",
        {},
    ),
    429: ("throttled", "Request was throttled. Expected available in 42 seconds.", {}),
    500: ("server_error", "Something went wrong on our side; try again later.", {}),
    503: (OUTAGE_CODE, "The database is not answering. Try again shortly; a resent reading is stored only once.", {}),
}
CREDENTIALS_401_EXAMPLE: tuple[str, str, dict[str, list[str]]] = (
    INVALID_CREDENTIALS,
    "No active account was found with these credentials.",
    {},
)
OUTCOME_EXAMPLE = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "value",
            "diagnostics": "Use mm[Hg] or kPa.",
            "expression": ["Observation.component[0].valueQuantity.code"],
        }
    ],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class ErrorDocumentingAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with every operation's error responses (module docstring)."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: ComponentRegistry
    ) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        # The statuses the operation can give, and any other error status its view documented itself.
        documented = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
        for status in sorted(self.error_statuses(operation) | documented):
            responses[str(status)] = self._error_response(status, responses.get(str(status), {}).get("description"))
        return operation

    # --- What the server refuses, said in the schema, so that a request the schema allows is one it accepts ----

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]
        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False  # unknown fields are refused, not dropped
        return schema

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions
        )
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"enum", "format", "pattern"} & schema.keys()
        ):
            # DRF refuses a NUL character in any string, and a blank one (after trimming) unless allow_blank.
            if field.allow_blank:
                schema["pattern"] = NO_NUL_NOT_EMPTY
            elif field.trim_whitespace:
                schema["pattern"] = NOT_BLANK_NO_NUL
            else:
                schema["pattern"] = NO_NUL
                schema["minLength"] = max(1, int(schema.get("minLength", 0)))
        return schema

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_HEADER:
                # clinaiops.api.idempotency refuses any other key with 400 idempotency_key_invalid.
                parameter["schema"] = {**parameter.get("schema", {}), **IDEMPOTENCY_KEY_SCHEMA}
        return parameters

    # --- Errors ------------------------------------------------------------------------------------------------

    def answers_fhir(self) -> bool:
        return self.path.startswith(FHIR_PREFIX)

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        authenticated = any(requirement for requirement in operation.get("security", []))
        checks_credentials = self.path.startswith(CREDENTIALS_PREFIX)
        idempotent = any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in parameters)
        statuses = {500, 503}
        if has_body or any(p.get("in") != "path" for p in parameters):
            statuses.add(400)
        if has_body:
            statuses |= {413, 415}
        if authenticated or checks_credentials:
            statuses.add(401)
        if authenticated:
            # A role check (staff on a patient endpoint), and a patient account without a patient record.
            statuses |= {403, 404}
        elif self._restricts_by_permission():
            statuses.add(403)
        if any(p.get("in") == "path" for p in parameters):
            statuses.add(404)
        if any(p.get("in") in {"path", "query"} for p in parameters):
            statuses.add(URI_TOO_LONG)
        if idempotent:
            statuses |= {409, 422}
        if self.view.get_throttles():  # the sign-in throttle; its lock-out (account_locked) is a 429 too
            statuses.add(429)
        statuses |= {int(status) for status in getattr(self.view, "error_statuses", ())}
        return statuses

    def _error_example(self, status: int) -> dict[str, Any]:
        code, message, fields = (
            CREDENTIALS_401_EXAMPLE
            if status == 401 and self.path.startswith(CREDENTIALS_PREFIX)
            else STATUS_EXAMPLES.get(status, ("error", HTTPStatus(status).phrase, {}))
        )
        return {"code": code, "message": message, "fields": fields}

    def _restricts_by_permission(self) -> bool:
        return any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in self.view.get_permissions())

    def _error_response(self, status: int, description: str | None) -> dict[str, Any]:
        if status == URI_TOO_LONG:
            return URI_TOO_LONG_RESPONSE
        fhir = self.answers_fhir()
        if fhir and status < 500:
            media_types = [m for m in self.map_renderers("media_type") if m] or [FHIR_JSON]
            schema: dict[str, Any] = _ref(OUTCOME_COMPONENT)
        elif fhir:
            media_types = sorted({*self.map_renderers("media_type"), JSON})
            schema = {"oneOf": [_ref(OUTCOME_COMPONENT), _ref(ERROR_COMPONENT)]}
        else:
            media_types, schema = [JSON], _ref(ERROR_COMPONENT)
        example = OUTCOME_EXAMPLE if fhir and status < 500 else self._error_example(status)
        response: dict[str, Any] = {
            "description": description or STATUS_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase,
            "content": {media_type: {"schema": schema, "example": example} for media_type in media_types},
        }
        if status in STATUS_HEADERS:
            response["headers"] = STATUS_HEADERS[status]
        return response


# --- Components, and the code table in the description ----------------------------------------------------------

FHIR_ISSUE_SEVERITIES = ["fatal", "error", "warning", "information"]
# FHIR R4 IssueType (http://hl7.org/fhir/R4/valueset-issue-type.html).
FHIR_ISSUE_TYPES = [
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown", "expired", "forbidden",
    "suppressed", "processing", "not-supported", "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
    "code-invalid", "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
]  # fmt: skip


def error_components(codes: list[ErrorCode]) -> dict[str, dict[str, Any]]:
    return {
        ERROR_CODE_COMPONENT: {
            "type": "string",
            "enum": [c.code for c in codes],
            "description": "A stable code an app can act on; the table in the API description says what each means.",
        },
        ERROR_COMPONENT: {
            "type": "object",
            "description": (
                "The one error shape of every 4xx and 5xx outside FHIR. `message` is safe to show and never repeats "
                "a value that was sent."
            ),
            "properties": {
                "code": _ref(ERROR_CODE_COMPONENT),
                "message": {"type": "string", "description": "A sentence safe to show the patient."},
                "fields": {
                    "type": "object",
                    "description": "Messages per field, query parameter or header; empty when not about one.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message", "fields"],
        },
        OUTCOME_COMPONENT: {
            "type": "object",
            "description": "FHIR R4 OperationOutcome: how the FHIR endpoints refuse; `expression` names the element.",
            "properties": {
                "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                "issue": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "severity": {"type": "string", "enum": FHIR_ISSUE_SEVERITIES},
                            "code": {"type": "string", "enum": FHIR_ISSUE_TYPES},
                            "diagnostics": {"type": "string"},
                            "expression": {"type": "array", "items": {"type": "string"}},
                            "details": {"type": "object"},
                        },
                        "required": ["severity", "code"],
                    },
                },
            },
            "required": ["resourceType", "issue"],
        },
    }  # fmt: skip


def error_components_add(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error components (replacing any a view registered under the same
    name, so every reference means the one shape) and the error-code table in the description."""
    codes = error_codes()
    result.setdefault("components", {}).setdefault("schemas", {}).update(error_components(codes))
    description = result.setdefault("info", {}).get("description", "")
    result["info"]["description"] = f"{description}\n\n## Error codes\n\n{error_code_table(codes)}".strip()
    return result
