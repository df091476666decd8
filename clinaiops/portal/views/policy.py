"""The approval policy page: everyone on staff reads it; a clinical safety officer signs new versions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.forms import PolicyForm, form_errors_from
from clinaiops.portal.forms_stop import AIResumeForm, AIStopForm
from governance.selectors import approval_policy_history
from governance.services import POLICY_FIELDS, approval_policy_current, approval_policy_revise
from governance.stop import ai_resume, ai_stop, ai_stop_exists, ai_stop_history


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
    history = approval_policy_history()
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


# --- The stop switch (issue 10; EU AI Act art. 14): a clinical safety officer stops or resumes the AI ----------


@roles_required(Role.SAFETY_OFFICER)
def ai_stop_page(request: HttpRequest) -> HttpResponse:
    """Stop the AI for everyone or one clinic (e-signed), and the history of stops with their resumes."""
    user = request_user(request)
    form = AIStopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            stop = ai_stop(
                actor=user,
                password=form.cleaned_data["password"],
                scope=form.cleaned_data["scope"],
                care_team=form.cleaned_data["care_team"],
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            form_errors_from(form, exc)
        else:
            where = "everyone" if stop.care_team is None else f"the clinic {stop.care_team.name}"
            messages.success(request, f"AI stopped for {where}: {stop.stop_signature.manifestation}.")
            return redirect("portal:ai-stop")
    return _ai_stop_render(request, form=form, resume_form=AIResumeForm(), resume_errors_for=None)


@require_POST
@roles_required(Role.SAFETY_OFFICER)
def ai_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    resume_form = AIResumeForm(request.POST)
    if resume_form.is_valid():
        try:
            ai_resume(
                actor=user,
                password=resume_form.cleaned_data["password"],
                stop_id=pk,
                reason=resume_form.cleaned_data["reason"],
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except ApplicationError as exc:
            form_errors_from(resume_form, exc)
        else:
            messages.success(request, "AI resumed: evaluations in that scope may deliver within bounds again.")
            return redirect("portal:ai-stop")
    elif not ai_stop_exists(stop_id=pk):
        raise Http404("No such stop.")
    return _ai_stop_render(request, form=AIStopForm(), resume_form=resume_form, resume_errors_for=pk)


def _ai_stop_render(
    request: HttpRequest, *, form: AIStopForm, resume_form: AIResumeForm, resume_errors_for: int | None
) -> HttpResponse:
    return render(
        request,
        "portal/ai_stop.html",
        {
            "form": form,
            "resume_form": resume_form,
            "resume_errors_for": resume_errors_for,
            "history": ai_stop_history(),
            "nav": "ai-stop",
        },
    )
