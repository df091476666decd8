"""FHIR R4 endpoints: POST Observation, POST a transaction or batch Bundle, GET metadata. Thin: parse
(observations.py) → store (clinaiops/loops/services/fhir_ingest.py) → answer (a Bundle or an OperationOutcome).

A created Observation is answered with an OperationOutcome (FHIR's `Prefer: return=OperationOutcome`), whose first
issue says what was stored and whose further issues are the open safety alerts of the reading, each with the plain
guidance the patient must see (clinaiops/care/guidance.py), severity `warning`. A Bundle is answered with a
transaction-response or batch-response Bundle whose entries carry the same outcome in `response.outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from pydantic import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinaiops.api.fhir.capability import capability_statement
from clinaiops.api.fhir.media import FhirContentNegotiation, FhirJSONParser, FhirJSONRenderer
from clinaiops.api.fhir.observations import ParsedObservation, SubjectScope, observation_parse
from clinaiops.api.fhir.outcome import (
    ALERT_KIND_SYSTEM,
    FhirIssue,
    FhirRefused,
    error,
    fhir_exception_handler,
    issue_type_for_status,
    operation_outcome,
    validation_issues,
)
from clinaiops.api.fhir.schema import (
    BUNDLE_SCHEMA,
    IF_NONE_EXIST_PARAMETER,
    MAX_BUNDLE_ENTRIES,
    OBSERVATION_SCHEMA,
    OUTCOME,
    REFUSALS,
    bodies,
)
from clinaiops.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from clinaiops.api.parsers import BoundedJSONParser
from clinaiops.api.permissions import IsFhirSender, request_user
from clinaiops.care.guidance import alert_guidance
from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User
from clinaiops.loops.services.fhir_ingest import (
    VitalSignKind,
    VitalSignOutcome,
    VitalSignRefused,
    VitalSignResult,
    fhir_transaction_refused_audit,
    heart_rates_paired,
    vital_signs_batch_ingest,
    vital_signs_transaction_ingest,
)

_STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    409: "409 Conflict",
    422: "422 Unprocessable Entity",
}
_OUTCOME_WORDS = {
    VitalSignOutcome.CREATED: "Stored as a new reading.",
    VitalSignOutcome.UNCHANGED: "Already stored; nothing was stored twice.",
    VitalSignOutcome.UPDATED: "The heart rate was added to the blood-pressure reading taken at the same time.",
    VitalSignOutcome.NOT_STORED: (
        "No blood-pressure reading of this patient at this time, so the heart rate was not stored: send it in the "
        "Bundle of its blood-pressure panel, or after the panel."
    ),
}


class FhirView(APIView):
    """FHIR's media type in and out, and every refusal an OperationOutcome."""

    parser_classes = [FhirJSONParser, BoundedJSONParser]
    renderer_classes = [FhirJSONRenderer]
    content_negotiation_class = FhirContentNegotiation
    permission_classes = [IsFhirSender]

    def get_exception_handler(self) -> Any:
        return fhir_exception_handler


def _resource_id(kind: VitalSignKind, result: VitalSignResult) -> str | None:
    if result.reading is None:
        return None
    return f"{'bp' if kind == VitalSignKind.BLOOD_PRESSURE else 'hr'}-{result.reading.pk}"


def _result_status(result: VitalSignResult) -> int:
    return 201 if result.outcome in (VitalSignOutcome.CREATED, VitalSignOutcome.UPDATED) else 200


def _result_issues(result: VitalSignResult) -> list[FhirIssue]:
    stored = result.outcome != VitalSignOutcome.NOT_STORED
    issues = [
        FhirIssue(
            severity="information" if stored else "warning",
            code="informational" if stored else "not-found",
            diagnostics=_OUTCOME_WORDS[result.outcome],
        )
    ]
    for alert in result.open_alerts:
        issues.append(
            FhirIssue(
                severity="warning",
                code="informational",
                diagnostics=alert_guidance(alert.kind)
                or "A safety alert is open for this reading; the care team has been alerted.",
                detail_code=alert.kind,
                detail_system=ALERT_KIND_SYSTEM,
            )
        )
    return issues


def _refusal_issues(exc: ApplicationError, paths: dict[str, str], prefix: str) -> list[FhirIssue]:
    """A refusal of the ingest service (implausible values, a conflicting reading) as issues naming the elements."""
    issue_type = "value" if exc.status == 400 else issue_type_for_status(exc.status)
    issues = [
        error(issue_type, message, paths.get(name, prefix), detail_code=exc.code)
        for name, messages in exc.fields.items()
        for message in messages
    ]
    return issues or [error(issue_type, exc.message, prefix, detail_code=exc.code)]


def _refusal_status(refusals: Sequence[FhirRefused]) -> int:
    statuses = {refusal.status for refusal in refusals}
    return 403 if 403 in statuses else max(statuses)


class ObservationCreateView(FhirView):
    """Create one US Core Blood Pressure or Heart Rate Observation."""

    @extend_schema(
        operation_id="fhir_observation_create",
        request=bodies(OBSERVATION_SCHEMA),
        responses={201: OUTCOME, 200: OUTCOME, **REFUSALS},
        parameters=[IDEMPOTENCY_KEY_PARAMETER, IF_NONE_EXIST_PARAMETER],
        description=(
            "A US Core Blood Pressure (LOINC 85354-9) or Heart Rate (8867-4) Observation for Patient/<code>. 201 "
            "when stored (a heart rate fills the reading at its time), 200 when already stored or a heart rate has "
            "no reading at its time (a warning says so); the OperationOutcome's warnings are the open safety "
            "alerts, with guidance."
        ),
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        actor = request_user(request)
        parsed = observation_parse(
            request.data,
            prefix="Observation",
            scope=SubjectScope(actor=actor),
            if_none_exist=request.headers.get("If-None-Exist"),
            if_none_exist_path="Observation.identifier",
        )
        [result] = vital_signs_batch_ingest(actor=actor, signs=[parsed.sign])
        if isinstance(result, ApplicationError):
            raise FhirRefused(
                _refusal_issues(result, parsed.paths, "Observation"), status=result.status, code=result.code
            )
        response = Response(operation_outcome(_result_issues(result)), status=_result_status(result))
        resource_id = _resource_id(parsed.sign.kind, result)
        if resource_id is not None:
            response["Location"] = f"Observation/{resource_id}"
        return response


def _bundle_entries(body: Any) -> tuple[str, list[Any]]:
    """(type, raw entries) of a transaction or batch Bundle, its shell validated by the library's model."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirRefused([error("invalid", "Send a Bundle of type transaction or batch.", "Bundle.resourceType")])
    bundle_type = body.get("type")
    if bundle_type not in ("transaction", "batch"):
        raise FhirRefused([error("not-supported", "Only transaction and batch Bundles are accepted.", "Bundle.type")])
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise FhirRefused([error("structure", "Expected a JSON array here.", "Bundle.entry")])
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise FhirRefused([error("too-costly", f"At most {MAX_BUNDLE_ENTRIES} entries in one Bundle.", "Bundle.entry")])
    try:
        Bundle.model_validate({name: value for name, value in body.items() if name != "entry"})
    except ValidationError as exc:
        raise FhirRefused(validation_issues(exc, "Bundle")) from None
    except (LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise FhirRefused([error("structure", "The Bundle could not be read.", "Bundle")]) from exc
    return str(bundle_type), entries


def _entry_parse(raw: Any, index: int, scope: SubjectScope) -> ParsedObservation:
    prefix = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise FhirRefused([error("structure", "Expected a JSON object here.", prefix)])
    issues: list[FhirIssue] = []
    if_none_exist: str | None = None
    try:
        entry = BundleEntry.model_validate({name: value for name, value in raw.items() if name != "resource"})
    except ValidationError as exc:
        issues.extend(validation_issues(exc, prefix))
    except (LookupError, TypeError, ValueError, AttributeError, RecursionError):
        issues.append(error("structure", "The entry could not be read.", prefix))
    else:
        if entry.request is None:
            issues.append(error("required", "Each entry needs a request: POST Observation.", f"{prefix}.request"))
        else:
            if entry.request.method != "POST":
                issues.append(error("not-supported", "Only POST (create) is supported.", f"{prefix}.request.method"))
            if (entry.request.url or "").strip("/") != "Observation":
                issues.append(error("not-supported", "Only Observation is supported.", f"{prefix}.request.url"))
            if_none_exist = entry.request.ifNoneExist
    if "resource" not in raw:
        issues.append(error("required", "Each entry needs a resource.", f"{prefix}.resource"))
        raise FhirRefused(issues)
    try:
        parsed = observation_parse(
            raw["resource"],
            prefix=f"{prefix}.resource",
            scope=scope,
            if_none_exist=if_none_exist,
            if_none_exist_path=f"{prefix}.request.ifNoneExist",
        )
    except FhirRefused as exc:
        raise FhirRefused(issues + exc.issues, status=exc.status, code=exc.code) from None
    if issues:
        raise FhirRefused(issues)
    return parsed


def _paths_with_heart_rate(parsed: Sequence[ParsedObservation], index: int) -> dict[str, str]:
    """The element paths of entry `index`, with its paired heart rate's value when the panel took one."""
    paired = heart_rates_paired([p.sign for p in parsed])
    paths = dict(parsed[index].paths)
    if index in paired:
        paths["heart_rate"] = parsed[paired[index]].paths["heart_rate"]
    return paths


def _entry_answer(status: int, issues: list[FhirIssue], location: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _STATUS_TEXT.get(status, str(status)), "outcome": operation_outcome(issues)}
    if location:
        response["location"] = location
    return {"response": response}


def _result_answer(kind: VitalSignKind, result: VitalSignResult) -> dict[str, Any]:
    resource_id = _resource_id(kind, result)
    location = f"Observation/{resource_id}" if resource_id else None
    return _entry_answer(_result_status(result), _result_issues(result), location)


def _bundle_answer(bundle_type: str, entries: list[dict[str, Any]]) -> Response:
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": bundle_type, "entry": entries or None})
    return Response(bundle.model_dump(mode="json", exclude_none=True))


class BundleView(FhirView):
    """Process a transaction (all or nothing) or batch (each entry on its own) Bundle of Observations."""

    @extend_schema(
        operation_id="fhir_bundle_process",
        request=bodies(BUNDLE_SCHEMA),
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="A transaction-response or batch-response Bundle."),
            **REFUSALS,
        },
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            f"A Bundle of type transaction or batch, at most {MAX_BUNDLE_ENTRIES} entries, each POST Observation "
            "(US Core Blood Pressure or Heart Rate), optionally with request.ifNoneExist = identifier=system|value. "
            "A transaction stores every entry or none: one bad entry answers one OperationOutcome naming it "
            "(Bundle.entry[n]…). A batch answers each entry in a batch-response Bundle (response.status and "
            "response.outcome). A heart rate at the same time as a panel of the same Bundle fills its heart rate."
        ),
    )
    @idempotent(in_steps=True)  # a batch is one transaction an entry; never one for the whole Bundle
    def post(self, request: Request) -> Response:
        actor = request_user(request)
        bundle_type, raw_entries = _bundle_entries(request.data)
        scope = SubjectScope(actor=actor)
        parsed: list[ParsedObservation | FhirRefused] = []
        for index, raw in enumerate(raw_entries):
            try:
                parsed.append(_entry_parse(raw, index, scope))
            except FhirRefused as exc:
                parsed.append(exc)
        if bundle_type == "transaction":
            return self._transaction(actor, parsed)
        return self._batch(actor, parsed)

    def _transaction(self, actor: User, parsed: list[ParsedObservation | FhirRefused]) -> Response:
        refusals = [p for p in parsed if isinstance(p, FhirRefused)]
        if refusals:
            issues = [issue for refusal in refusals for issue in refusal.issues]
            fhir_transaction_refused_audit(actor=actor, elements=[i.expression or "Bundle" for i in issues])
            raise FhirRefused(issues, status=_refusal_status(refusals))
        observations = [p for p in parsed if isinstance(p, ParsedObservation)]
        try:
            results = vital_signs_transaction_ingest(actor=actor, signs=[p.sign for p in observations])
        except VitalSignRefused as exc:
            prefix = f"Bundle.entry[{exc.index}].resource"
            issues = _refusal_issues(exc.error, _paths_with_heart_rate(observations, exc.index), prefix)
            raise FhirRefused(issues, status=exc.error.status, code=exc.error.code) from None
        answers = [_result_answer(p.sign.kind, r) for p, r in zip(observations, results, strict=True)]
        return _bundle_answer("transaction-response", answers)

    def _batch(self, actor: User, parsed: list[ParsedObservation | FhirRefused]) -> Response:
        accepted = [(index, p) for index, p in enumerate(parsed) if isinstance(p, ParsedObservation)]
        observations = [p for _, p in accepted]
        results = vital_signs_batch_ingest(actor=actor, signs=[p.sign for p in observations])
        answers: list[dict[str, Any]] = [
            _entry_answer(p.status, p.issues) if isinstance(p, FhirRefused) else {} for p in parsed
        ]
        for position, ((index, p), result) in enumerate(zip(accepted, results, strict=True)):
            if isinstance(result, ApplicationError):
                issues = _refusal_issues(
                    result, _paths_with_heart_rate(observations, position), f"Bundle.entry[{index}].resource"
                )
                answers[index] = _entry_answer(result.status, issues)
            else:
                answers[index] = _result_answer(p.sign.kind, result)
        return _bundle_answer("batch-response", answers)


class MetadataView(FhirView):
    """The CapabilityStatement: FHIR 4.0.1, JSON, US Core Blood Pressure and Heart Rate, create (conditional),
    transaction and batch. Public, as FHIR servers' metadata is."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        operation_id="fhir_metadata",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="A FHIR CapabilityStatement.")},
    )
    def get(self, request: Request) -> Response:
        return Response(capability_statement())


class FhirNotFoundView(FhirView):
    """Any other URL under /api/v1/fhir/: 404 as an OperationOutcome, not the API's plain error shape."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    schema = None

    def _not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise FhirRefused([error("not-found", "No such FHIR endpoint: see /api/v1/fhir/metadata.")], status=404)

    get = post = put = patch = delete = _not_found
