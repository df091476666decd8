"""The patient–clinician loop in the portal (issue 11): a patient's care plan (shared goals, notes, adaptive
follow-up) and the visit summary, as a printable page and a PDF, in a clinician's copy and a patient's copy.

Thin views: a form checks the shape, the service decides and audits (clinaiops.partnership.services), and a
refusal comes back as a field-level message with nothing stored. Every page of a patient's record is an audited
read. Under emergency access the care plan is read-only, as the service enforces.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from clinaiops.care.access import EmergencyAccessReadOnly, care_access_for, patient_record_viewed
from clinaiops.care.models import Patient
from clinaiops.care.selectors import patient_get_visible
from clinaiops.care.services import patient_target_set
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role, User
from clinaiops.partnership.models import GoalKind
from clinaiops.partnership.selectors import (
    followup_status,
    goal_progress_for,
    goals_active,
    notes_for_care_team,
)
from clinaiops.partnership.services import (
    MAX_NOTE_LENGTH,
    MAX_OVERRIDE_REASON,
    care_note_write,
    followup_override_clear,
    followup_override_set,
    followup_record,
    lifestyle_goal_end,
    lifestyle_goal_set,
)
from clinaiops.partnership.summary import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS, VisitSummary, visit_summary_build
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.charts_partnership import WeeklyPoint, progress_bar_svg, weekly_bp_svg
from clinaiops.portal.forms import TargetForm, form_errors_from
from compliance.rendering import html_pdf

COPIES = {"clinician": "Clinician's copy", "patient": "Patient's copy"}


class DateInput(forms.DateInput):
    input_type = "date"


class GoalForm(forms.Form):
    kind = forms.ChoiceField(choices=GoalKind.choices, label="Goal")
    target_value = forms.DecimalField(max_digits=7, decimal_places=1, label="Target")


class NoteForm(forms.Form):
    # The length limit is the service's; the form keeps the text so nothing typed is lost on a refusal.
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label="Note", max_length=MAX_NOTE_LENGTH)
    visible_to_patient = forms.BooleanField(required=False, label="The patient can read this note")


class FollowUpOverrideForm(forms.Form):
    due_on = forms.DateField(widget=DateInput, label="Next follow-up on")
    reason = forms.CharField(max_length=MAX_OVERRIDE_REASON, label="Reason for the change")


class FollowUpDoneForm(forms.Form):
    held_on = forms.DateField(widget=DateInput, label="Follow-up held on")


def _patient_or_404(user: User, pk: int) -> Patient:
    try:
        return patient_get_visible(user=user, patient_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="patient", object_id=pk, reason="outside_care_team")
        raise Http404("No such patient.") from exc


def _goal_rows(patient: Patient) -> list[dict[str, Any]]:
    rows = []
    for progress in goal_progress_for(patient):
        bar = progress_bar_svg(progress.fraction, label=f"{progress.label}: {progress.current}")
        rows.append({"progress": progress, "bar": mark_safe(bar)})  # noqa: S308 - svg.py escapes every label
    return rows


def _post(request: HttpRequest, user: User, patient: Patient, action: str, form: forms.Form) -> HttpResponse | None:
    """Run the service for a valid form; a redirect on success, None (the form now carries the errors) otherwise."""
    data = form.cleaned_data
    try:
        if action == "goal":
            goal = lifestyle_goal_set(actor=user, patient=patient, kind=data["kind"], target_value=data["target_value"])
            messages.success(request, f"Goal set: {goal.get_kind_display()}.")
        elif action == "target":
            changed = patient_target_set(actor=user, patient=patient, **data)
            messages.success(request, "BP target changed." if changed else "The target was already that.")
        elif action == "note":
            note = care_note_write(actor=user, patient=patient, **data)
            messages.success(
                request, "Note saved; the patient can read it." if note.visible_to_patient else "Private note saved."
            )
        elif action == "followup_override":
            followup_override_set(actor=user, patient=patient, **data)
            messages.success(request, "Follow-up date changed.")
        elif action == "followup_done":
            followup_record(actor=user, patient=patient, **data)
            messages.success(request, "Follow-up recorded; the next date is counted from it.")
    except EmergencyAccessReadOnly as exc:
        messages.error(request, exc.message)
        return redirect("portal:care-plan", pk=patient.pk)
    except ApplicationError as exc:
        form_errors_from(form, exc)
        return None
    return redirect("portal:care-plan", pk=patient.pk)


@roles_required(Role.CLINICIAN)
def care_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """A patient's shared goals, notes and follow-up, with the forms to change them (care team only)."""
    user = request_user(request)
    patient = _patient_or_404(user, pk)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = request.POST if request.method == "POST" else None
    bound: dict[str, forms.Form] = {
        "goal": GoalForm(data if action == "goal" else None),
        "target": TargetForm(
            data if action == "target" else None,
            initial={"target_sbp": patient.target_sbp, "target_dbp": patient.target_dbp},
        ),
        "note": NoteForm(data if action == "note" else None),
        "followup_override": FollowUpOverrideForm(data if action == "followup_override" else None),
        "followup_done": FollowUpDoneForm(
            data if action == "followup_done" else None, initial={"held_on": timezone.localdate()}
        ),
    }
    status = 200
    if request.method == "POST":
        if action in bound:
            form = bound[action]
            if form.is_valid() and (response := _post(request, user, patient, action, form)) is not None:
                return response
            status = 400
        elif action in ("goal_end", "followup_clear"):
            try:
                if action == "goal_end":
                    lifestyle_goal_end(actor=user, patient=patient, goal_id=int(request.POST.get("goal_id") or 0))
                    messages.success(request, "Goal ended.")
                else:
                    cleared = followup_override_clear(actor=user, patient=patient)
                    messages.success(request, "Back to the rule's date." if cleared else "There was no override.")
            except (ApplicationError, ValueError) as exc:
                messages.error(request, exc.message if isinstance(exc, ApplicationError) else "No such goal.")
            return redirect("portal:care-plan", pk=patient.pk)
        else:
            messages.error(request, "That action is not available here.")
            return redirect("portal:care-plan", pk=patient.pk)
    patient_record_viewed(actor=user, patient_id=patient.pk, what="care_plan")
    context = {
        "patient": patient,
        "access": care_access_for(user=user, patient=patient),
        "goal_rows": _goal_rows(patient),
        "goals": goals_active(patient),
        "notes": list(notes_for_care_team(patient)[:50]),
        "followup": followup_status(patient),
        "forms": bound,
        "nav": "patients",
    }
    return render(request, "portal/partnership/care_plan.html", context, status=status)


def _summary_request(request: HttpRequest) -> tuple[str, int] | str:
    """(copy, days) from the query, or the message saying what is wrong with it."""
    copy = request.GET.get("copy", "clinician")
    if copy not in COPIES:
        return "Choose the clinician's or the patient's copy."
    raw = request.GET.get("days", str(DEFAULT_DAYS))
    if not raw.isdigit() or not MIN_DAYS <= int(raw) <= MAX_DAYS:
        return f"The period must be {MIN_DAYS} to {MAX_DAYS} days."
    return copy, int(raw)


def _summary_context(summary: VisitSummary, *, copy: str, user: User, pdf: bool) -> dict[str, Any]:
    weeks = [WeeklyPoint(w.start, w.mean_sbp, w.mean_dbp) for w in summary.bp.weeks]
    chart = weekly_bp_svg(weeks, target_sbp=summary.patient.target_sbp, target_dbp=summary.patient.target_dbp)
    return {
        "summary": summary,
        "patient": summary.patient,
        "copy": copy,
        "copy_label": COPIES[copy],
        "chart": mark_safe(chart),  # noqa: S308 - svg.py escapes every label
        "printed_at": timezone.now(),
        "printed_by": user.signature_name,
        "pdf": pdf,
    }


def _summary_refused(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "portal/partnership/summary_refused.html", {"message": message}, status=400)


def _summary_for(request: HttpRequest, pk: int, *, pdf: bool) -> HttpResponse | tuple[Patient, str, dict[str, Any]]:
    """The patient, the copy and the template context of a visit summary, or the refusal to show."""
    user = request_user(request)
    patient = _patient_or_404(user, pk)
    wanted = _summary_request(request)
    if isinstance(wanted, str):
        return _summary_refused(request, wanted)
    copy, days = wanted
    patient_record_viewed(actor=user, patient_id=patient.pk, what=f"visit_summary_{'pdf_' if pdf else ''}{copy}")
    summary = visit_summary_build(patient=patient, days=days)
    return patient, copy, _summary_context(summary, copy=copy, user=user, pdf=pdf)


@roles_required(Role.CLINICIAN)
def visit_summary(request: HttpRequest, pk: int) -> HttpResponse:
    """The printable visit summary: a standalone page with a header and the date, and no editing forms."""
    found = _summary_for(request, pk, pdf=False)
    if isinstance(found, HttpResponse):
        return found
    _, _, context = found
    return render(request, "portal/partnership/visit_summary.html", context)


@roles_required(Role.CLINICIAN)
def visit_summary_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The same summary as a PDF (WeasyPrint, through compliance's one helper)."""
    found = _summary_for(request, pk, pdf=True)
    if isinstance(found, HttpResponse):
        return found
    patient, copy, context = found
    response = HttpResponse(
        html_pdf(render_to_string("portal/partnership/visit_summary.html", context)), content_type="application/pdf"
    )
    name = f"visit-summary-{patient.code}-{copy}-{timezone.localdate():%Y-%m-%d}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
