"""Selector: what a proposed approval policy would change (issue 11). Every model proposal of the last IMPACT_DAYS
days is tiered again under the policy in force and the proposed one with governance.policy.proposal_tier, from what
each recommendation stored."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from clinaiops.care.models import Reading
from clinaiops.loops.models import Recommendation
from governance.models import ApprovalPolicy
from governance.policy import MAJOR, MINOR, REASON_SHORT, TierInput, proposal_tier
from governance.selectors import effective_bounds_of
from inference.monitoring.models import RULES_ONLY_ARM

IMPACT_DAYS = 14
# Reasons added outside the policy's tiering rule (governance.policy.proposal_tier): such a proposal is major
# whatever the policy says, so a change of policy cannot move it.
POLICY_INDEPENDENT = frozenset({"decision_awaiting_response", "no_model", "ai_stopped"})


@dataclass(frozen=True)
class PolicyImpact:
    """How the last `days` days' model proposals would be tiered under the proposed policy, against the policy
    in force, both recomputed with governance.policy.proposal_tier from what each recommendation stored."""

    days: int
    proposals: int  # model proposals in the window
    fixed: int  # major whatever the policy (rules only, AI stopped, held behind an unanswered decision)
    to_major: int  # minor under the policy in force, major under the proposed one
    to_minor: int
    new_reasons: list[tuple[str, int]]  # reasons the proposed policy adds, with how many proposals get each
    readings_recounted: bool  # the readings rule changed, so recent readings were counted again
    differ_from_stored: int  # proposals the policy in force tiers differently from how they were tiered then

    @property
    def changed(self) -> int:
        return self.to_major + self.to_minor


def _reading_times(recs: list[Recommendation], window: timedelta) -> dict[int, list[datetime]]:
    """Each patient's reading times from the earliest window start to the last proposal, in one query."""
    if not recs:
        return {}
    start = min(rec.created_at for rec in recs) - window
    end = max(rec.created_at for rec in recs)
    times: dict[int, list[datetime]] = defaultdict(list)
    rows = Reading.objects.filter(
        patient_id__in={rec.patient_id for rec in recs}, taken_at__gte=start, taken_at__lte=end
    ).values_list("patient_id", "taken_at")
    for patient_id, taken_at in rows.order_by("patient_id", "taken_at"):
        times[patient_id].append(taken_at)
    return times


def policy_impact(current: ApprovalPolicy, proposed: ApprovalPolicy, *, now: datetime | None = None) -> PolicyImpact:
    """Recompute the tier of every model proposal of the last IMPACT_DAYS days under both policies.

    What each recommendation stored is used as it was: its from and to step, its confidence, the patient's signed
    bounds version, and — from its stored reasons — whether a safety alert was open and autonomy paused. Recent
    readings are recounted from the readings table (as the evaluation counts them: taken within the window
    before the proposal) only when the readings rule changes; otherwise the stored "too few readings" reason
    stands. Approximation: a reading taken before a proposal but received after it is counted now."""
    now = now or timezone.now()
    recs = list(
        Recommendation.objects.filter(created_at__gte=now - timedelta(days=IMPACT_DAYS), created_at__lte=now)
        .select_related("bounds")
        .only(
            "pk", "patient_id", "created_at", "arm", "from_step", "to_step", "confidence", "tier", "tier_reasons",
            "features", "bounds",
        )
    )  # fmt: skip
    recount = (current.min_readings, current.min_readings_window_days) != (
        proposed.min_readings,
        proposed.min_readings_window_days,
    )
    windows = {p.pk or 0: timedelta(days=p.min_readings_window_days) for p in (current, proposed)}
    times = _reading_times(recs, max(windows.values())) if recount else {}
    fixed = to_major = to_minor = differ = 0
    added: Counter[str] = Counter()
    for rec in recs:
        reasons = set(rec.tier_reasons)
        if rec.arm == RULES_ONLY_ARM or reasons & POLICY_INDEPENDENT:
            fixed += 1
            continue
        decisions = []
        for policy in (current, proposed):
            if recount:
                patient_times = times.get(rec.patient_id, [])
                start = rec.created_at - timedelta(days=policy.min_readings_window_days)
                recent = bisect_right(patient_times, rec.created_at) - bisect_left(patient_times, start)
            else:
                recent = 0 if "too_few_readings" in reasons else 10**6
            decisions.append(
                proposal_tier(
                    TierInput(
                        from_step=rec.from_step,
                        to_step=rec.to_step,
                        confidence=rec.confidence,
                        open_safety_alert="open_safety_alert" in reasons,
                        autonomy_paused="autonomy_paused" in reasons,
                        recent_readings=recent,
                        sbp_excess=float(rec.features.get("sbp_excess_7d", 0.0)),
                        dbp_excess=float(rec.features.get("dbp_excess_7d", 0.0)),
                    ),
                    effective_bounds_of(rec.bounds, policy),
                )
            )
        now_tier, new_tier = decisions
        differ += now_tier.tier != rec.tier
        if now_tier.tier == MINOR and new_tier.tier == MAJOR:
            to_major += 1
        elif now_tier.tier == MAJOR and new_tier.tier == MINOR:
            to_minor += 1
        added.update(set(new_tier.reasons) - set(now_tier.reasons))
    return PolicyImpact(
        days=IMPACT_DAYS, proposals=len(recs), fixed=fixed, to_major=to_major, to_minor=to_minor,
        new_reasons=[(REASON_SHORT.get(code, code.replace("_", " ")), n) for code, n in added.most_common()],
        readings_recounted=recount, differ_from_stored=differ,
    )  # fmt: skip
