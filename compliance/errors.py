"""Errors of the compliance exports, each with a stable code."""

from __future__ import annotations

from clinaiops.core.errors import ApplicationError, Conflict, NotFound, PermissionRefused, ValidationFailed


class ExportRefused(PermissionRefused):
    """The actor's role may not make this kind of export."""

    code = "export_refused"


class ExportNotFound(NotFound):
    """No such export, recommendation or patient, or one outside the actor's scope (404, never 403: DESIGN §6)."""

    code = "export_not_found"


class ExportNotBuilt(ApplicationError):
    """A kind of export that is planned (and in the permission table) but not built yet."""

    code = "export_not_built"
    status = 501


class ExportInvalid(ValidationFailed):
    code = "export_invalid"


class ExportNotReady(Conflict):
    code = "export_not_ready"


class ExportFileChanged(Conflict):
    """A stored export file no longer matches the SHA-256 recorded when it was written: refused, not disclosed."""

    code = "export_file_changed"
