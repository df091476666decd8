"""Alert pages (issue 11): the clinical and security alert lists, one alert's page (the triggering readings, the
owner, the escalation chain, the history, and acknowledging with a disposition and a note), and the portal inbox.

Clinical (safety) alerts belong to the patient's clinicians; security (break-glass) alerts to the clinical safety
officers. Neither sees the other's: the selectors decide (clinaiops.care.selectors.alert_list_visible), and an
alert outside them answers 404, audited.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clinaiops.care.access import care_access_for, patient_record_viewed
from clinaiops.care.alert_history import alert_history, alert_triggering_readings
from clinaiops.care.escalation_chain import escalation_chain_for
from clinaiops.care.models import Alert, AlertKind, AlertStatus, NotificationInbox
from clinaiops.care.notifications import notification_headline, notifications_for, notifications_mark_read
from clinaiops.care.selectors import alert_get_visible, alert_list_visible
from clinaiops.care.services import alert_acknowledge, alert_dispositions_for
from clinaiops.core.errors import ApplicationError, NotFound
from clinaiops.core.models import Role, User
from clinaiops.portal.access import access_denied_record, request_user, roles_required
from clinaiops.portal.forms import form_errors_from
from clinaiops.portal.forms_alerts import AlertAcknowledgeForm
from governance.services import approval_policy_current
from inference.monitoring.models import MonitoringAlertKind, MonitoringAlertStatus
from inference.monitoring.selectors import monitoring_alert_list

INBOX_LIMIT = 100


@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def alert_list(request: HttpRequest) -> HttpResponse:
    """The role's alert inbox: clinicians the open safety alerts of their patients, safety officers the open
    security alerts."""
    user = request_user(request)
    alerts = list(alert_list_visible(user=user).select_related("owner")[:200])
    # Model-integrity alerts are security alerts too, but about a model, not a patient: they live with the ML
    # engineers' monitoring alerts (inference.monitoring), and the security inbox points there.
    integrity = (
        monitoring_alert_list(status=MonitoringAlertStatus.OPEN)
        .filter(kind=MonitoringAlertKind.MODEL_INTEGRITY)
        .count()
        if user.role == Role.SAFETY_OFFICER
        else 0
    )
    return render(request, "portal/alerts.html", {"alerts": alerts, "integrity_open": integrity, "nav": "alerts"})


def _alert_or_404(user: User, pk: int) -> Alert:
    try:
        return alert_get_visible(user=user, alert_id=pk)
    except NotFound as exc:
        access_denied_record(actor=user, object_type="alert", object_id=pk, reason="not_responsible")
        raise Http404("No such alert.") from exc


def _alert_page(
    request: HttpRequest, user: User, alert: Alert, form: AlertAcknowledgeForm, *, status: int = 200
) -> HttpResponse:
    patient_record_viewed(actor=user, patient_id=alert.patient_id, what="alert")
    notifications_mark_read(
        user=user, notification_ids=list(alert.notifications.filter(recipient=user).values_list("pk", flat=True))
    )
    security = alert.kind == AlertKind.BREAK_GLASS
    policy = approval_policy_current()
    readings = [
        (
            reading,
            reading.pk == alert.reading_id,
            reading.systolic >= policy.crisis_sbp or reading.diastolic >= policy.crisis_dbp,
            reading.systolic < policy.hypotension_sbp or reading.diastolic < policy.hypotension_dbp,
        )
        for reading in alert_triggering_readings(alert=alert)
    ]
    chain = [] if security else escalation_chain_for(team=alert.patient.care_team)
    access = care_access_for(user=user, patient=alert.patient)
    context = {
        "alert": alert,
        "security": security,
        "readings": readings,
        "chain": [(position, person, position < alert.escalation_step) for position, person in enumerate(chain, 1)],
        "history": alert_history(alert=alert),
        "form": form,
        "can_acknowledge": alert.status == AlertStatus.OPEN and (security or access.on_care_team or access.emergency),
        "settings_minutes": settings.ALERT_ESCALATION_MINUTES,
        "nav": "alerts",
    }
    return render(request, "portal/alert.html", context, status=status)


@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    alert = _alert_or_404(user, pk)
    form = AlertAcknowledgeForm(dispositions=alert_dispositions_for(alert))
    return _alert_page(request, user, alert, form)


@require_POST
@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge with a disposition and a note. A missing or unknown value is shown at its field (400) and
    nothing is stored."""
    user = request_user(request)
    alert = _alert_or_404(user, pk)
    form = AlertAcknowledgeForm(request.POST, dispositions=alert_dispositions_for(alert))
    if not form.is_valid():
        return _alert_page(request, user, alert, form, status=400)
    try:
        alert_acknowledge(
            alert=alert, actor=user, disposition=form.cleaned_data["disposition"], note=form.cleaned_data["note"]
        )
    except ApplicationError as exc:
        if exc.fields:
            form_errors_from(form, exc)
            return _alert_page(request, user, alert, form, status=400)
        messages.error(request, exc.message)
        return redirect("portal:alert", pk=alert.pk)
    messages.success(request, "Alert acknowledged.")
    return redirect("portal:alerts")


@roles_required(Role.CLINICIAN, Role.SAFETY_OFFICER)
def inbox(request: HttpRequest) -> HttpResponse:
    """The user's notifications: the clinical inbox (clinicians) or the security inbox (safety officers)."""
    user = request_user(request)
    box = NotificationInbox.SECURITY if user.role == Role.SAFETY_OFFICER else NotificationInbox.CLINICAL
    if request.method == "POST":
        changed = notifications_mark_read(user=user)
        messages.success(request, f"{changed} notification{'s' if changed != 1 else ''} marked as read.")
        return redirect("portal:inbox")
    notifications = notifications_for(user=user, inbox=box, limit=INBOX_LIMIT)
    rows = [(n, notification_headline(n)) for n in notifications]
    context = {
        "rows": rows,
        "box": box,
        "unread": sum(1 for n in notifications if n.read_at is None),
        "nav": "inbox",
    }
    return render(request, "portal/inbox.html", context)
