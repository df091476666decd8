"""Clinician pages: the review queue, a recommendation with its e-signed decision, patients (trend, bounds,
target, autonomy, evaluate now), alerts and emergency access. Every staff read of a patient record is audited.

Under emergency (break-glass) access every page of the patient carries the banner, and the pages offer only
what the grant allows (clinaiops.care.access): reading, and acknowledging the patient's safety alerts.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from clinaiops.care.access import EmergencyAccessReadOnly, care_access_for, patient_record_viewed
from clinaiops.care.models import AlertPriority, AlertStatus, Patient
from clinaiops.care.selectors import (
    alert_list_for_patient,
    patient_get_visible,
    patient_list_visible,
    patient_search_visible,
    readings_recent,
    regimen_changes_for,
)
from clinaiops.care.services import (
    autonomy_resume,
    break_glass_open,
    patient_search_record,
    patient_target_set,
)
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role, User
from clinaiops.loops.models import Recommendation, RecommendationStatus
from clinaiops.loops.selectors import (
    recommendation_get_visible,
    recommendation_list_for_patient,
    worklist_next_after,
)
from clinaiops.loops.services.evaluation import evaluate_on_demand
from clinaiops.loops.services.review import review_decide, review_pending_require
from clinaiops.partnership.selectors import care_plan_panel
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.charts import BPPoint, BPThresholds, bp_trend_svg, factor_bars_svg, probability_bars_svg
from clinaiops.portal.decision_screen import bp_points, factor_rows, patient_context, reading_rows, series_counts
from clinaiops.portal.forms import BoundsForm, BreakGlassForm, ReviewDecisionForm, TargetForm, form_errors_from
from clinaiops.portal.views.worklist import SIGNED_SESSION_KEY
from governance.models import ApprovalPolicy
from governance.policy import REASON_TEXT, EffectiveBounds, bounds_of
from governance.selectors import patient_bounds, signature_attempts_left
from governance.services import approval_policy_current, autonomy_bounds_set

# The phone rendering of a chart: about the width of a 390 px screen's card, so its text is drawn near 1:1.
NARROW_CHART_WIDTH = 340
_SKIPPED = {
    "no_model_serving": "No recommendation: no model is serving.",
    "no_recent_readings": "No recommendation: the patient has no readings in the last 14 days.",
}


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


def _thresholds(policy: ApprovalPolicy) -> BPThresholds:
    return BPThresholds(
        crisis_sbp=policy.crisis_sbp,
        crisis_dbp=policy.crisis_dbp,
        hypotension_sbp=policy.hypotension_sbp,
        hypotension_dbp=policy.hypotension_dbp,
    )


def _trend_svgs(
    patient: Patient, policy: ApprovalPolicy, points: list[BPPoint], *, proposal: tuple[datetime, str] | None = None
) -> dict[str, SafeString]:
    """The BP trend with the patient's targets, the policy's safety lines, the regimen changes and the proposal, in
    two renderings: wide, and narrow for a phone, where portal.css shows it instead so its text stays readable."""
    since = min((p.taken_at for p in points), default=timezone.now())
    markers = [
        (c.changed_at, f"step {c.from_step}→{c.to_step}") for c in regimen_changes_for(patient=patient, since=since)
    ]
    drawn = {
        name: bp_trend_svg(
            points,
            target_sbp=patient.target_sbp,
            target_dbp=patient.target_dbp,
            thresholds=_thresholds(policy),
            markers=markers,
            proposal=proposal,
            width=width,
            height=height,
        )
        for name, width, height in (("trend_svg", 720, 260), ("trend_narrow_svg", NARROW_CHART_WIDTH, 320))
    }
    return {name: mark_safe(chart) for name, chart in drawn.items()}  # noqa: S308 - charts escape every label


def _trend_context(patient: Patient, policy: ApprovalPolicy, *, days: int) -> dict[str, Any]:
    """The BP card of the last `days` days (portal/_bp_chart.html): both renderings, the series and the table."""
    now = timezone.now()
    readings = list(readings_recent(patient=patient, end=now, window=timedelta(days=days)))
    return {
        **_trend_svgs(patient, policy, bp_points(readings)),
        "series": series_counts(readings),
        "readings": reading_rows(readings, patient=patient, policy=policy),
        "last_reading_at": readings[-1].taken_at if readings else None,
        "now": now,
    }


def _review_post(
    request: HttpRequest, user: User, form: ReviewDecisionForm, rec: Recommendation
) -> HttpResponse | None:
    """Handle a decision POST. A decided (or replaced) recommendation says so, whatever the form holds, instead
    of re-rendering a page with no form on it."""
    try:
        review_pending_require(recommendation=rec)
        if not form.is_valid():
            return None
        review_decide(
            actor=user,
            recommendation=rec,
            outcome=form.cleaned_data["outcome"],
            to_step=form.cleaned_data.get("to_step"),
            reason=form.cleaned_data["reason"],
            password=form.cleaned_data["password"],
        )
    except ApplicationError as exc:
        if rec.status == RecommendationStatus.PENDING_REVIEW and exc.fields:
            form_errors_from(form, exc)
            return None
        messages.error(request, exc.message)
        return redirect("portal:recommendation", pk=rec.pk)
    messages.success(request, f"Decision signed and delivered to patient {rec.patient.code}.")
    # The worklist offers the next item after this one (portal.views.worklist.queue, loops.selectors).
    request.session[SIGNED_SESSION_KEY] = rec.pk
    return redirect("portal:queue")


@roles_required(Role.CLINICIAN)
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The decision screen: the proposal with the patient's context (issue 11), and the e-signed decision."""
    user = request_user(request)
    try:
        rec = recommendation_get_visible(user=user, recommendation_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="recommendation", object_id=pk, reason="outside_care_team")
        raise Http404("No such recommendation.") from exc
    form = ReviewDecisionForm(request.POST or None, recommendation=rec)
    if request.method == "POST":
        response = _review_post(request, user, form, rec)
        if response is not None:
            return response
    patient_record_viewed(actor=user, patient_id=rec.patient_id, what="recommendation")
    access = care_access_for(user=user, patient=rec.patient)
    policy = approval_policy_current()
    now = timezone.now()
    record = patient_context(patient=rec.patient, policy=policy, as_of=now)
    pending = rec.status == RecommendationStatus.PENDING_REVIEW
    can_sign = access.on_care_team and pending
    proposal = (rec.created_at, f"proposed: {rec.action}")
    context = {
        "rec": rec,
        "patient": rec.patient,
        "access": access,
        "can_sign": can_sign,
        "now": now,
        "form": form,
        "record": record,
        "policy": policy,
        **_trend_svgs(rec.patient, policy, record.points, proposal=proposal),
        "factors": factor_rows(rec),
        "factors_svg": mark_safe(  # noqa: S308
            factor_bars_svg(
                [(f["label"], f["contribution"]) for f in rec.top_factors], width=640, title=f"Why {rec.action}"
            )
        ),
        "proba_svg": mark_safe(probability_bars_svg(rec.probabilities)),  # noqa: S308
        "tier_reasons": [REASON_TEXT.get(code, code) for code in rec.tier_reasons],
        "attempts": signature_attempts_left(signer=user) if can_sign else None,
        "next_item": None if pending else worklist_next_after(user=user, rec_id=rec.pk, now=now),
        "nav": "queue",
    }
    return render(request, "portal/recommendation.html", context)


PATIENT_PAGE_SIZE = 50
SEARCH_RESULT_LIMIT = 50
MAX_SEARCH_LENGTH = 200


@roles_required(Role.CLINICIAN)
def patient_list(request: HttpRequest) -> HttpResponse:
    """The clinician's patients with their banners' identifiers, and a search by MRN, full name, family name or
    code (exact, through the blind index). The search is a POST: a name or an MRN in a URL would end up in access
    logs, proxies and browser history. It is audited with the patients it showed, never with the term, and the
    page does not repeat the term either."""
    user = request_user(request)
    if request.method == "POST":
        query = (request.POST.get("q") or "").strip()[:MAX_SEARCH_LENGTH]
        if not query:
            return redirect("portal:patients")
        found = list(patient_search_visible(user=user, query=query).order_by("code")[: SEARCH_RESULT_LIMIT + 1])
        patient_search_record(actor=user, patient_ids=[p.pk for p in found[:SEARCH_RESULT_LIMIT]])
        context = {
            "results": found[:SEARCH_RESULT_LIMIT],
            "truncated": len(found) > SEARCH_RESULT_LIMIT,
            "searched": True,
            "nav": "patients",
        }
        return render(request, "portal/patients.html", context)
    patients = patient_list_visible(user=user).order_by("code")
    page = Paginator(patients, PATIENT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/patients.html", {"page": page, "nav": "patients"})


def _bounds_requested(data: dict[str, Any]) -> EffectiveBounds:
    return bounds_of(data, autonomy_enabled=data["autonomy_enabled"])


def _evaluate(request: HttpRequest, user: User, patient: Patient) -> None:
    try:
        outcome = evaluate_on_demand(actor=user, patient=patient)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return
    rec = outcome.recommendation
    if rec is None:
        messages.info(request, _SKIPPED.get(outcome.skipped_reason, "No recommendation."))
    elif outcome.created:
        messages.success(request, f"Evaluated: {rec.action} ({rec.tier}, {rec.get_status_display().lower()}).")
    else:
        messages.info(request, f"Already evaluated moments ago: {rec.action} ({rec.tier}). Nothing new since.")


@roles_required(Role.CLINICIAN)
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    try:
        patient = patient_get_visible(user=user, patient_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="patient", object_id=pk, reason="outside_care_team")
        raise Http404("No such patient.") from exc
    policy = approval_policy_current()
    bounds = patient_bounds(patient=patient, policy=policy)
    action = request.POST.get("action") if request.method == "POST" else None
    bounds_form = BoundsForm(request.POST if action == "bounds" else None, initial=asdict(bounds.proposed))
    target_form = TargetForm(
        request.POST if action == "target" else None,
        initial={"target_sbp": patient.target_sbp, "target_dbp": patient.target_dbp},
    )
    if action == "bounds" and bounds_form.is_valid():
        data = bounds_form.cleaned_data
        try:
            autonomy_bounds_set(
                actor=user, patient=patient, requested=_bounds_requested(data), password=data["password"]
            )
        except EmergencyAccessReadOnly as exc:  # the form is not on an emergency page, so say it at the top
            messages.error(request, exc.message)
            return redirect("portal:patient", pk=pk)
        except ApplicationError as exc:
            form_errors_from(bounds_form, exc)
        else:
            messages.success(request, "New autonomy bounds signed and in force.")
            return redirect("portal:patient", pk=pk)
    if action == "target" and target_form.is_valid():
        try:
            changed = patient_target_set(actor=user, patient=patient, **target_form.cleaned_data)
        except EmergencyAccessReadOnly as exc:
            messages.error(request, exc.message)
            return redirect("portal:patient", pk=pk)
        except ApplicationError as exc:
            form_errors_from(target_form, exc)
        else:
            messages.success(request, "BP target changed." if changed else "The target was already that.")
            return redirect("portal:patient", pk=pk)
    if action == "resume":
        try:
            resumed = autonomy_resume(actor=user, patient=patient)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Autonomy resumed." if resumed else "Autonomy was not paused.")
        return redirect("portal:patient", pk=pk)
    if action == "evaluate":
        _evaluate(request, user, patient)
        return redirect("portal:patient", pk=pk)
    patient_record_viewed(actor=user, patient_id=patient.pk, what="patient_detail")
    alerts = alert_list_for_patient(patient=patient)
    context = {
        "patient": patient,
        "access": care_access_for(user=user, patient=patient),
        "bounds_form": bounds_form,
        "target_form": target_form,
        "effective": bounds.effective,
        "policy": policy,
        **_trend_context(patient, policy, days=60),
        "recommendations": recommendation_list_for_patient(user=user, patient_id=patient.pk),
        "alerts": alerts,
        # Resuming is refused while a P0 safety alert is open (care.services.autonomy_resume): say so instead.
        "safety_alert_open": any(
            alert.priority == AlertPriority.P0 and alert.status == AlertStatus.OPEN for alert in alerts
        ),
        "bounds_history": bounds.history,
        "changes": regimen_changes_for(patient=patient, limit=10),
        "care_plan": care_plan_panel(patient),
        "nav": "patients",
    }
    return render(request, "portal/patient.html", context)


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
