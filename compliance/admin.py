"""Exports are made and recorded by compliance.services only (every one is audited): the admin reads."""

from __future__ import annotations

from django.contrib import admin

from clinaiops.core.admin import ReadOnlyModelAdmin
from compliance.models import Export, ExportDisclosure, ExportFile


@admin.register(Export)
class ExportAdmin(ReadOnlyModelAdmin):
    list_display = ("pk", "kind", "status", "progress", "requested_by", "purpose", "delivery", "created_at")
    list_filter = ("kind", "status", "delivery")


@admin.register(ExportFile)
class ExportFileAdmin(ReadOnlyModelAdmin):
    list_display = ("export", "name", "format", "size", "sha256")


@admin.register(ExportDisclosure)
class ExportDisclosureAdmin(ReadOnlyModelAdmin):
    list_display = ("export", "patient", "audit_seq")
