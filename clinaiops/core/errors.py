"""Application errors carry a stable code, a message safe to show (no PHI) and optional field messages."""

from __future__ import annotations


class ApplicationError(Exception):
    code = "application_error"
    status = 400
    # Seconds before trying again is worth it (a lock-out, a throttled code); the API sends it as Retry-After.
    retry_after: int | None = None

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code


class ValidationFailed(ApplicationError):
    code = "validation_failed"
    status = 400


class NotFound(ApplicationError):
    """Also used for objects the actor may not see: another patient's object answers 404 (DESIGN §6)."""

    code = "not_found"
    status = 404


class Unauthenticated(ApplicationError):
    """Who is asking is not established: refused credentials, or a token that expired, is not ours or was revoked.
    401 with WWW-Authenticate; the code tells the client what to do next (token_expired: refresh and retry)."""

    code = "unauthenticated"
    status = 401


class PermissionRefused(ApplicationError):
    code = "permission_denied"
    status = 403


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class InvalidTransition(ApplicationError):
    code = "invalid_transition"
    status = 409
