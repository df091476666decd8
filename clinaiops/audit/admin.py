from django.contrib import admin

from clinaiops.audit.models import AuditEvent
from clinaiops.core.admin import ReadOnlyModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """Read-only: the ledger is append-only and only services append to it."""

    list_display = ("seq", "recorded_at", "actor", "actor_role", "action", "object_type", "object_id", "outcome")
    list_filter = ("action", "outcome", "actor_role")
