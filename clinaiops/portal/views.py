"""Clinician portal: server-rendered, no CDN, works offline. Views stay thin: selectors and services do the
work; every staff read of a patient record is audited."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from clinaiops.audit.models import AuditAction
from clinaiops.audit.selectors import audit_event_list
from clinaiops.audit.services import audit_record
from clinaiops.audit.verify import ledger_verify
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
from clinaiops.core.models import Role, User
from clinaiops.core.regimen import REGIMEN_LADDER
from clinaiops.loops.selectors import recommendation_get_visible, recommendation_list_visible, review_queue
from clinaiops.loops.services import evaluate_on_demand, review_decide
from clinaiops.portal.access import access_denied_record, patient_record_viewed, roles_required
from clinaiops.portal.charts import BPPoint, bp_trend_svg, factor_bars_svg, probability_bars_svg
from clinaiops.portal.forms import BoundsForm, BreakGlassForm, PolicyForm, ReviewDecisionForm
from governance.models import ApprovalPolicy
from governance.policy import REASON_SHORT, REASON_TEXT, EffectiveBounds
from governance.selectors import access_accounting, autonomy_bounds_current, autonomy_bounds_history, effective_bounds
from governance.services import POLICY_FIELDS, approval_policy_current, approval_policy_revise, autonomy_bounds_set
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
    patients = patient_list_visible(user=_user(request)).order_by("code")
    page = Paginator(patients, 50).get_page(request.GET.get("page"))
    return render(request, "portal/patients.html", {"page": page, "nav": "patients"})


@roles_required(Role.CLINICIAN)
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
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
            _form_errors(bounds_form, exc)
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
    alerts = alert_list_visible(user=_user(request))
    return render(request, "portal/alerts.html", {"alerts": alerts[:200], "nav": "alerts"})


@require_POST
@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
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


def _form_errors(form: forms.Form, exc: ApplicationError) -> None:
    form.add_error(None, exc.message)
    for name, problems in exc.fields.items():
        for problem in problems:
            form.add_error(name if name in form.fields else None, problem)


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
                actor=_user(request), patient_code=form.cleaned_data["patient_code"], reason=form.cleaned_data["reason"]
            )
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            messages.info(request, f"Emergency access to {grant.patient.code} until {grant.expires_at:%H:%M} UTC.")
            return redirect("portal:patient", pk=grant.patient_id)
    return render(request, "portal/break_glass.html", {"form": form, "nav": "patients"})


@roles_required(Role.SAFETY_OFFICER, Role.ML_ENGINEER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def policy(request: HttpRequest) -> HttpResponse:
    user = _user(request)
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
                _form_errors(form, exc)
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


@roles_required(Role.COMPLIANCE_OFFICER)
def accounting(request: HttpRequest) -> HttpResponse:
    """A patient's accounting of access and disclosure, for the compliance office."""
    user = _user(request)
    code = (request.GET.get("code") or "").strip().upper()
    patient = Patient.objects.filter(code=code).first() if code else None
    entries = []
    if patient is not None:
        with transaction.atomic():
            audit_record(
                action=AuditAction.PATIENT_RECORD_VIEWED, object_type="patient", object_id=patient.pk, actor=user,
                payload={"view": "access_accounting", "purpose": "compliance_review"},
            )  # fmt: skip
        entries = access_accounting(patient=patient)
    elif code:
        messages.error(request, "No patient has that code.")
    return render(
        request, "portal/accounting.html", {"patient": patient, "entries": entries, "code": code, "nav": "accounting"}
    )


@roles_required(Role.ML_ENGINEER, Role.SAFETY_OFFICER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model version's gates, manifest check, sign-offs and lineage: what a safety officer reads before
    signing it off (`manage.py signoff`) and what an auditor reads afterwards."""
    from governance.signoffs import model_signoff_list, model_signoff_verify, model_signoffs_missing
    from inference.gates import gate_summary
    from inference.manifest import manifest_verify
    from inference.selectors import serving_history

    version = model_version_list().filter(pk=pk).first()
    if version is None:
        raise Http404("No such model version.")
    gates = [
        {"name": name, "hard": gate["hard"], "status": gate["status"], "summary": gate_summary(name, gate)}
        for name, gate in version.gates.items()
    ]
    failures = [f for gate in version.gates.values() if gate["hard"] for f in gate.get("failures", [])]
    findings = [r for gate in version.gates.values() for r in gate.get("review_reasons", [])]
    signoffs = [(signoff, model_signoff_verify(signoff)) for signoff in model_signoff_list(version=version)]
    context = {
        "version": version,
        "run": version.training_run,
        "snapshot": version.training_run.snapshot,
        "gates": gates,
        "failures": failures,
        "findings": findings,
        "manifest": manifest_verify(version),
        "signoffs": signoffs,
        "missing": model_signoffs_missing(version=version),
        "history": serving_history(version=version)[:50],
        "nav": "models",
    }
    return render(request, "portal/model.html", context)
