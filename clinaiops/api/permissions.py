from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from clinaiops.core.models import Role, User


class IsPatient(BasePermission):
    message = "This API is for patients; staff use the clinician portal."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user and request.user.is_authenticated and getattr(request.user, "role", None) == Role.PATIENT
        )


class IsFhirSender(BasePermission):
    """Who may post FHIR vital signs: a patient (for themself) or a device gateway (for its care teams' patients;
    clinaiops/loops/services/fhir_ingest.py checks the subject). Every other API refuses a gateway (IsPatient)."""

    message = "The FHIR API is for patients and device gateways."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user
            and request.user.is_authenticated
            and getattr(request.user, "role", None) in (Role.PATIENT, Role.DEVICE_GATEWAY)
        )


def request_user(request: Request) -> User:
    """The signed-in user, for a view whose permission class has already refused anyone else."""
    user = request.user
    assert isinstance(user, User)
    return user
