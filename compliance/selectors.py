"""Compliance export reads, scoped in the queryset: officers see every export, anyone else only their own; an export
outside the actor's scope is not found (DESIGN §6)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from clinaiops.core.models import User
from compliance.errors import ExportNotFound
from compliance.models import Export, ExportFile
from compliance.permissions import is_officer


def export_list_visible(*, actor: User, limit: int = 50) -> list[Export]:
    exports: QuerySet[Export] = Export.objects.select_related("requested_by").prefetch_related(
        Prefetch("files", queryset=ExportFile.objects.order_by("name"))
    )
    if not is_officer(actor.role):
        exports = exports.filter(requested_by=actor)
    return list(exports.order_by("-created_at", "-pk")[:limit])


def export_get_visible(*, actor: User, export_id: int) -> Export:
    export = next((e for e in _visible(actor).filter(pk=export_id)), None)
    if export is None:
        raise ExportNotFound("No such export.")
    return export


def _visible(actor: User) -> QuerySet[Export]:
    exports = Export.objects.select_related("requested_by").prefetch_related(
        Prefetch("files", queryset=ExportFile.objects.order_by("name"))
    )
    return exports if is_officer(actor.role) else exports.filter(requested_by=actor)
