"""The patient's own accounting as a file, through the mobile API (GET /api/v1/me/access-log/export/?format=csv|jsonl).

It lives in compliance (a surface beside clinaiops.api, which may not import it) and is routed from the root URL
configuration. Authentication, errors and throttling are the API's defaults (JWT, the JSON error shape)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound as ApiNotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from clinaiops.core.errors import ApplicationError, NotFound, PermissionRefused
from clinaiops.core.models import Role, User
from compliance.models import ExportKind
from compliance.services import export_stream


class IsPatientUser(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", "") == Role.PATIENT)


class AccessLogExportView(APIView):
    """Your accounting of access and disclosure as CSV or JSON Lines, streamed; the export itself is recorded in it."""

    permission_classes = [IsPatientUser]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # ?format= names the file format here, not a DRF renderer: never answer 404 for it. Errors still render as
        # the API's JSON shape.
        negotiated: tuple[Any, str] = super().perform_content_negotiation(request, force=True)
        return negotiated

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "jsonl"], required=False)],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, "application/x-ndjson"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        user = request.user
        assert isinstance(user, User)
        fmt = request.query_params.get("format", "csv")
        try:
            streamed = export_stream(
                actor=user, kind=ExportKind.ACCOUNTING, parameters={}, fmt=fmt, purpose="patient_request"
            )
        except NotFound as exc:
            raise ApiNotFound(exc.message) from exc
        except PermissionRefused as exc:
            raise ApiPermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            raise ValidationError({"format": ["Use csv or jsonl."]}) from exc
        response = StreamingHttpResponse(streamed.chunks, content_type=streamed.content_type)
        response["Content-Disposition"] = f'attachment; filename="{streamed.filename}"'
        return response
