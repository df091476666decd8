"""The approval policy page: everyone on staff reads it; a clinical safety officer changes it (issue 11: with a
reason, a diff against the version in force, an impact preview over the last 14 days' proposals and, when the
policy says so, a second signer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clinaiops.core.errors import ApplicationError, NotFound, PermissionRefused
from clinaiops.core.models import Role
from clinaiops.loops.policy_impact import PolicyImpact, policy_impact
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.forms import form_errors_from
from clinaiops.portal.forms_governance import PolicyChangeForm, PolicyCountersignForm, PolicyWithdrawForm
from clinaiops.portal.forms_stop import AIResumeForm, AIStopForm
from governance.models import ApprovalPolicy, PolicyChange, PolicyChangeStatus
from governance.selectors import approval_policy_history
from governance.services import (
    POLICY_FIELDS,
    SignatureRefused,
    approval_policy_change_countersign,
    approval_policy_change_submit,
    approval_policy_change_withdraw,
    approval_policy_current,
    approval_policy_values_check,
)
from governance.stop import ai_resume, ai_stop, ai_stop_exists, ai_stop_history

# --- Reads: the diff and the impact preview ---------------------------------------------------------------


@dataclass(frozen=True)
class SettingChange:
    label: str
    before: object
    after: object


def _labels() -> dict[str, str]:
    form = PolicyChangeForm()
    return {name: str(form.fields[name].label) for name in [*POLICY_FIELDS, "requires_second_signer"]}


def _shown(name: str, value: object) -> object:
    if name == "requires_second_signer":
        return "yes" if value else "no"
    return value


def policy_diff(before: ApprovalPolicy, after_values: dict[str, Any], after_flag: bool) -> list[SettingChange]:
    """The settings that differ between `before` and the proposed values, as words."""
    labels = _labels()
    changes = [
        SettingChange(labels[name], getattr(before, name), after_values[name])
        for name in POLICY_FIELDS
        if getattr(before, name) != after_values[name]
    ]
    if before.requires_second_signer != after_flag:
        changes.append(
            SettingChange(
                labels["requires_second_signer"],
                _shown("requires_second_signer", before.requires_second_signer),
                _shown("requires_second_signer", after_flag),
            )
        )
    return changes


@dataclass(frozen=True)
class PendingView:
    change: PolicyChange
    diff: list[SettingChange]
    impact: PolicyImpact


def _pending(current: ApprovalPolicy) -> PendingView | None:
    change = (
        PolicyChange.objects.filter(status=PolicyChangeStatus.PENDING)
        .select_related("proposed_by", "proposer_signature", "base_policy")
        .first()
    )
    if change is None:
        return None
    proposed = ApprovalPolicy(version=change.base_policy.version + 1, **change.values)
    return PendingView(
        change=change,
        diff=policy_diff(change.base_policy, change.values, change.requires_second_signer),
        impact=policy_impact(current, proposed),
    )


def _history_rows(history: list[ApprovalPolicy]) -> list[tuple[ApprovalPolicy, list[SettingChange]]]:
    """Each version with what it changed against the one before it (the oldest shown has nothing to compare)."""
    rows = []
    for index, version in enumerate(history):
        previous = history[index + 1] if index + 1 < len(history) else None
        diff = (
            []
            if previous is None
            else policy_diff(
                previous, {name: getattr(version, name) for name in POLICY_FIELDS}, version.requires_second_signer
            )
        )
        rows.append((version, diff))
    return rows


# --- Views -------------------------------------------------------------------------------------------------


def _policy_render(
    request: HttpRequest,
    *,
    form: PolicyChangeForm,
    preview: tuple[list[SettingChange], PolicyImpact] | None = None,
    countersign_form: PolicyCountersignForm | None = None,
    withdraw_form: PolicyWithdrawForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request_user(request)
    current = approval_policy_current()
    history = list(approval_policy_history().select_related("signature", "second_signature"))
    # One more than shown, so the oldest shown version has its diff too.
    previous_of_oldest = ApprovalPolicy.objects.filter(version__lt=history[-1].version).first() if history else None
    rows = _history_rows(history + ([previous_of_oldest] if previous_of_oldest else []))[: len(history)]
    pending = _pending(current)
    fields = [(form[name], getattr(current, name)) for name in POLICY_FIELDS]
    return render(
        request,
        "portal/policy.html",
        {
            "current": current,
            "history": rows,
            "form": form,
            "fields": fields,
            "preview": preview,
            "pending": pending,
            "countersign_form": countersign_form or PolicyCountersignForm(),
            "withdraw_form": withdraw_form or PolicyWithdrawForm(),
            "can_countersign": pending is not None
            and user.role == Role.SAFETY_OFFICER
            and pending.change.proposed_by_id != user.pk,
            "nav": "policy",
            "can_edit": user.role == Role.SAFETY_OFFICER,
        },
        status=status,
    )


def _range_errors_add(form: PolicyChangeForm, current: ApprovalPolicy) -> None:
    """A form refused for another field (the reason, say) still says which values are out of range, so the
    officer fixes everything at once."""
    numbers = {name: form.cleaned_data[name] for name in POLICY_FIELDS if name in form.cleaned_data}
    try:
        approval_policy_values_check(current=current, changes=numbers, requires_second_signer=None)
    except ApplicationError as exc:
        for name, problems in exc.fields.items():
            if name in POLICY_FIELDS:
                for problem in problems:
                    form.add_error(name, problem)


@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def policy(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    current = approval_policy_current()
    initial = {name: getattr(current, name) for name in POLICY_FIELDS}
    initial["requires_second_signer"] = current.requires_second_signer
    form = PolicyChangeForm(request.POST or None, initial=initial)
    if request.method != "POST":
        return _policy_render(request, form=form)
    if user.role != Role.SAFETY_OFFICER:
        access_denied_record(actor=user, object_type="approval_policy", object_id=current.pk, reason="wrong_role")
        raise PermissionDenied("Only a clinical safety officer can change the policy.")
    if not form.is_valid():
        _range_errors_add(form, current)
        return _policy_render(request, form=form, status=400)
    changes = {name: form.cleaned_data[name] for name in POLICY_FIELDS}
    flag = bool(form.cleaned_data["requires_second_signer"])
    if request.POST.get("intent") == "preview":
        try:
            values, flag = approval_policy_values_check(current=current, changes=changes, requires_second_signer=flag)
        except ApplicationError as exc:
            form_errors_from(form, exc)
            return _policy_render(request, form=form, status=400)
        proposed = ApprovalPolicy(version=current.version + 1, requires_second_signer=flag, **values)
        return _policy_render(
            request, form=form, preview=(policy_diff(current, values, flag), policy_impact(current, proposed))
        )
    if not form.cleaned_data["password"]:
        form.add_error("password", "Re-enter your password to sign.")
        return _policy_render(request, form=form, status=400)
    try:
        result = approval_policy_change_submit(
            actor=user, changes=changes, password=form.cleaned_data["password"],
            reason=form.cleaned_data["reason"], requires_second_signer=flag,
        )  # fmt: skip
    except SignatureRefused as exc:  # a wrong password or a locked account: said at the field
        form_errors_from(form, exc)
        return _policy_render(request, form=form, status=400)
    except PermissionRefused as exc:
        raise PermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        form_errors_from(form, exc)
        return _policy_render(request, form=form, status=400)
    if isinstance(result, PolicyChange):
        messages.success(
            request, "Change signed. It comes into force when a different clinical safety officer countersigns it."
        )
    else:
        messages.success(request, f"Approval policy v{result.version} signed and in force.")
    return redirect("portal:policy")


@require_POST
@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def policy_countersign(request: HttpRequest, pk: int) -> HttpResponse:
    """A second clinical safety officer countersigns a pending change (governance.services)."""
    form = PolicyCountersignForm(request.POST)
    if form.is_valid():
        try:
            policy = approval_policy_change_countersign(
                actor=request_user(request), change_id=pk, password=form.cleaned_data["password"]
            )
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except SignatureRefused as exc:  # a wrong password or a locked account: said at the field
            form_errors_from(form, exc)
        except PermissionRefused as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, f"Countersigned: approval policy v{policy.version} is in force.")
            return redirect("portal:policy")
    return _policy_render(request, form=PolicyChangeForm(), countersign_form=form, status=400)


@require_POST
@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def policy_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    form = PolicyWithdrawForm(request.POST)
    if form.is_valid():
        try:
            approval_policy_change_withdraw(
                actor=request_user(request), change_id=pk, password=form.cleaned_data["password"],
                reason=form.cleaned_data["reason"],
            )  # fmt: skip
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except SignatureRefused as exc:  # a wrong password or a locked account: said at the field
            form_errors_from(form, exc)
        except PermissionRefused as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "The pending policy change was withdrawn; the policy in force is unchanged.")
            return redirect("portal:policy")
    return _policy_render(request, form=PolicyChangeForm(), withdraw_form=form, status=400)


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
