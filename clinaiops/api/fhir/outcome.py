"""FHIR OperationOutcomes: every answer under /api/v1/fhir/ that is not a success is one (FHIR R4 §3.1.0.4.1).

Each issue has a severity, an IssueType code, a `diagnostics` sentence in our words and, where an element is at fault,
an `expression` naming it (`Bundle.entry[2].resource.component[0].valueQuantity.code`). Like every error of this API
(clinaiops/api/errors.py) an issue never repeats a submitted value: the library's own messages can quote the input
(a wrong resourceType is named), so only the error's type and location are used. `details.coding` carries the API's
stable error code (or an alert's kind) for clients that branch on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError
from rest_framework.response import Response

from clinaiops.api.errors import api_exception_handler
from clinaiops.core.errors import ApplicationError

logger = logging.getLogger(__name__)

# The CodeSystem of the API's error codes (clinaiops/api/errors.py) and of alert kinds, in issue.details.coding.
ERROR_CODE_SYSTEM = "https://clinaiops.example/fhir/CodeSystem/api-error"
ALERT_KIND_SYSTEM = "https://clinaiops.example/fhir/CodeSystem/alert-kind"

# IssueType (http://hl7.org/fhir/issue-type) of an error answered with this HTTP status.
_ISSUE_TYPE_BY_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "business-rule",
    429: "throttled",
    503: "transient",
}

# What a pydantic error type means, in words that never quote the input.
_REQUIRED = "This element is required."
_INVALID_VALUE = "Not a valid value for this element's type."
_MESSAGES_BY_ERROR_TYPE = {
    "missing": _REQUIRED,
    "model_field_validation.missing": _REQUIRED,
    "extra_forbidden": "An unknown element here: it is not part of this resource (its name is not repeated).",
    "fhir-validation-wrong-resource-type": "Wrong resourceType for this element.",
    "model_type": "Expected a JSON object here.",
    "list_type": "Expected a JSON array here.",
}
# An element name as FHIR spells them (and fhir.resources' `<name>__ext` for a primitive's `_<name>`); anything else
# in a location is a key the sender made up, which is not repeated.
_ELEMENT_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9]{0,63}(__ext)?")


@dataclass(frozen=True)
class FhirIssue:
    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code
    diagnostics: str
    expression: str | None = None
    detail_code: str | None = None
    detail_system: str = ERROR_CODE_SYSTEM

    def as_dict(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        if self.detail_code:
            issue["details"] = {"coding": [{"system": self.detail_system, "code": self.detail_code}]}
        return issue


def error(code: str, diagnostics: str, expression: str | None = None, detail_code: str | None = None) -> FhirIssue:
    return FhirIssue(
        severity="error", code=code, diagnostics=diagnostics, expression=expression, detail_code=detail_code
    )


class FhirRefused(ApplicationError):
    """A refusal answered as an OperationOutcome with these issues (a subclass of the API's error, so the
    Idempotency-Key claim is given up as for any refusal)."""

    def __init__(self, issues: Sequence[FhirIssue], *, status: int = 400, code: str = "fhir_invalid") -> None:
        super().__init__(issues[0].diagnostics if issues else "Refused.", code=code)
        self.issues = list(issues)
        self.status = status


def operation_outcome(issues: Sequence[FhirIssue]) -> dict[str, Any]:
    """The OperationOutcome of these issues, built and checked by the library's model."""
    outcome = OperationOutcome.model_validate(
        {"resourceType": "OperationOutcome", "issue": [issue.as_dict() for issue in issues]}
    )
    data: dict[str, Any] = outcome.model_dump(mode="json", exclude_none=True)
    return data


def issue_type_for_status(status: int) -> str:
    return _ISSUE_TYPE_BY_STATUS.get(status, "exception" if status >= 500 else "processing")


def fhir_path(prefix: str, loc: Sequence[int | str]) -> str:
    """A FHIRPath-style expression from a pydantic error location: ("component", 0, "valueQuantity") under
    "Observation" is "Observation.component[0].valueQuantity"."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = str(part)
        if not _ELEMENT_NAME.fullmatch(name):
            path += ".*"  # a key of the sender's, not repeated
            continue
        if name.endswith("__ext"):  # the library's name for a primitive's extension, `_name` on the wire
            name = "_" + name.removesuffix("__ext")
        path += "." + ("resourceType" if name == "resource_type" else name)
    return path


def validation_issues(exc: ValidationError, prefix: str) -> list[FhirIssue]:
    """The library's validation errors as issues, each naming its element; never the error's input or message."""
    issues = []
    for item in exc.errors(include_input=False, include_url=False, include_context=False):
        kind = str(item.get("type", ""))
        diagnostics = _MESSAGES_BY_ERROR_TYPE.get(kind, _INVALID_VALUE)
        issue_type = "required" if diagnostics == _REQUIRED else "structure" if kind == "extra_forbidden" else "value"
        loc = tuple(item.get("loc", ()))
        if kind == "extra_forbidden" and loc:
            loc = loc[:-1]  # the unknown key is the sender's own text: name the element that holds it
        issues.append(error(issue_type, diagnostics, fhir_path(prefix, loc)))
    return issues or [error("invalid", "The resource is not valid.", prefix)]


def _issues_from_error_body(body: Any, status: int) -> list[FhirIssue]:
    """The API's one error shape ({"code","message","fields"}) as issues; a field that is no FHIR element (a header)
    goes into the diagnostics."""
    if not isinstance(body, dict):
        return [error(issue_type_for_status(status), "The request was refused.")]
    code = str(body.get("code") or "error")
    issue_type = issue_type_for_status(status)
    issues = [error(issue_type, str(body.get("message") or "The request was refused."), detail_code=code)]
    fields = body.get("fields") or {}
    if isinstance(fields, dict):
        for name, messages in fields.items():
            for message in messages if isinstance(messages, list) else [messages]:
                issues.append(error(issue_type, f"{name}: {message}", detail_code=code))
    return issues


def fhir_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The API's exception handler, answered as an OperationOutcome; an unexpected exception is logged and answered
    500 `exception` here too, so that no answer under /api/v1/fhir/ is anything but FHIR."""
    if isinstance(exc, FhirRefused):
        return Response(operation_outcome(exc.issues), status=exc.status)
    response = api_exception_handler(exc, context)
    if response is None:
        logger.exception("FHIR request failed", exc_info=exc)
        issues = [error("exception", "Something went wrong on our side; try again later.", detail_code="server_error")]
        return Response(operation_outcome(issues), status=500)
    response.data = operation_outcome(_issues_from_error_body(response.data, response.status_code))
    return response
