from django.contrib import admin

from clinaiops.care.models import Alert, CareTeam, Patient


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name",)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "care_team", "current_step", "autonomy_paused")
    readonly_fields = ("current_step", "autonomy_paused")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("patient", "kind", "priority", "status", "opened_at")
    readonly_fields = ("patient", "kind", "priority", "status", "reading", "opened_at", "acknowledged_by")
