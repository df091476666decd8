"""The clinician's review worklist (issue 11), In-Basket-like: triage order, each item's age against the review SLA,
filters by clinic, reason, action and overdue with a count for each, the overdue follow-ups of the
patient–clinician loop, and "next item" once a decision is signed.

The order and the SLA are decided in clinaiops.loops.selectors.worklist; this view filters and counts the rows it
returns (one query, whatever the length) and pages them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clinaiops.core.models import Role
from clinaiops.loops.selectors import WorklistItem, worklist, worklist_next_after
from clinaiops.partnership.selectors import followups_overdue
from clinaiops.portal.access import request_user, roles_required
from clinaiops.portal.forms_alerts import ACTION_CHOICES, WorklistFilterForm
from governance.policy import REASON_SHORT

QUEUE_PAGE_SIZE = 25
# Set by the decision screen once a decision is signed (clinical._review_post): the worklist then offers the item
# that came after it.
SIGNED_SESSION_KEY = "worklist_signed_recommendation"


def age_words(age: timedelta) -> str:
    """ "3 h", "2 d 4 h": an item's age as a clinician reads it."""
    hours = max(0, int(age.total_seconds() // 3600))
    if hours < 1:
        return f"{max(0, int(age.total_seconds() // 60))} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if days else f"{hours} h"


@dataclass(frozen=True)
class Row:
    item: WorklistItem
    reasons: list[str]
    age: str
    overdue_by: str
    due_in: str


@dataclass(frozen=True)
class Facet:
    value: str
    label: str
    count: int
    active: bool
    href: str


def _href(data: dict[str, object], name: str, value: object) -> str:
    """The worklist's URL with filter `name` set to `value`, or cleared if it is already that value."""
    query = {key: str(val) for key, val in data.items() if val not in (None, "", False)}
    if str(query.get(name, "")) == str(value):
        query.pop(name)
    else:
        query[name] = str(value)
    return "?" + urlencode(sorted(query.items())) if query else "?"


def _row(item: WorklistItem) -> Row:
    rec = item.recommendation
    past = rec.created_at + item.age - item.due_at  # now - due
    return Row(
        item=item,
        reasons=[REASON_SHORT.get(code, code.replace("_", " ")) for code in rec.tier_reasons],
        age=age_words(item.age),
        overdue_by=age_words(past) if item.overdue else "",
        due_in=age_words(-past) if not item.overdue else "",
    )


Matcher = Callable[[WorklistItem], bool]


def _matchers(data: dict[str, object]) -> dict[str, Matcher]:
    matchers: dict[str, Matcher] = {}
    if data.get("clinic") is not None:
        matchers["clinic"] = lambda item: item.recommendation.patient.care_team_id == data["clinic"]
    if data.get("reason"):
        matchers["reason"] = lambda item: data["reason"] in item.recommendation.tier_reasons
    if data.get("action"):
        matchers["action"] = lambda item: item.recommendation.action == data["action"]
    if data.get("overdue"):
        matchers["overdue"] = lambda item: item.overdue
    return matchers


def _matching(items: list[WorklistItem], matchers: dict[str, Matcher], *, except_facet: str = "") -> list[WorklistItem]:
    active = [match for name, match in matchers.items() if name != except_facet]
    return [item for item in items if all(match(item) for match in active)]


def _facets(items: list[WorklistItem], matchers: dict[str, Matcher], data: dict[str, object]) -> dict[str, list[Facet]]:
    """Each filter's options with how many items each would show, given the other filters (as an In Basket's
    folder counts do)."""
    clinics = _matching(items, matchers, except_facet="clinic")
    reasons = _matching(items, matchers, except_facet="reason")
    actions = _matching(items, matchers, except_facet="action")
    overdue = _matching(items, matchers, except_facet="overdue")
    clinic_names = {
        item.recommendation.patient.care_team_id: item.recommendation.patient.care_team.name for item in items
    }
    clinic_counts = Counter(item.recommendation.patient.care_team_id for item in clinics)
    reason_counts = Counter(code for item in reasons for code in item.recommendation.tier_reasons)
    action_counts = Counter(item.recommendation.action for item in actions)
    return {
        "clinic": [
            Facet(str(pk), name, clinic_counts[pk], data.get("clinic") == pk, _href(data, "clinic", pk))
            for pk, name in sorted(clinic_names.items(), key=lambda pair: pair[1])
        ],
        "reason": [
            Facet(
                code,
                REASON_SHORT.get(code, code),
                reason_counts[code],
                data.get("reason") == code,
                _href(data, "reason", code),
            )
            for code in sorted(reason_counts, key=lambda code: REASON_SHORT.get(code, code))
        ],
        "action": [
            Facet(value, label, action_counts[value], data.get("action") == value, _href(data, "action", value))
            for value, label in ACTION_CHOICES
            if action_counts[value] or data.get("action") == value
        ],
        "overdue": [
            Facet(
                "1",
                "Overdue",
                sum(1 for item in overdue if item.overdue),
                bool(data.get("overdue")),
                _href({**data, "overdue": "1" if data.get("overdue") else ""}, "overdue", "1"),
            )
        ],
    }


@roles_required(Role.CLINICIAN)
def queue(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    items = worklist(user=user)
    form = WorklistFilterForm(
        request.GET or None,
        clinics=sorted(
            {(item.recommendation.patient.care_team_id, item.recommendation.patient.care_team.name) for item in items},
            key=lambda pair: pair[1],
        ),
        reasons=[(code, label) for code, label in REASON_SHORT.items()],
    )
    # A value that is not one of the choices is shown at its field and that filter alone is dropped.
    data: dict[str, object] = {}
    if form.is_bound:
        form.is_valid()
        data = {name: value for name, value in form.cleaned_data.items() if name not in form.errors}
    matchers = _matchers(data)
    shown = _matching(items, matchers)
    page = Paginator(shown, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    signed = request.session.pop(SIGNED_SESSION_KEY, None)
    next_item = worklist_next_after(user=user, rec_id=int(signed)) if isinstance(signed, int) else None
    followups = followups_overdue(user=user)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "rows": [_row(item) for item in page.object_list],
        "total": len(items),
        "shown": len(shown),
        "overdue_total": sum(1 for item in items if item.overdue),
        "facets": _facets(items, matchers, data),
        "filters": data,
        "form": form,
        "query": query.urlencode(),
        "next_item": next_item,
        "followups": followups,
        "sla_hours": settings.REVIEW_SLA_HOURS,
        "nav": "queue",
    }
    return render(request, "portal/queue.html", context)
