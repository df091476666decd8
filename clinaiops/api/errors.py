"""One error shape for the API: {"code", "message", "fields"} (STYLE.md). Messages never echo input values,
so no PHI leaks into errors or the logs that capture them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from clinaiops.api.parsers import JSONTooDeep
from clinaiops.core.db_outage import OUTAGE_CODE, OUTAGE_MESSAGE, database_outage, retry_after_seconds
from clinaiops.core.errors import ApplicationError


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, list):
        return [str(item) for item in detail]
    if isinstance(detail, dict):
        return [f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)]
    return [str(detail)]


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "fields": fields or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        refusal = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # A lock-out or a throttled second factor says when to try again (RFC 9110 §10.2.3).
            refusal["Retry-After"] = str(int(retry_after))
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            refusal["WWW-Authenticate"] = 'Bearer realm="api"'
        return refusal
    if database_outage(exc):
        # Down, restarting or stalled past the time limits (clinaiops/core/db_outage.py): try again, never a 500.
        unavailable = Response(error_body(OUTAGE_CODE, OUTAGE_MESSAGE), status=status.HTTP_503_SERVICE_UNAVAILABLE)
        unavailable["Retry-After"] = str(retry_after_seconds())
        return unavailable
    if isinstance(exc, RequestDataTooBig):
        # Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE before anything is parsed.
        return Response(
            error_body("payload_too_large", "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = {key: _flatten(value) for key, value in detail.items()}
        response.data = error_body("validation_failed", "Some fields are invalid.", fields)
    elif isinstance(exc, JSONTooDeep):
        response.data = error_body(JSONTooDeep.default_code, str(JSONTooDeep.default_detail))
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body("malformed_json", "The request body is not valid JSON.")
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        # DRF's message quotes the request's Content-Type.
        response.data = error_body("unsupported_media_type", "Send the body as application/json.")
    elif isinstance(exc, exceptions.MethodNotAllowed):
        # DRF's message quotes the method; the Allow header lists the ones this URL takes.
        response.data = error_body("method_not_allowed", "This method is not allowed here.")
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(
            code, str(exc.detail) if not isinstance(exc.detail, dict | list) else "Request refused."
        )
    return response


# Django's own error views (clinaiops/urls.py handler400/403/404/500), for what never reaches a DRF view: a URL no
# route matches (/api/v1/nope/, /recommendations/-1/) and an exception DRF does not handle. Under /api/ they answer
# in the one error shape; elsewhere Django's pages.
API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request is not valid."), status=400)
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


def api_permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "You may not do this."), status=403)
    return defaults.permission_denied(request, exception)  # type: ignore[arg-type]


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)  # type: ignore[arg-type]


def api_server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        # Never the exception's text: it may hold PHI. The traceback goes to the error log, as for any 500.
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; try again later."), status=500
        )
    return defaults.server_error(request)
