"""The approval policy page: everyone on staff reads it; a clinical safety officer signs new versions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from clinaiops.core.errors import ApplicationError
from clinaiops.core.models import Role
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.forms import PolicyForm, form_errors_from
from governance.models import ApprovalPolicy
from governance.services import POLICY_FIELDS, approval_policy_current, approval_policy_revise


@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def policy(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    current = approval_policy_current()
    form = PolicyForm(request.POST or None, initial={name: getattr(current, name) for name in POLICY_FIELDS})
    if request.method == "POST":
        if user.role != Role.SAFETY_OFFICER:
            access_denied_record(actor=user, object_type="approval_policy", object_id=current.pk, reason="wrong_role")
            raise PermissionDenied("Only a clinical safety officer can change the policy.")
        if form.is_valid():
            changes = {name: form.cleaned_data[name] for name in POLICY_FIELDS}
            try:
                new = approval_policy_revise(actor=user, changes=changes, password=form.cleaned_data["password"])
            except ApplicationError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Approval policy v{new.version} signed and in force.")
                return redirect("portal:policy")
    history = ApprovalPolicy.objects.select_related("signature").order_by("-version")[:20]
    fields = [(form[name], getattr(current, name)) for name in POLICY_FIELDS]
    return render(
        request,
        "portal/policy.html",
        {
            "current": current,
            "history": history,
            "form": form,
            "fields": fields,
            "nav": "policy",
            "can_edit": user.role == Role.SAFETY_OFFICER,
        },
    )
