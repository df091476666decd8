"""Searching the audit ledger by actor, action, object, patient code and time, for the portal's ledger page and the
compliance exports (which must select exactly the same events for the same filters).

Layer 3 (governance): it reads the ledger and the care records, so it can turn a patient code into the events
that name the patient, which the ledger itself (a leaf) cannot.

Costs stay flat in the size of the ledger (issue 13): no COUNT(*) over the ledger (the head's seq is the count,
because seq is dense from 1), seq-keyed pagination instead of OFFSET, and date bounds turned into seq bounds by a
binary search over the seq index. That search relies on recorded_at never decreasing along seq, which holds because
both are assigned under the ledger's append lock from the database clock (clinaiops/audit/services.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from clinaiops.audit.chain import GENESIS_HASH, TIMESTAMP_FORMAT, event_hash
from clinaiops.audit.models import AuditAction, AuditCheckpoint, AuditEvent, AuditOutcome
from clinaiops.audit.verify import audit_checkpoint_signature_valid
from clinaiops.care.models import Patient
from clinaiops.core.errors import ValidationFailed
from clinaiops.core.models import User
from governance.accounting import audit_action_label, object_label, patient_by_code, role_label

PAGE_SIZE = 100


@dataclass(frozen=True)
class LedgerFilters:
    """What a compliance officer filters the ledger by. Every field is optional; `end` is exclusive."""

    actor: str = ""  # a username
    action: str = ""  # an AuditAction value
    object_type: str = ""
    object_id: str = ""
    patient_code: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def as_parameters(self) -> dict[str, str]:
        """The filters as export parameters and query-string values (only the ones set)."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "patient_code": self.patient_code,
            "from": timestamp_parameter(self.start) if self.start else "",
            "to": timestamp_parameter(self.end) if self.end else "",
        }
        return {key: value for key, value in values.items() if value}

    @property
    def is_filtered(self) -> bool:
        return bool(self.actor or self.action or self.object_type or self.object_id or self.patient_code)


def timestamp_parameter(moment: datetime) -> str:
    """A moment as an export parameter: ISO 8601 UTC with microseconds, so a range is stored exactly as asked."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def moment_parse(value: str, *, field_name: str, end_of_day: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD, midnight UTC; with end_of_day the next midnight, so the day is included) or an ISO
    timestamp. Blank is None; anything else is a field error."""
    value = (value or "").strip()
    if not value:
        return None
    parsed_date: date | None = None
    parsed: datetime | None = None
    try:
        # A bare date first: parse_datetime would read "2026-03-01" as midnight and lose the whole-day meaning.
        parsed_date = parse_date(value)
        if parsed_date is None:
            parsed = parse_datetime(value)
    except ValueError:
        parsed, parsed_date = None, None
    if parsed is None and parsed_date is not None:
        parsed = datetime.combine(parsed_date, time.min, tzinfo=UTC)
        if end_of_day:
            parsed += timedelta(days=1)
    if parsed is None:
        raise ValidationFailed(
            "A date is not valid.", fields={field_name: ["Use a date like 2026-03-01 or an ISO timestamp."]}
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def ledger_filters_parse(data: Mapping[str, str]) -> LedgerFilters:
    """Filters from a query string or export parameters ("from" and "to" are dates or ISO timestamps; a "to" date
    includes that whole day). Unknown actions are refused here; unknown actors and patients when they are used."""
    action = (data.get("action") or "").strip()
    if action and action not in AuditAction.values:
        raise ValidationFailed("Unknown action.", fields={"action": ["Choose an action from the list."]})
    start = moment_parse(data.get("from", ""), field_name="from")
    end = moment_parse(data.get("to", ""), field_name="to", end_of_day=True)
    if start and end and end <= start:
        raise ValidationFailed("The range is empty.", fields={"to": ["The end must be after the start."]})
    return LedgerFilters(
        actor=(data.get("actor") or "").strip(),
        action=action,
        object_type=(data.get("object_type") or "").strip(),
        object_id=(data.get("object_id") or "").strip(),
        patient_code=(data.get("patient_code") or "").strip().upper(),
        start=start,
        end=end,
    )


# --- Seq bounds --------------------------------------------------------------------------------------------


def ledger_head() -> tuple[int, datetime | None]:
    """The newest event's seq (the number of events, seq being dense from 1) and time; (0, None) when empty."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "recorded_at").first()
    return (head[0], head[1]) if head else (0, None)


def ledger_seq_at_or_after(moment: datetime, *, head_seq: int) -> int:
    """The smallest seq recorded at or after `moment` (head_seq + 1 if none), by binary search on the seq index:
    about log2(head) point lookups instead of a scan of recorded_at, which has no index."""
    low, high = 1, head_seq + 1
    while low < high:
        middle = (low + high) // 2
        probe = AuditEvent.objects.filter(seq__gte=middle).order_by("seq").values_list("seq", "recorded_at").first()
        if probe is None or probe[1] >= moment:
            high = middle
        else:
            low = probe[0] + 1
    return low


@dataclass(frozen=True)
class SeqRange:
    first: int  # inclusive
    last: int  # inclusive; last < first means empty


def ledger_seq_range(*, start: datetime | None, end: datetime | None, head_seq: int | None = None) -> SeqRange:
    head = ledger_head()[0] if head_seq is None else head_seq
    first = ledger_seq_at_or_after(start, head_seq=head) if start else 1
    last = ledger_seq_at_or_after(end, head_seq=head) - 1 if end else head
    return SeqRange(first=first, last=last)


# --- Filtering ---------------------------------------------------------------------------------------------


def _payload_names_patient(patient_id: int) -> Q:
    # Payloads are canonical JSON text (sorted keys, no spaces), so the patient id is followed by "," or "}".
    return Q(payload__contains=f'"patient_id":{patient_id},') | Q(payload__contains=f'"patient_id":{patient_id}}}')


def patient_events_q(patient: Patient, *, seq_range: SeqRange | None = None) -> Q:
    """Events that concern a patient: on the patient; naming the patient in their payload; and every event on a
    recommendation of theirs (a review decision or a patient response does not repeat the patient id, so the
    patient's recommendations are found through the ledger's own `recommendation.created` events)."""
    created = AuditEvent.objects.filter(object_type="recommendation", action=AuditAction.RECOMMENDATION_CREATED).filter(
        _payload_names_patient(patient.pk)
    )
    if seq_range is not None:
        created = created.filter(seq__lte=seq_range.last)
    recommendation_ids = list(created.values_list("object_id", flat=True))
    condition = Q(object_type="patient", object_id=str(patient.pk)) | _payload_names_patient(patient.pk)
    if recommendation_ids:
        condition |= Q(object_type="recommendation", object_id__in=recommendation_ids)
    return condition


@dataclass(frozen=True)
class ResolvedFilters:
    """Filters turned into database terms: ids instead of names, and a seq range instead of dates."""

    filters: LedgerFilters
    seq_range: SeqRange
    head_seq: int
    actor: User | None = None
    patient: Patient | None = None
    condition: Q = field(default_factory=Q)


def ledger_filters_resolve(filters: LedgerFilters) -> ResolvedFilters:
    head_seq = ledger_head()[0]
    seq_range = ledger_seq_range(start=filters.start, end=filters.end, head_seq=head_seq)
    condition = Q(seq__gte=seq_range.first, seq__lte=seq_range.last)
    actor = None
    if filters.actor:
        actor = User.objects.filter(username=filters.actor).first()
        if actor is None:
            raise ValidationFailed("Unknown actor.", fields={"actor": ["No user has that username."]})
        condition &= Q(actor=actor)
    if filters.action:
        condition &= Q(action=filters.action)
    if filters.object_type:
        condition &= Q(object_type=filters.object_type)
    if filters.object_id:
        condition &= Q(object_id=filters.object_id)
    patient = None
    if filters.patient_code:
        patient = patient_by_code(filters.patient_code)
        if patient is None:
            raise ValidationFailed("Unknown patient code.", fields={"patient_code": ["No patient has that code."]})
        condition &= patient_events_q(patient, seq_range=seq_range)
    return ResolvedFilters(
        filters=filters, seq_range=seq_range, head_seq=head_seq, actor=actor, patient=patient, condition=condition
    )


def ledger_events(resolved: ResolvedFilters) -> QuerySet[AuditEvent]:
    """The matching events, in seq order (callers that stream use .iterator())."""
    return AuditEvent.objects.filter(resolved.condition).order_by("seq")


@dataclass(frozen=True)
class LedgerRow:
    """One event as the ledger page lists it: words for the codes, and whether it is a refusal inside a burst."""

    seq: int
    recorded_at: datetime
    actor: str
    role_label: str
    action: str
    action_label: str
    object_type: str
    object_id: str
    object_label: str  # in words, a patient by their code
    denied: bool
    flagged: bool
    hash: str


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    head_seq: int
    newer: int | None  # pass as ?after= for the newer page
    older: int | None  # pass as ?before= for the older page


def ledger_page(
    resolved: ResolvedFilters,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
    bursts: list[DeniedBurst] | None = None,
) -> LedgerPage:
    """One page of matching events, newest first, keyed by seq: `before` pages older, `after` pages newer."""
    events = AuditEvent.objects.filter(resolved.condition).select_related("actor")
    if after is not None:
        found = list(events.filter(seq__gt=after).order_by("seq")[: size + 1])
        has_newer = len(found) > size
        found = found[:size][::-1]
        has_older = bool(found) and events.filter(seq__lt=found[-1].seq).exists()
    else:
        found = list((events.filter(seq__lt=before) if before is not None else events).order_by("-seq")[: size + 1])
        has_older = len(found) > size
        found = found[:size]
        has_newer = before is not None and bool(found) and events.filter(seq__gt=found[0].seq).exists()
    bursts = denied_bursts() if bursts is None else bursts
    codes = _patient_codes(event.object_id for event in found if event.object_type == "patient")
    rows = []
    for event in found:
        denied = event.outcome == AuditOutcome.DENIED
        rows.append(
            LedgerRow(
                seq=event.seq,
                recorded_at=event.recorded_at,
                actor=event.actor.username if event.actor else "system",
                role_label=role_label(event.actor_role),
                action=event.action,
                action_label=audit_action_label(event.action),
                object_type=event.object_type,
                object_id=event.object_id,
                object_label=object_label(event.object_type, event.object_id, codes),
                denied=denied,
                flagged=denied
                and any(b.actor_id == event.actor_id and b.first_seq <= event.seq <= b.last_seq for b in bursts),
                hash=event.hash,
            )
        )
    return LedgerPage(
        rows=rows,
        head_seq=resolved.head_seq,
        newer=rows[0].seq if has_newer and rows else None,
        older=rows[-1].seq if has_older and rows else None,
    )


def _patient_codes(object_ids: Iterable[str]) -> dict[str, str]:
    """Patient codes by id (as the ledger stores it), in one query for a page; none when no row names a patient."""
    ids = sorted({int(i) for i in object_ids if i.isdigit()})
    if not ids:
        return {}
    return {str(pk): code for pk, code in Patient.objects.filter(pk__in=ids).values_list("pk", "code")}


@dataclass(frozen=True)
class EventDetail:
    event: AuditEvent
    action_label: str
    role_label: str
    object_label: str
    payload_items: list[tuple[str, str]]  # (key in words, value as text), sorted by key
    hash_ok: bool  # the stored hash equals the hash recomputed from the stored fields
    links_ok: bool | None  # prev_hash equals the previous event's hash (None for the first event)


def ledger_event_detail(seq: int) -> EventDetail | None:
    event = AuditEvent.objects.select_related("actor").filter(seq=seq).first()
    if event is None:
        return None
    try:
        payload = event.payload_data
    except ValueError:
        payload = {"unreadable payload": event.payload}
    items = [(key.replace("_", " "), json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
             for key, value in sorted(payload.items())]  # fmt: skip
    recomputed = event_hash(
        event.seq, event.recorded_at.strftime(TIMESTAMP_FORMAT), event.actor_id, event.actor_role, event.action,
        event.object_type, event.object_id, event.outcome, event.request_id, event.ip, event.payload, event.prev_hash,
    )  # fmt: skip
    previous = AuditEvent.objects.filter(seq=seq - 1).values_list("hash", flat=True).first() if seq > 1 else None
    links_ok = (
        (event.prev_hash == GENESIS_HASH) if seq == 1 else (None if previous is None else previous == event.prev_hash)
    )
    return EventDetail(
        event=event, action_label=audit_action_label(event.action), role_label=role_label(event.actor_role),
        object_label=object_label(
            event.object_type, event.object_id,
            _patient_codes([event.object_id]) if event.object_type == "patient" else None,
        ),
        payload_items=items, hash_ok=recomputed == event.hash, links_ok=links_ok,
    )  # fmt: skip


# --- Denied bursts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeniedBurst:
    """An actor refused at least AUDIT_DENIED_BURST_COUNT times within AUDIT_DENIED_BURST_MINUTES: someone probing
    records outside their scope, or a misconfigured client."""

    actor_id: int | None
    actor: str
    count: int
    first_seq: int
    last_seq: int
    first_at: datetime
    last_at: datetime


# The ledger page looks for bursts among at most this many of the newest events: refusals have no index, so the
# window is bounded by count as well as by time, and the page stays flat however busy the last week was.
BURST_SCAN_EVENTS = 50_000


def denied_bursts(
    *, days: int = 7, now: datetime | None = None, seq_range: SeqRange | None = None
) -> list[DeniedBurst]:
    """Bursts of refusals over the last `days` (at most BURST_SCAN_EVENTS events back), or within `seq_range`."""
    if seq_range is None:
        now = now or timezone.now()
        head_seq = ledger_head()[0]
        since = ledger_seq_at_or_after(now - timedelta(days=days), head_seq=head_seq)
        seq_range = SeqRange(first=max(since, head_seq - BURST_SCAN_EVENTS + 1), last=head_seq)
    window = timedelta(minutes=settings.AUDIT_DENIED_BURST_MINUTES)
    threshold = settings.AUDIT_DENIED_BURST_COUNT
    denied = (
        AuditEvent.objects.filter(seq__gte=seq_range.first, seq__lte=seq_range.last, outcome=AuditOutcome.DENIED)
        .order_by("seq")
        .values_list("seq", "recorded_at", "actor_id", "actor__username")
    )
    by_actor: dict[int | None, list[tuple[int, datetime, str]]] = {}
    for seq, recorded_at, actor_id, username in denied.iterator(chunk_size=2000):
        by_actor.setdefault(actor_id, []).append((seq, recorded_at, username or "system"))
    bursts: list[DeniedBurst] = []
    for who, refusals in by_actor.items():
        start = 0
        best: tuple[int, int] | None = None  # indexes of the widest qualifying run, merged while it keeps growing
        for end in range(len(refusals)):
            while refusals[end][1] - refusals[start][1] > window:
                start += 1
            if end - start + 1 < threshold:
                continue
            if best is not None and start <= best[1]:
                best = (best[0], end)  # overlaps the run so far: one burst, not several
            else:
                if best is not None:
                    bursts.append(_burst(who, refusals, best))
                best = (start, end)
        if best is not None:
            bursts.append(_burst(who, refusals, best))
    return sorted(bursts, key=lambda b: -b.last_seq)


def denied_burst_rule() -> str:
    """The flagging rule, in words, as the page states it."""
    return (
        f"Flagged: {settings.AUDIT_DENIED_BURST_COUNT} or more refusals of one person within "
        f"{settings.AUDIT_DENIED_BURST_MINUTES} minutes, among the newest {BURST_SCAN_EVENTS:,} events."
    )


def _burst(actor_id: int | None, refusals: list[tuple[int, datetime, str]], run: tuple[int, int]) -> DeniedBurst:
    first, last = refusals[run[0]], refusals[run[1]]
    return DeniedBurst(
        actor_id=actor_id, actor=first[2], count=run[1] - run[0] + 1, first_seq=first[0], last_seq=last[0],
        first_at=first[1], last_at=last[1],
    )  # fmt: skip


# --- Checkpoints, witness and the last verification -------------------------------------------------------


@dataclass(frozen=True)
class LastVerification:
    seq: int  # the audit.verified event
    at: datetime
    by: str
    ok: bool
    events_checked: int
    first_broken_seq: int | None
    kind: str
    export_id: int | None
    checkpoints_checked: int = 0
    witnessed: bool = False  # a readable witness was compared
    witness_entries: int = 0
    witness_head_seq: int | None = None
    unwitnessed_checkpoints: int = 0


def ledger_last_verification() -> LastVerification | None:
    """The newest recorded verification (compliance writes an `audit.verified` event on a `ledger_verification`
    object when a verification job ends), found through the object index, not a scan by action."""
    event = (
        AuditEvent.objects.filter(object_type="ledger_verification", action=AuditAction.LEDGER_VERIFIED)
        .select_related("actor")
        .order_by("-seq")
        .first()
    )
    if event is None:
        return None
    data = event.payload_data
    broken = data.get("first_broken_seq")
    return LastVerification(
        seq=event.seq, at=event.recorded_at, by=event.actor.signature_name if event.actor else "system",
        ok=bool(data.get("ok")), events_checked=int(data.get("events_checked", 0)),
        first_broken_seq=int(broken) if broken is not None else None, kind=str(data.get("kind", "")),
        export_id=int(event.object_id) if event.object_id.isdigit() else None,
        checkpoints_checked=int(data.get("checkpoints_checked", 0)), witnessed=bool(data.get("witnessed")),
        witness_entries=int(data.get("witness_entries", 0)), witness_head_seq=data.get("witness_head_seq"),
        unwitnessed_checkpoints=int(data.get("unwitnessed_checkpoints", 0)),
    )  # fmt: skip


@dataclass(frozen=True)
class LedgerStatus:
    head_seq: int
    checkpoint: CheckpointStatus | None
    unsigned_events: int  # events after the newest checkpoint
    verification: LastVerification | None


def ledger_status() -> LedgerStatus:
    """What the ledger page shows about integrity, from a handful of indexed reads (flat in the ledger's size)."""
    head_seq, _ = ledger_head()
    checkpoint = checkpoint_latest()
    return LedgerStatus(
        head_seq=head_seq,
        checkpoint=checkpoint,
        unsigned_events=head_seq - (checkpoint.seq if checkpoint else 0),
        verification=ledger_last_verification(),
    )


@dataclass(frozen=True)
class CheckpointStatus:
    seq: int
    created_at: datetime
    key_id: str
    signature_valid: bool


def checkpoint_latest() -> CheckpointStatus | None:
    """The newest signed checkpoint and whether its signature verifies against the trusted keys."""
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    if checkpoint is None:
        return None
    return CheckpointStatus(
        seq=checkpoint.seq,
        created_at=checkpoint.created_at,
        key_id=checkpoint.key_id,
        signature_valid=audit_checkpoint_signature_valid(checkpoint),
    )
