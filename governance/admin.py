"""Read-only admin for governance records, and the User admin, whose role changes go through `user_role_set`.

The User admin lives here rather than in clinaiops.core because the role service writes the ledger, which sits
above the kernel (DESIGN §9). What decides access (role, superuser, staff, groups, permissions) is read-only on
the change form: a role changes only through the audited action; superusers are made with `createsuperuser`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from clinaiops.core.admin import ReadOnlyModelAdmin, service_action
from clinaiops.core.models import User
from governance.models import AIStop, ApprovalPolicy, ModelSignoff, Signature
from governance.services import ASSIGNABLE_ROLES, user_role_set


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(role.value, role.label) for role in ASSIGNABLE_ROLES])


def _role_set(actor: User, user: User, data: dict[str, Any]) -> bool:
    return user_role_set(actor=actor, user=user, role=data["role"])


@admin.register(User)
class ClinAIOpsUserAdmin(UserAdmin):  # type: ignore[type-arg]
    list_display = ("username", "role", "printed_name", "is_active")
    list_filter = ("role", "is_active")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Role", {"fields": ("role", "printed_name")}))
    actions = [service_action(name="role_set", description="Set the role", form_class=RoleForm, apply=_role_set)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("role", "is_superuser", "is_staff", "groups", "user_permissions", "last_login", "date_joined")


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyModelAdmin):
    """New versions are signed by a clinical safety officer on the portal's policy page."""

    list_display = ("version", "created_at", "created_by")


@admin.register(Signature)
class SignatureAdmin(ReadOnlyModelAdmin):
    list_display = ("printed_name", "meaning", "record_type", "record_id", "signed_at")
    list_filter = ("meaning", "record_type")


@admin.register(ModelSignoff)
class ModelSignoffAdmin(ReadOnlyModelAdmin):
    list_display = ("model_version", "role", "signer", "signed_at")


@admin.register(AIStop)
class AIStopAdmin(ReadOnlyModelAdmin):
    """Stops and resumes are e-signed by a clinical safety officer on the portal's stop-switch page."""

    list_display = ("scope", "care_team", "stopped_by", "stopped_at", "resumed_by", "resumed_at")
    list_filter = ("scope",)
    exclude = ("reason", "resume_reason")
