"""The admin's house rules, shared by every app's admin.py (STYLE.md: "the admin is read-mostly").

Clinical, governance and ledger records are read-only in the admin: nothing changes behind a service. A change
an administrator may make is an admin action (or, for a new record, the add form) that calls the service, so
the change is validated and audited exactly as it is from the portal. A service's refusal is shown as an error
message; nothing half-happens. The User admin lives in governance/admin.py, beside the role service it calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import User


class ReadOnlyModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Lists and detail pages only; changes go through the admin actions, which call services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Any]], HttpResponse | None]  # type: ignore[type-arg]


def service_action(
    *, name: str, description: str, form_class: type[forms.Form], apply: Callable[[User, Any, dict[str, Any]], bool]
) -> AdminAction:
    """An admin action that first asks for its parameters (`form_class`) on an intermediate page, then calls
    `apply(actor, obj, cleaned_data)`, a thin wrapper round a service, for each selected object. `apply`
    returns whether anything changed."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Model]) -> HttpResponse | None:  # type: ignore[type-arg]
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            actor = request.user
            assert isinstance(actor, User)
            changed = 0
            for obj in queryset:
                try:
                    changed += int(apply(actor, obj, form.cleaned_data))
                except ApplicationError as exc:
                    modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            modeladmin.message_user(request, f"{description}: {changed} changed.", messages.SUCCESS)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "form": form,
            "queryset": queryset,
            "action_name": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/service_action.html", context)

    action.__name__ = name
    return admin.action(description=description)(action)
