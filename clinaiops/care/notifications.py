"""Telling a person that an alert needs them: the portal inbox plus the channels in settings.NOTIFIERS.

The inbox row (Notification) is written inside the transaction of the change it reports, so "who was told" commits
or rolls back with the alert, its escalation and the audit event. The external channels run after commit
(STYLE.md: side effects in `transaction.on_commit`): a mail server that is down must never roll back an
escalation, and a rolled-back escalation must never have paged anyone.

A channel is one class with a `channel` name and a `deliver(notice)` method (the `Notifier` protocol), named by
its dotted path in NOTIFIERS. A pager or SMS gateway is one more such class. What a channel receives is a
`Notice`: the alert's number, priority and the patient's pseudonymous code with a link to the portal, and nothing
else. Email and SMS leave the hospital's systems, so they never carry a name, an MRN, readings or the clinical kind
of the alert; whoever follows the link signs in and sees the rest there (DESIGN §6).

Delivery is a task (clinaiops.care.tasks), enqueued after commit; the escalation sweep sends again whatever is
still undelivered, so a lost message or a channel that was down delays a notice but does not drop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from clinaiops.care.models import Alert, AlertKind, Notification, NotificationInbox, NotificationKind
from clinaiops.care.signals import notifications_created
from clinaiops.core.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """What an external channel may carry: no identifiers beyond the patient's pseudonymous code."""

    recipient_id: int
    recipient_email: str
    subject: str
    body: str
    link: str


class Notifier(Protocol):
    channel: str

    def deliver(self, notice: Notice) -> None: ...


class EmailNotifier:
    """Django's email backend: the console backend in the demo (settings EMAIL_BACKEND), SMTP in production."""

    channel = "email"

    def deliver(self, notice: Notice) -> None:
        if not notice.recipient_email:
            return
        send_mail(
            notice.subject,
            f"{notice.body}\n\n{notice.link}\n",
            settings.DEFAULT_FROM_EMAIL,
            [notice.recipient_email],
        )


def notifiers() -> list[Notifier]:
    """The external channels named in NOTIFIERS (dotted paths), read when used, never at import time."""
    return [import_string(path)() for path in settings.NOTIFIERS]


_HEADLINES = {
    NotificationKind.ALERT_ASSIGNED: "{priority} alert {number} for patient {code} is yours",
    NotificationKind.ALERT_ESCALATED: "{priority} alert {number} for patient {code} was escalated to you",
    NotificationKind.ALERT_TEAM: "{priority} alert {number} for patient {code} is still unacknowledged",
    NotificationKind.SECURITY_ALERT: "Security alert {number}: emergency access to patient {code}",
}


def notice_for(*, recipient: User, kind: NotificationKind, alert: Alert) -> Notice:
    """The channel-safe wording of one notification (also what the inbox row's headline says)."""
    headline = _HEADLINES[kind].format(priority=alert.priority, number=alert.pk, code=alert.patient.code)
    path = reverse("portal:alert", args=[alert.pk])
    return Notice(
        recipient_id=recipient.pk,
        recipient_email=recipient.email,
        subject=f"[ClinAIOps] {headline}",
        body=f"{headline}. Sign in to the portal to see it and acknowledge it.",
        link=f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}",
    )


def _notifications_enqueue(notification_ids: list[int]) -> None:
    # The task is connected to this signal in CareConfig.ready, so this module does not import the tasks module.
    notifications_created.send(sender=None, notification_ids=notification_ids)


def alert_notify(*, recipients: list[User], kind: NotificationKind, alert: Alert) -> list[Notification]:
    """Put one notification per recipient in their inbox and, after commit, hand them to a task that sends them on
    the NOTIFIERS channels (never inside the request or the sweep's transaction: a slow mail server must not hold
    a patient's reading upload). The caller holds the transaction and writes the audit event that names the
    recipients."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("alert_notify must run inside the transaction of the change it reports")
    inbox = NotificationInbox.SECURITY if alert.kind == AlertKind.BREAK_GLASS else NotificationInbox.CLINICAL
    now = timezone.now()
    unique = list({user.pk: user for user in recipients}.values())
    rows = Notification.objects.bulk_create(
        Notification(recipient=user, kind=kind, inbox=inbox, alert=alert, created_at=now) for user in unique
    )
    if rows:
        # robust: a broker that refuses the message must not turn a committed escalation into an error; the
        # escalation sweep sends what is still undelivered (notifications_redeliver).
        transaction.on_commit(partial(_notifications_enqueue, [row.pk for row in rows]), robust=True)
    return rows


def notifications_deliver(*, notification_ids: list[int]) -> int:
    """Send each undelivered notification on every NOTIFIERS channel it has not reached yet; returns how many are
    now delivered on all of them. At least once: a channel that fails is tried again on the next call, and one
    that succeeded is recorded so it is not sent twice (only a crash between the send and the record repeats it).
    Channel errors are caught here, at the channel boundary, and logged without the notice's content."""
    channels = notifiers()
    rows = Notification.objects.filter(
        pk__in=notification_ids, delivered_at__isnull=True, delivery_attempts__lt=settings.NOTIFICATION_MAX_ATTEMPTS
    ).select_related("recipient", "alert__patient")
    delivered = 0
    for row in rows:
        if row.alert is None:
            continue
        notice = notice_for(recipient=row.recipient, kind=NotificationKind(row.kind), alert=row.alert)
        done = {name for name in row.delivered_channels.split(",") if name}
        for notifier in channels:
            if notifier.channel in done:
                continue
            try:
                notifier.deliver(notice)
            except Exception:  # the channel boundary: one failed channel must not stop the others
                logger.exception("notification %s: channel %s failed", row.pk, notifier.channel)
            else:
                done.add(notifier.channel)
        complete = {notifier.channel for notifier in channels} <= done
        Notification.objects.filter(pk=row.pk, delivered_at__isnull=True).update(
            delivered_channels=",".join(sorted(done)),
            delivery_attempts=F("delivery_attempts") + 1,
            delivered_at=timezone.now() if complete else None,
        )
        delivered += int(complete)
    return delivered


# A notice younger than this is still on its way through its own task; the sweep leaves it alone.
REDELIVER_AFTER = timedelta(minutes=2)


def notifications_redeliver(*, now: datetime | None = None) -> int:
    """Send again what is still undelivered a while after it was made: its message was lost with the broker, or
    a channel failed. Run by the escalation sweep."""
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(
            delivered_at__isnull=True,
            created_at__lte=now - REDELIVER_AFTER,
            delivery_attempts__lt=settings.NOTIFICATION_MAX_ATTEMPTS,
        ).values_list("pk", flat=True)[:500]
    )
    return notifications_deliver(notification_ids=ids) if ids else 0


def notification_headline(notification: Notification) -> str:
    """The inbox's wording of a notification (the same words the email's subject uses)."""
    alert = notification.alert
    if alert is None:
        return notification.get_kind_display()
    return _HEADLINES[NotificationKind(notification.kind)].format(
        priority=alert.priority, number=alert.pk, code=alert.patient.code
    )


def notifications_mark_read(*, user: User, notification_ids: list[int] | None = None) -> int:
    """Mark the user's notifications (all, or these) as read; returns how many changed. Reading one's own inbox
    is not a clinical change, so it is not audited; the alert's own acknowledgement is."""
    rows = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_ids is not None:
        rows = rows.filter(pk__in=notification_ids)
    return rows.update(read_at=timezone.now())


def notifications_for(*, user: User, inbox: str, limit: int = 100) -> list[Notification]:
    """The user's newest notifications in one inbox, with their alerts (one query)."""
    return list(
        Notification.objects.filter(recipient=user, inbox=inbox)
        .select_related("alert__patient")
        .order_by("-created_at", "-pk")[:limit]
    )
