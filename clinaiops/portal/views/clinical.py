"""Clinician pages: the review queue, a recommendation with its e-signed decision, patients (trend, bounds,
autonomy, evaluate now), alerts and emergency access. Every staff read of a patient record is audited."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from clinaiops.care.models import Alert, Patient, RegimenChange
from clinaiops.care.selectors import (
    alert_list_visible,
    break_glass_active,
    patient_get_visible,
    patient_list_visible,
    readings_recent,
)
from clinaiops.care.services import alert_acknowledge, autonomy_resume, break_glass_open
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role
from clinaiops.core.regimen import REGIMEN_LADDER
from clinaiops.loops.selectors import recommendation_get_visible, recommendation_list_visible, review_queue
from clinaiops.loops.services import evaluate_on_demand, review_decide
from clinaiops.portal.access import access_denied_record, patient_record_viewed, request_user, roles_required
from clinaiops.portal.charts import BPPoint, bp_trend_svg, factor_bars_svg, probability_bars_svg
from clinaiops.portal.forms import BoundsForm, BreakGlassForm, ReviewDecisionForm, form_errors_from
from governance.policy import REASON_SHORT, REASON_TEXT, EffectiveBounds
from governance.selectors import autonomy_bounds_current, autonomy_bounds_history, effective_bounds
from governance.services import approval_policy_current, autonomy_bounds_set


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = request_user(request).role
    if role == Role.CLINICIAN:
        return redirect("portal:queue")
    if role in (Role.ML_ENGINEER, Role.SAFETY_OFFICER):
        return redirect("portal:models")
    if role == Role.COMPLIANCE_OFFICER:
        return redirect("portal:audit")
    return render(request, "portal/patient_home.html", status=403)


def _trend_chart(patient_id: int, *, days: int = 30) -> str:
    from clinaiops.care.models import Patient

    patient = Patient.objects.get(pk=patient_id)
    now = timezone.now()
    readings = readings_recent(patient=patient, end=now, window=timedelta(days=days))
    changes = RegimenChange.objects.filter(patient=patient, changed_at__gte=now - timedelta(days=days))
    return bp_trend_svg(
        [BPPoint(r.taken_at, r.systolic, r.diastolic, r.source) for r in readings],
        target_sbp=patient.target_sbp,
        target_dbp=patient.target_dbp,
        markers=[(c.changed_at, f"step {c.from_step}→{c.to_step}") for c in changes],
    )


@roles_required(Role.CLINICIAN)
def queue(request: HttpRequest) -> HttpResponse:
    items = review_queue(user=request_user(request))
    page = Paginator(items, 25).get_page(request.GET.get("page"))
    rows = [(rec, [REASON_SHORT.get(code, code) for code in rec.tier_reasons]) for rec in page.object_list]
    return render(request, "portal/queue.html", {"page": page, "rows": rows, "nav": "queue"})


@roles_required(Role.CLINICIAN)
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    try:
        rec = recommendation_get_visible(user=user, recommendation_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="recommendation", object_id=pk, reason="outside_care_team")
        raise Http404("No such recommendation.") from exc
    form = ReviewDecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review_decide(
                actor=user,
                recommendation=rec,
                outcome=form.cleaned_data["outcome"],
                to_step=form.cleaned_data.get("to_step"),
                reason=form.cleaned_data["reason"],
                password=form.cleaned_data["password"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            for name, problems in exc.fields.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        else:
            messages.success(request, f"Decision signed and delivered to patient {rec.patient.code}.")
            return redirect("portal:queue")
    patient_record_viewed(actor=user, patient_id=rec.patient_id, what="recommendation")
    context = {
        "rec": rec,
        "patient": rec.patient,
        "form": form,
        "trend_svg": mark_safe(_trend_chart(rec.patient_id)),  # noqa: S308 - charts escape every label
        "factors_svg": mark_safe(  # noqa: S308
            factor_bars_svg(
                [(f["label"], f["contribution"]) for f in rec.top_factors], width=900, title=f"Why {rec.action}"
            )
        ),
        "proba_svg": mark_safe(probability_bars_svg(rec.probabilities)),  # noqa: S308
        "tier_reasons": [REASON_TEXT.get(code, code) for code in rec.tier_reasons],
        "ladder": list(enumerate(REGIMEN_LADDER)),
        "nav": "queue",
    }
    return render(request, "portal/recommendation.html", context)


@roles_required(Role.CLINICIAN)
def patient_list(request: HttpRequest) -> HttpResponse:
    patients = patient_list_visible(user=request_user(request)).order_by("code")
    page = Paginator(patients, 50).get_page(request.GET.get("page"))
    return render(request, "portal/patients.html", {"page": page, "nav": "patients"})


@roles_required(Role.CLINICIAN)
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    try:
        patient = patient_get_visible(user=user, patient_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="patient", object_id=pk, reason="outside_care_team")
        raise Http404("No such patient.") from exc
    on_team = patient.care_team.members.filter(pk=user.pk).exists()
    bounds_form = BoundsForm(
        request.POST if request.POST.get("action") == "bounds" else None, initial=_bounds_initial(patient)
    )
    if request.method == "POST" and request.POST.get("action") == "bounds" and bounds_form.is_valid():
        data = bounds_form.cleaned_data
        try:
            autonomy_bounds_set(
                actor=user,
                patient=patient,
                requested=EffectiveBounds(
                    max_step_change=data["max_step_change"], min_step=data["min_step"], max_step=data["max_step"],
                    min_confidence=data["min_confidence"], min_readings=data["min_readings"],
                    autonomy_enabled=data["autonomy_enabled"],
                ),
                password=data["password"],
            )  # fmt: skip
        except ApplicationError as exc:
            form_errors_from(bounds_form, exc)
        else:
            messages.success(request, "New autonomy bounds signed and in force.")
            return redirect("portal:patient", pk=pk)
    if request.method == "POST" and request.POST.get("action") == "resume":
        try:
            autonomy_resume(actor=user, patient=patient)
            messages.success(request, "Autonomy resumed.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("portal:patient", pk=pk)
    if request.method == "POST" and request.POST.get("action") == "evaluate":
        rec = evaluate_on_demand(actor=user, patient=patient)
        if rec is None:
            messages.info(request, "No recommendation: no model is serving or there are no recent readings.")
        else:
            messages.success(request, f"Evaluated: {rec.action} ({rec.tier}).")
        return redirect("portal:patient", pk=pk)
    grant = None if on_team else break_glass_active(user=user, patient=patient)
    patient_record_viewed(actor=user, patient_id=patient.pk, what="patient_detail")
    policy = approval_policy_current()
    context = {
        "patient": patient,
        "on_team": on_team,
        "grant": grant,
        "bounds_form": bounds_form,
        "effective": effective_bounds(patient=patient, policy=policy),
        "policy": policy,
        "trend_svg": mark_safe(_trend_chart(patient.pk, days=60)),  # noqa: S308
        "recommendations": recommendation_list_visible(user=user).filter(patient=patient)[:10],
        "alerts": Alert.objects.filter(patient=patient).order_by("-opened_at")[:10],
        "bounds_history": autonomy_bounds_history(patient=patient)[:10],
        "changes": RegimenChange.objects.filter(patient=patient).order_by("-changed_at")[:10],
        "nav": "patients",
    }
    return render(request, "portal/patient.html", context)


@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = alert_list_visible(user=request_user(request))
    return render(request, "portal/alerts.html", {"alerts": alerts[:200], "nav": "alerts"})


@require_POST
@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    alert = alert_list_visible(user=request_user(request), status=None).filter(pk=pk).first()
    if alert is None:
        raise Http404("No such alert.")
    try:
        alert_acknowledge(alert=alert, actor=request_user(request))
        messages.success(request, "Alert acknowledged.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:alerts")


def _bounds_initial(patient: Patient) -> dict[str, object]:
    current = autonomy_bounds_current(patient=patient)
    if current is not None:
        names = ("autonomy_enabled", "max_step_change", "min_step", "max_step", "min_confidence", "min_readings")
        return {name: getattr(current, name) for name in names}
    policy = approval_policy_current()
    return {
        "autonomy_enabled": True, "max_step_change": policy.max_step_change, "min_step": policy.min_step,
        "max_step": policy.max_step, "min_confidence": policy.min_confidence, "min_readings": policy.min_readings,
    }  # fmt: skip


@roles_required(Role.CLINICIAN)
def break_glass(request: HttpRequest) -> HttpResponse:
    """Emergency access to a patient outside your care teams: a typed reason, 60 minutes, audited, and the
    clinical safety officer is alerted."""
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grant = break_glass_open(
                actor=request_user(request),
                patient_code=form.cleaned_data["patient_code"],
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            form_errors_from(form, exc)
        else:
            messages.info(request, f"Emergency access to {grant.patient.code} until {grant.expires_at:%H:%M} UTC.")
            return redirect("portal:patient", pk=grant.patient_id)
    return render(request, "portal/break_glass.html", {"form": form, "nav": "patients"})
