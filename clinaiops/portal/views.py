"""Clinician portal: server-rendered, no CDN, works offline. Views stay thin: selectors and services do the
work; every staff read of a patient record is audited."""

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

from clinaiops.care.models import Alert, RegimenChange
from clinaiops.care.selectors import alert_list_visible, patient_get_visible, patient_list_visible, readings_recent
from clinaiops.care.services import alert_acknowledge
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import REGIMEN_LADDER
from clinaiops.loops.selectors import recommendation_get_visible, recommendation_list_visible, review_queue
from clinaiops.loops.services import evaluate_on_demand, review_decide
from clinaiops.portal.access import patient_record_viewed, roles_required
from clinaiops.portal.charts import BPPoint, bp_trend_svg, factor_bars_svg, probability_bars_svg
from clinaiops.portal.forms import ReviewDecisionForm
from governance.audit.selectors import audit_event_list
from governance.audit.verify import ledger_verify
from governance.policy import REASON_SHORT, REASON_TEXT
from governance.selectors import autonomy_bounds_history
from inference.selectors import model_version_list, serving_pointer_list

STAFF = (Role.CLINICIAN, Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = _user(request).role
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
    items = review_queue(user=_user(request))
    page = Paginator(items, 25).get_page(request.GET.get("page"))
    rows = [(rec, [REASON_SHORT.get(code, code) for code in rec.tier_reasons]) for rec in page.object_list]
    return render(request, "portal/queue.html", {"page": page, "rows": rows, "nav": "queue"})


@roles_required(Role.CLINICIAN)
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    try:
        rec = recommendation_get_visible(user=user, recommendation_id=pk)
    except NotFound as exc:
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
    patients = patient_list_visible(user=_user(request)).order_by("code")
    page = Paginator(patients, 50).get_page(request.GET.get("page"))
    return render(request, "portal/patients.html", {"page": page, "nav": "patients"})


@roles_required(Role.CLINICIAN)
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    try:
        patient = patient_get_visible(user=user, patient_id=pk)
    except NotFound as exc:
        raise Http404("No such patient.") from exc
    if request.method == "POST" and request.POST.get("action") == "evaluate":
        rec = evaluate_on_demand(actor=user, patient=patient)
        if rec is None:
            messages.info(request, "No recommendation: no model is serving or there are no recent readings.")
        else:
            messages.success(request, f"Evaluated: {rec.action} ({rec.tier}).")
        return redirect("portal:patient", pk=pk)
    patient_record_viewed(actor=user, patient_id=patient.pk, what="patient_detail")
    context = {
        "patient": patient,
        "trend_svg": mark_safe(_trend_chart(patient.pk, days=60)),  # noqa: S308
        "recommendations": recommendation_list_visible(user=user).filter(patient=patient)[:10],
        "alerts": Alert.objects.filter(patient=patient).order_by("-opened_at")[:10],
        "bounds_history": autonomy_bounds_history(patient=patient)[:10],
        "changes": RegimenChange.objects.filter(patient=patient).order_by("-changed_at")[:10],
        "nav": "patients",
    }
    return render(request, "portal/patient.html", context)


@roles_required(Role.CLINICIAN)
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = alert_list_visible(user=_user(request))
    return render(request, "portal/alerts.html", {"alerts": alerts[:200], "nav": "alerts"})


@require_POST
@roles_required(Role.CLINICIAN)
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    alert = alert_list_visible(user=_user(request), status=None).filter(pk=pk).first()
    if alert is None:
        raise Http404("No such alert.")
    try:
        alert_acknowledge(alert=alert, actor=_user(request))
        messages.success(request, "Alert acknowledged.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("portal:alerts")


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def models(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/models.html",
        {"versions": model_version_list()[:50], "pointers": serving_pointer_list(), "nav": "models"},
    )


@roles_required(Role.COMPLIANCE_OFFICER, Role.SAFETY_OFFICER)
def audit(request: HttpRequest) -> HttpResponse:
    events = audit_event_list(
        object_type=request.GET.get("object_type") or None, object_id=request.GET.get("object_id") or None
    )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    verification = ledger_verify() if request.GET.get("verify") else None
    return render(request, "portal/audit.html", {"page": page, "verification": verification, "nav": "audit"})
