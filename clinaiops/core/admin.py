from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from clinaiops.core.models import User


@admin.register(User)
class ClinAIOpsUserAdmin(UserAdmin):  # type: ignore[type-arg]
    list_display = ("username", "role", "printed_name", "is_active")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Role", {"fields": ("role", "printed_name")}))
