"""Safety invariants, property-tested (issue 10): a hypothesis state machine drives the real services — readings
(crises, hypotension, dizziness), bounds and policy changes, model swaps and a tampered artifact, clinician
decisions and patient responses, the stop switch (governance.stop), evaluations on a simulated clock — and checks
the invariants after every step.

Each example runs in a savepoint that is rolled back at its end (what hypothesis.extra.django.TestCase does per
example; a unittest TestCase cannot take the suite's pytest fixtures), on top of the suite's trained and deployed
models, so nothing trains per example. The artifact store is a directory, not the database: a tampered ONNX file is
restored in teardown. The canary circuit breaker is not driven here: it compares arms from the canary pointer's
real start time, and the simulated clock runs in the past (tests/monitoring/test_circuit_breaker.py covers it).

Size: `patient-days` counts patients × simulated days advanced (one reading per patient each time the clock moves,
plus the bursts of readings the other rules add). CI runs rounds of examples until MIN_PATIENT_DAYS are covered;
`make soak` (SAFETY_SOAK=1) runs until ten times that. Both print what they covered. A failure prints the
hypothesis seed and the shrunk steps.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from clinaiops.audit.chain import GENESIS_HASH, event_canonical
from clinaiops.audit.models import AuditAction, AuditEvent
from clinaiops.audit.verify import ledger_row, ledger_verify
from clinaiops.care.models import Alert, AlertKind, AlertPriority, AlertStatus, CareTeam, Patient, SymptomKind
from clinaiops.care.services import ReadingInput, alert_acknowledge, autonomy_resume
from clinaiops.core.errors import Conflict, InvalidTransition, ValidationFailed
from clinaiops.core.models import Role, User
from clinaiops.loops.models import DecisionOutcome, Recommendation, RecommendationStatus, ReviewDecision, Tier
from clinaiops.loops.safety import is_crisis
from clinaiops.loops.services.escalation import alerts_escalate
from clinaiops.loops.services.evaluation import evaluation_run
from clinaiops.loops.services.ingest import reading_ingest, safety_thresholds, symptom_report
from clinaiops.loops.services.respond import recommendation_respond
from clinaiops.loops.services.review import decision_content, review_decide
from governance.models import AIStop, AIStopScope
from governance.policy import EffectiveBounds, bounds_violations
from governance.selectors import autonomy_bounds_current, effective_bounds_of, policy_ceiling
from governance.services import (
    SignatureRefused,
    approval_policy_current,
    approval_policy_revise,
    autonomy_bounds_set,
    signature_verify,
)
from governance.stop import ai_resume, ai_stop, ai_stop_in_force, ai_stop_verify
from inference.artifacts import artifact_path
from inference.models import ModelVersion
from inference.monitoring.models import (
    RULES_ONLY_ARM,
    MonitoringAlert,
    MonitoringAlertKind,
    MonitoringAlertStatus,
    PredictionLog,
)
from inference.monitoring.routing import canary_bucket, canary_salt, routing_for_patient
from inference.monitoring.services.alerts import monitoring_alert_acknowledge
from inference.monitoring.services.canary import canary_breaker_check, canary_stage_advance
from inference.runtime import runtime_cache_clear
from inference.selectors import model_version_for_run, serving_version
from inference.services.serving import serving_pointer_set, serving_rollback
from inference.services.training import training_run_create, training_run_execute
from tests.conftest import model_approve
from tests.factories import PASSWORD, PatientFactory, UserFactory

SOAK = os.environ.get("SAFETY_SOAK") == "1"
# CI: at least this many simulated patient-days (about 45 s on a loaded 2-core machine); the soak ten times that.
MIN_PATIENT_DAYS = 10_000
EXAMPLES = int(os.environ.get("SAFETY_EXAMPLES", "6"))
STEPS = 40
MAX_PATIENTS = 8
# The simulated clock starts this far in the past, so it never passes the real clock (readings from the future are
# refused) however many days an example advances: STEPS × the largest advance, with room to spare.
CLOCK_SPAN = timedelta(days=STEPS * 120 + 30)

DELIVERED_STATES = (RecommendationStatus.DELIVERED, RecommendationStatus.ACKNOWLEDGED, RecommendationStatus.DECLINED)
SAFETY_KINDS = (AlertKind.HYPERTENSIVE_CRISIS, AlertKind.SUSTAINED_HYPOTENSION)


@dataclass
class Coverage:
    examples: int = 0
    steps: int = 0
    patients: int = 0
    patient_days: int = 0
    readings: int = 0
    crises: int = 0
    hypotension_alerts: int = 0
    symptoms: int = 0
    evaluations: int = 0
    autonomous_deliveries: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    responses: int = 0
    swaps: int = 0
    tampers: int = 0
    rules_only: int = 0
    policy_changes: int = 0
    bounds_changes: int = 0
    stops: int = 0
    breaker_trips: int = 0
    stopped_evaluations: int = 0

    def line(self) -> str:
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items())) or "none"
        return (
            f"safety machine covered: {self.examples} examples, {self.steps} steps, {self.patients} patients, "
            f"{self.patient_days} patient-days, {self.readings} readings, {self.crises} crises, "
            f"{self.hypotension_alerts} hypotension alerts, {self.symptoms} symptoms, {self.evaluations} evaluations "
            f"({self.autonomous_deliveries} delivered autonomously, {self.rules_only} rules only), decisions: "
            f"{decisions}, {self.responses} patient responses, {self.swaps} model swaps, {self.tampers} tampered "
            f"artifacts, {self.policy_changes} policy changes, {self.bounds_changes} bounds changes, "
            f"{self.stops} AI stops ({self.stopped_evaluations} evaluations while stopped), "
            f"{self.breaker_trips} canary breaker trips"
        )


@dataclass
class World:
    """What every example starts from: the personas and two approved model versions, one serving production."""

    care_team: CareTeam
    other_team: CareTeam
    clinician: User
    ml_engineer: User
    safety_officer: User
    models: list[ModelVersion]
    originals: dict[str, bytes]  # model sha256 → its ONNX bytes, to restore a tampered artifact
    coverage: Coverage


def _onnx(version: ModelVersion) -> Path:
    return artifact_path(version.sha256, suffix=".onnx")


bp_kinds = st.sampled_from(["high", "normal", "high", "low", "high", "crisis"])
routine_kinds = st.sampled_from(["high", "normal", "high"])


def _bp(kind: str, draw: int) -> tuple[int, int]:
    """A reading of the given kind; `draw` picks one deterministically, so hypothesis shrinks it as a number."""
    if kind == "normal":
        return 110 + draw % 30, 65 + draw % 20
    if kind == "high":
        return 140 + draw % 36, 85 + draw % 20
    if kind == "crisis":
        return (180 + draw % 60, 90 + draw % 30) if draw % 3 else (150 + draw % 50, 120 + draw % 21)
    return 70 + draw % 20, 45 + draw % 15  # low


policy_changes = st.fixed_dictionaries(
    {},
    optional={
        # Crisis thresholds move only stricter than ACC/AHA's 180/120, so a reading ≥180/120 is always a crisis.
        "crisis_sbp": st.integers(160, 180),
        "crisis_dbp": st.integers(100, 120),
        "hypotension_sbp": st.integers(80, 100),
        "hypotension_dbp": st.integers(50, 65),
        "hypotension_window_hours": st.integers(6, 48),
        "hypotension_min_readings": st.integers(1, 3),
        "max_step_change": st.integers(0, 2),
        "min_step": st.integers(0, 2),
        "max_step": st.integers(4, 6),
        "min_confidence": st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9]),
        "min_readings": st.integers(1, 8),
        "min_readings_window_days": st.integers(3, 14),
    },
)


def machine_for(world: World) -> type[RuleBasedStateMachine]:
    coverage = world.coverage

    class SafetyMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            coverage.examples += 1
            self.clock = timezone.now() - CLOCK_SPAN
            self.patients: list[Patient] = []
            self.seen_recs: set[int] = set()
            self.tampered: set[int] = set()
            self.signed: dict[int, tuple[Any, ...]] = {}
            # Recommendations that must not have reached the patient on their own, and why.
            self.must_be_major: dict[int, str] = {}
            self.bad_passwords = 0
            self.canary_tried = False
            head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
            self.chain_seq, self.chain_hash = head if head else (0, GENESIS_HASH)

        def teardown(self) -> None:
            try:
                for version in world.models:
                    if version.pk in self.tampered:
                        _onnx(version).write_bytes(world.originals[version.sha256])
                runtime_cache_clear()
                result = ledger_verify()
                assert result.ok, result.problem
            finally:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

        # --- helpers -------------------------------------------------------------------------------------------

        def _patient(self, i: int) -> Patient:
            patient = self.patients[i % len(self.patients)]
            patient.refresh_from_db()
            return patient

        def _tick(self) -> datetime:
            """A fresh instant just before the clock: readings never share a (patient, time, source) key."""
            coverage.readings += 1
            return self.clock - timedelta(seconds=coverage.readings % 86_400)

        def _ingest(self, patient: Patient, sbp: int, dbp: int, taken_at: datetime) -> None:
            policy = approval_policy_current()
            crisis = is_crisis(sbp, dbp, safety_thresholds(policy))
            assert crisis or not (sbp >= 180 or dbp >= 120)
            open_before = Alert.objects.filter(
                patient=patient, kind=AlertKind.HYPERTENSIVE_CRISIS, status=AlertStatus.OPEN
            ).first()
            result = reading_ingest(
                actor=patient.user, patient=patient, data=ReadingInput(taken_at, sbp, dbp, 72, "cuff"), now=self.clock
            )
            assert result.created
            patient.refresh_from_db()
            coverage.hypotension_alerts += sum(a.kind == AlertKind.SUSTAINED_HYPOTENSION for a in result.alerts)
            if not crisis:
                return
            coverage.crises += 1
            # The same ingest opened a P0 alert for this reading, or one was already open for the patient.
            if open_before is None:
                [opened] = [a for a in result.alerts if a.kind == AlertKind.HYPERTENSIVE_CRISIS]
                assert opened.reading_id == result.reading.pk
                assert opened.priority == AlertPriority.P0
                assert AuditEvent.objects.filter(
                    action=AuditAction.ALERT_OPENED, object_type="alert", object_id=str(opened.pk)
                ).exists()
            else:
                assert Alert.objects.get(pk=open_before.pk).status == AlertStatus.OPEN
            assert patient.autonomy_paused, "a crisis must pause autonomy"

        # --- patients and readings -----------------------------------------------------------------------------

        @initialize(n=st.integers(2, 5), steps=st.lists(st.integers(0, 6), min_size=5, max_size=5))
        def enrol(self, n: int, steps: list[int]) -> None:
            for i in range(n):
                self._enrol(steps[i])

        def _enrol(self, step: int, *, simulated: bool = True) -> Patient:
            n = coverage.patients = coverage.patients + 1
            patient = PatientFactory(
                user=UserFactory(username=f"prop_pat_{n}", role=Role.PATIENT),
                care_team=world.care_team,
                code=f"P-H{n:06d}",
                current_step=step,
                enrolled_at=self.clock if simulated else timezone.now(),
            )
            if simulated:  # on the simulated clock; the others live in real time (canary_breaker_trip)
                self.patients.append(patient)
            return patient

        @precondition(lambda self: len(self.patients) < MAX_PATIENTS)
        @rule(step=st.integers(0, 6))
        def add_patient(self, step: int) -> None:
            self._enrol(step)

        @rule(i=st.integers(0, MAX_PATIENTS), kind=bp_kinds, n=st.integers(1, 6), draw=st.integers(0, 10**6))
        def readings(self, i: int, kind: str, n: int, draw: int) -> None:
            """n readings of one kind over the last days, e.g. a week of high home readings or a crisis."""
            patient = self._patient(i)
            for j in range(n):
                sbp, dbp = _bp(kind, draw + 7 * j)
                self._ingest(patient, sbp, dbp, self._tick() - timedelta(hours=8 * j))

        @rule(i=st.integers(0, MAX_PATIENTS), kind=st.sampled_from([SymptomKind.DIZZINESS, SymptomKind.SYNCOPE,
                                                                    SymptomKind.HEADACHE]))  # fmt: skip
        def symptom(self, i: int, kind: str) -> None:
            patient = self._patient(i)
            coverage.symptoms += 1
            alerts = symptom_report(actor=patient.user, patient=patient, kind=kind, reported_at=self._tick())
            coverage.hypotension_alerts += len(alerts)
            if alerts:
                patient.refresh_from_db()
                assert patient.autonomy_paused

        @rule(days=st.integers(30, 120), kinds=st.lists(routine_kinds, min_size=MAX_PATIENTS, max_size=MAX_PATIENTS))
        def advance_(self, days: int, kinds: list[str]) -> None:
            self.advance(days, kinds)  # twice the weight: the simulated months are what the size is counted in

        @rule(days=st.integers(30, 120), kinds=st.lists(routine_kinds, min_size=MAX_PATIENTS, max_size=MAX_PATIENTS))
        def advance(self, days: int, kinds: list[str]) -> None:
            """The simulated clock moves on; every patient sends a reading on the new day."""
            self.clock += timedelta(days=days)
            assert self.clock <= timezone.now()
            coverage.patient_days += days * len(self.patients)
            for patient, kind in zip(self.patients, kinds, strict=False):
                patient.refresh_from_db()
                sbp, dbp = _bp(kind, days * 31 + self.patients.index(patient))
                self._ingest(patient, sbp, dbp, self._tick())

        @rule(i=st.integers(0, MAX_PATIENTS), kind=bp_kinds, draw=st.integers(0, 10**6))
        def week_then_evaluate_(self, i: int, kind: str, draw: int) -> None:
            self.week_then_evaluate(i, kind, draw)  # twice the weight: the loop the invariants are about

        @rule(i=st.integers(0, MAX_PATIENTS), kind=bp_kinds, draw=st.integers(0, 10**6))
        def week_then_evaluate(self, i: int, kind: str, draw: int) -> None:
            """Readings over the last days, then the scheduled evaluation: enough readings to act alone."""
            self.readings(i, kind, 7, draw)
            self.evaluate(i)

        # --- evaluations, decisions, responses -----------------------------------------------------------------

        @rule(i=st.integers(0, MAX_PATIENTS))
        def evaluate(self, i: int) -> None:
            patient = self._patient(i)
            policy = approval_policy_current()
            bounds = autonomy_bounds_current(patient=patient)
            open_alert = Alert.objects.filter(patient=patient, kind__in=SAFETY_KINDS, status=AlertStatus.OPEN).exists()
            paused = patient.autonomy_paused
            stopped = ai_stop_in_force(patient=patient)
            rec = evaluation_run(patient=patient, as_of=self.clock)
            coverage.evaluations += 1
            if rec is None or rec.pk in self.seen_recs:
                return
            self.seen_recs.add(rec.pk)
            # Tiered under the policy and the patient's bounds in force when it was made.
            assert rec.policy_id == policy.pk
            assert rec.bounds_id == (bounds.pk if bounds else None)
            if open_alert:
                self.must_be_major[rec.pk] = "open P0 alert"
            if paused:
                self.must_be_major[rec.pk] = "autonomy paused"
            if stopped is not None:
                # The AI is stopped for this patient's clinic: rules only, no model output, and it waits for review.
                coverage.stopped_evaluations += 1
                self.must_be_major[rec.pk] = "AI stopped"
                assert rec.arm == RULES_ONLY_ARM and rec.probabilities == {} and "ai_stopped" in rec.tier_reasons
            if rec.model_version_id in self.tampered:
                self.must_be_major[rec.pk] = "tampered artifact"
                assert rec.arm == RULES_ONLY_ARM
            if rec.arm == RULES_ONLY_ARM:
                coverage.rules_only += 1
            if rec.tier == Tier.MINOR:
                coverage.autonomous_deliveries += 1

        def _pending(self) -> list[Recommendation]:
            return list(
                Recommendation.objects.filter(
                    patient__in=self.patients, status=RecommendationStatus.PENDING_REVIEW
                ).order_by("pk")
            )

        @rule(
            choice=st.integers(0, 10**6),
            outcome=st.sampled_from(DecisionOutcome.values),
            to_step=st.integers(0, 6),
        )
        def decide(self, choice: int, outcome: str, to_step: int) -> None:
            pending = self._pending()
            if not pending:
                return
            rec = pending[choice % len(pending)]
            if outcome == DecisionOutcome.MODIFIED and to_step == rec.to_step:
                to_step = (to_step + 1) % 7
            decision = review_decide(
                actor=world.clinician, recommendation=rec, outcome=outcome, reason="Reviewed the readings.",
                password=PASSWORD, to_step=to_step if outcome == DecisionOutcome.MODIFIED else None,
            )  # fmt: skip
            coverage.decisions[outcome] += 1
            decision.refresh_from_db()
            self.signed[decision.pk] = self._decision_state(decision)

        @rule(choice=st.integers(0, 10**6), outcome=st.sampled_from(DecisionOutcome.values), to_step=st.integers(0, 6))
        def decide_(self, choice: int, outcome: str, to_step: int) -> None:
            self.decide(choice, outcome, to_step)  # twice the weight

        @precondition(lambda self: self.bad_passwords < 3)
        @rule(choice=st.integers(0, 10**6))
        def decide_with_wrong_password(self, choice: int) -> None:
            """A wrong password signs nothing and leaves the proposal waiting."""
            pending = self._pending()
            if not pending:
                return
            rec = pending[choice % len(pending)]
            self.bad_passwords += 1
            with pytest.raises(SignatureRefused):
                review_decide(
                    actor=world.clinician, recommendation=rec, outcome=DecisionOutcome.ACCEPTED, reason="ok",
                    password="not the password",
                )  # fmt: skip
            rec.refresh_from_db()
            assert rec.status == RecommendationStatus.PENDING_REVIEW
            assert not ReviewDecision.objects.filter(recommendation=rec).exists()

        @staticmethod
        def _decision_state(decision: ReviewDecision) -> tuple[Any, ...]:
            s = decision.signature
            return (
                decision.recommendation_id, decision.outcome, decision.to_step, decision.reason, decision.decided_at,
                decision.clinician_id, s.pk, s.signer_id, s.signed_at, s.meaning, s.record_id, s.record_sha256,
            )  # fmt: skip

        @rule(choice=st.integers(0, 10**6), response=st.sampled_from(["acknowledge", "decline"]))
        def respond(self, choice: int, response: str) -> None:
            delivered = list(
                Recommendation.objects.filter(patient__in=self.patients, status=RecommendationStatus.DELIVERED)
                .select_related("patient__user")
                .order_by("pk")
            )
            if not delivered:
                return
            rec = delivered[choice % len(delivered)]
            recommendation_respond(actor=rec.patient.user, recommendation=rec, response=response)
            coverage.responses += 1

        # --- alerts ----------------------------------------------------------------------------------------------

        @rule(i=st.integers(0, MAX_PATIENTS), op=st.sampled_from(["acknowledge", "resume", "escalate"]))
        def alert_care(self, i: int, op: str) -> None:
            """A clinician acknowledges the patient's open safety alerts or resumes autonomy; or the escalation
            sweep runs."""
            patient = self._patient(i)
            if op == "escalate":
                alerts_escalate()
            elif op == "acknowledge":
                for alert in Alert.objects.filter(patient=patient, kind__in=SAFETY_KINDS, status=AlertStatus.OPEN):
                    alert_acknowledge(
                        alert=alert, actor=world.clinician, disposition="contacted_patient", note="Called the patient"
                    )
            else:
                open_alert = Alert.objects.filter(
                    patient=patient, kind__in=SAFETY_KINDS, status=AlertStatus.OPEN
                ).exists()
                try:
                    autonomy_resume(actor=world.clinician, patient=patient)
                except InvalidTransition:
                    assert open_alert, "resuming was refused with no safety alert open"
                else:
                    assert not open_alert, "autonomy resumed while a safety alert is open"

        # --- governance --------------------------------------------------------------------------------------------

        @rule(changes=policy_changes)
        def revise_policy(self, changes: dict[str, Any]) -> None:
            try:
                approval_policy_revise(actor=world.safety_officer, changes=changes, password=PASSWORD)
            except ValidationFailed:
                return  # nothing changed, or the lowest step above the highest
            coverage.policy_changes += 1

        @rule(
            i=st.integers(0, MAX_PATIENTS),
            enabled=st.booleans(),
            max_step_change=st.integers(0, 2),
            min_step=st.integers(0, 6),
            max_step=st.integers(0, 6),
            min_confidence=st.sampled_from([0.5, 0.7, 0.8, 0.85, 0.95]),
            min_readings=st.integers(1, 10),
        )
        def set_bounds(
            self, i: int, enabled: bool, max_step_change: int, min_step: int, max_step: int, min_confidence: float,
            min_readings: int,
        ) -> None:  # fmt: skip
            patient = self._patient(i)
            requested = EffectiveBounds(max_step_change, min_step, max_step, min_confidence, min_readings, enabled)
            wider = bool(bounds_violations(requested, policy_ceiling(approval_policy_current())))
            try:
                autonomy_bounds_set(actor=world.clinician, patient=patient, requested=requested, password=PASSWORD)
            except ValidationFailed:
                assert wider, "bounds within the policy were refused"
                return
            assert not wider, "bounds wider than the policy were signed"
            coverage.bounds_changes += 1

        # --- models ------------------------------------------------------------------------------------------------

        @rule(
            op=st.sampled_from(["production", "tamper", "restore", "shadow", "rollback", "clear"]),
            which=st.integers(0, 1),
            offset=st.integers(0, 10**6),
        )
        def model_event(self, op: str, which: int, offset: int) -> None:
            """Swap the production or shadow model, roll production back or clear it, tamper with a model's ONNX
            bytes, or restore them (an engineer then acknowledges the integrity alerts, releasing the hold)."""
            version = world.models[which]
            if op in ("production", "shadow", "clear"):
                serving_pointer_set(
                    arm="shadow" if op == "shadow" else "production", version=None if op == "clear" else version,
                    actor=world.ml_engineer, reason="property test swap",
                )  # fmt: skip
                coverage.swaps += 1
            elif op == "rollback":
                try:
                    serving_rollback(arm="production", actor=world.safety_officer, reason="property test rollback")
                except InvalidTransition:
                    return
                coverage.swaps += 1
            elif op == "tamper":
                data = bytearray(world.originals[version.sha256])
                data[64 + offset % (len(data) - 64)] ^= 0xFF
                _onnx(version).write_bytes(bytes(data))
                self.tampered.add(version.pk)
                coverage.tampers += 1
            elif self.tampered:
                for model in world.models:
                    if model.pk in self.tampered:
                        _onnx(model).write_bytes(world.originals[model.sha256])
                self.tampered.clear()
                for alert in MonitoringAlert.objects.filter(
                    kind=MonitoringAlertKind.MODEL_INTEGRITY, status=MonitoringAlertStatus.OPEN
                ):
                    monitoring_alert_acknowledge(actor=world.ml_engineer, alert_id=alert.pk)

        @precondition(lambda self: not self.tampered and not self.canary_tried)
        @rule(n=st.integers(2, 3))
        def canary_breaker_trip(self, n: int) -> None:
            """Model B as a canary at 50 % beside A in production: clinicians reject the canary's proposals and
            accept production's, and the circuit breaker rolls the canary back. In real time, on patients of its
            own (the breaker measures from the canary pointer's real start), with autonomy off for them so every
            proposal waits for a clinician."""
            self.canary_tried = True
            if ai_stop_in_force(care_team=world.care_team) is not None:
                return  # rules only: no model proposals to judge the canary by
            production, candidate = world.models
            serving_pointer_set(arm="production", version=production, actor=world.ml_engineer, reason="canary test")
            serving_pointer_set(arm="canary", version=candidate, actor=world.ml_engineer, reason="canary test")
            canary_stage_advance(actor=world.ml_engineer)
            canary_stage_advance(actor=world.ml_engineer)  # 5 → 20 → 50 %
            coverage.swaps += 2
            on: list[Patient] = []
            off: list[Patient] = []
            while len(on) < n or len(off) < n:
                patient = self._enrol(2, simulated=False)
                (on if canary_bucket(patient.pk, canary_salt(candidate)) < 50 else off).append(patient)
            ceiling = policy_ceiling(approval_policy_current())
            now = timezone.now()
            for patient, outcome in [(p, DecisionOutcome.ACCEPTED) for p in off[:n]] + [
                (p, DecisionOutcome.REJECTED) for p in on[:n]
            ]:
                autonomy_bounds_set(
                    actor=world.clinician, patient=patient, requested=replace(ceiling, autonomy_enabled=False),
                    password=PASSWORD,
                )  # fmt: skip
                for k in range(3):
                    reading_ingest(
                        actor=patient.user, patient=patient,
                        data=ReadingInput(now - timedelta(hours=12 * k, minutes=1), 168, 99, 70, "cuff"),
                    )  # fmt: skip
                rec = evaluation_run(patient=patient)
                coverage.evaluations += 1
                assert rec is not None and rec.status == RecommendationStatus.PENDING_REVIEW
                assert rec.arm == ("canary" if patient in on else "production")
                self.seen_recs.add(rec.pk)
                decision = review_decide(
                    actor=world.clinician, recommendation=rec, outcome=outcome, reason="Clinical judgement.",
                    password=PASSWORD,
                )  # fmt: skip
                coverage.decisions[outcome] += 1
                self.signed[decision.pk] = self._decision_state(decision)
            event = canary_breaker_check()
            assert event is not None and "override_rate" in event.reasons
            assert serving_version(arm="canary") is None
            assert routing_for_patient(on[0].pk).arm == "production"
            coverage.breaker_trips += 1

        # --- the stop switch (governance.stop) ------------------------------------------------------------------

        @rule(scope=st.sampled_from(["global", "own clinic", "other clinic"]))
        def stop_ai(self, scope: str) -> None:
            team = {"global": None, "own clinic": world.care_team, "other clinic": world.other_team}[scope]
            kind = AIStopScope.GLOBAL if team is None else AIStopScope.CARE_TEAM
            already = AIStop.objects.filter(scope=kind, care_team=team, resumed_at__isnull=True).exists()
            try:
                ai_stop(actor=world.safety_officer, password=PASSWORD, scope=kind, care_team=team, reason="Drill.")
            except Conflict:
                assert already, "a stop was refused with none in force for that scope"
                return
            assert not already, "a second stop of the same scope was signed"
            coverage.stops += 1

        @rule(choice=st.integers(0, 10**6))
        def resume_ai(self, choice: int) -> None:
            in_force = list(AIStop.objects.filter(resumed_at__isnull=True).order_by("pk"))
            if in_force:
                stop = in_force[choice % len(in_force)]
                ai_resume(actor=world.safety_officer, password=PASSWORD, stop_id=stop.pk, reason="Drill over.")

        # --- invariants ---------------------------------------------------------------------------------------------

        @invariant()
        def count_step(self) -> None:
            coverage.steps += 1

        @invariant()
        def nothing_outside_bounds_reaches_a_patient_unsigned(self) -> None:
            recs = Recommendation.objects.filter(status__in=DELIVERED_STATES).select_related(
                "policy", "bounds", "decision__signature", "model_version"
            )
            for rec in recs:
                decision = getattr(rec, "decision", None)
                if decision is not None:
                    assert signature_verify(
                        signature=decision.signature, record_type="review_decision",
                        record_id=f"recommendation:{rec.pk}", content=decision_content(decision),
                    ), f"recommendation {rec.pk}: the signature does not match the decision"  # fmt: skip
                    assert rec.final_step == decision.to_step
                    continue
                bounds = effective_bounds_of(rec.bounds, rec.policy)
                problems = []
                # Feedback (DESIGN §2): a maintain with no safety reason; it changes nothing, so confidence and the
                # autonomy switch, which govern changes, do not apply to it.
                feedback = rec.tier == Tier.FEEDBACK
                if rec.tier not in (Tier.MINOR, Tier.FEEDBACK):
                    problems.append(f"tier {rec.tier}")
                if feedback and rec.to_step != rec.from_step:
                    problems.append("feedback that changes the step")
                if abs(rec.to_step - rec.from_step) > bounds.max_step_change:
                    problems.append("step change over bound")
                if not bounds.min_step <= rec.to_step <= bounds.max_step:
                    problems.append("outside step range")
                if not feedback and rec.confidence < bounds.min_confidence:
                    problems.append("confidence under the minimum")
                if not feedback and not bounds.autonomy_enabled:
                    problems.append("autonomy disabled")
                if rec.arm == RULES_ONLY_ARM:
                    problems.append("rules only")
                if rec.final_step != rec.to_step:
                    problems.append("final step differs")
                if rec.pk in self.must_be_major:
                    problems.append(self.must_be_major[rec.pk])
                assert not problems, f"recommendation {rec.pk} reached the patient unsigned: {problems}"

        @invariant()
        def stops_are_signed(self) -> None:
            for stop in AIStop.objects.select_related("stop_signature", "resume_signature"):
                assert ai_stop_verify(stop), f"AI stop {stop.pk}: a signature does not match"

        @invariant()
        def open_safety_alerts_keep_autonomy_paused(self) -> None:
            open_for = set(
                Alert.objects.filter(kind__in=SAFETY_KINDS, status=AlertStatus.OPEN).values_list(
                    "patient_id", flat=True
                )
            )
            running = set(Patient.objects.filter(pk__in=open_for, autonomy_paused=False).values_list("code", flat=True))
            assert not running, f"autonomy runs while a P0 alert is open: {sorted(running)}"

        @invariant()
        def delivered_recommendations_are_recorded(self) -> None:
            recs = list(
                Recommendation.objects.filter(status__in=DELIVERED_STATES)
                .select_related("model_version", "policy")
                .values_list("pk", "model_version__sha256", "arm", "policy__version", "tier")
            )
            if not recs:
                return
            events: dict[str, dict[str, Any]] = {}
            for object_id, action, payload in AuditEvent.objects.filter(
                object_type="recommendation", object_id__in=[str(r[0]) for r in recs]
            ).values_list("object_id", "action", "payload"):
                events.setdefault(object_id, {})[action] = json.loads(payload)
            for pk, sha, arm, policy_version, tier in recs:
                assert sha and arm and policy_version, f"recommendation {pk} lacks its version, arm or policy"
                seen = events.get(str(pk), {})
                created = seen.get(AuditAction.RECOMMENDATION_CREATED)
                assert created is not None, f"recommendation {pk}: no created event"
                assert (created["model_sha256"], created["arm"], created["policy_version"]) == (
                    sha, arm, policy_version
                )  # fmt: skip
                delivered_by = (
                    AuditAction.RECOMMENDATION_DELIVERED
                    if tier in (Tier.MINOR, Tier.FEEDBACK)
                    else AuditAction.REVIEW_DECIDED
                )
                assert delivered_by in seen, f"recommendation {pk}: no {delivered_by} event"

        @invariant()
        def audit_chain_extends(self) -> None:
            """Cheap, per step: each new event links to the previous one and hashes to what it stores."""
            while (row := ledger_row(self.chain_seq + 1)) is not None:
                assert row[11] == self.chain_hash, f"seq {row[0]} does not link to seq {self.chain_seq}"
                assert hashlib.sha256(event_canonical(*row[:12])).hexdigest() == row[12], f"seq {row[0]} edited"  # type: ignore[arg-type]
                self.chain_seq, self.chain_hash = row[0], row[12]

        @invariant()
        def signed_decisions_are_final(self) -> None:
            decisions = ReviewDecision.objects.filter(pk__in=list(self.signed)).select_related(
                "signature", "recommendation"
            )
            found = {d.pk: d for d in decisions}
            assert set(found) == set(self.signed), "a signed decision disappeared"
            for pk, snapshot in self.signed.items():
                decision = found[pk]
                assert self._decision_state(decision) == snapshot, f"decision {pk} changed after signing"
                rec = decision.recommendation
                assert rec.status in DELIVERED_STATES, f"decided recommendation {rec.pk} is now {rec.status}"
                assert rec.final_step == decision.to_step

        @invariant()
        def override_rate_per_model_matches_the_decisions(self) -> None:
            expected: dict[int, Counter[str]] = {}
            for version_id, arm, outcome in ReviewDecision.objects.values_list(
                "recommendation__model_version_id", "recommendation__arm", "outcome"
            ):
                if arm == RULES_ONLY_ARM:
                    continue  # no model output was logged for a rules-only proposal
                counts = expected.setdefault(version_id, Counter())
                counts["decided"] += 1
                counts["overridden"] += outcome != DecisionOutcome.ACCEPTED
            logged: dict[int, Counter[str]] = {}
            for version_id, overridden in PredictionLog.objects.filter(decided_at__isnull=False).values_list(
                "model_version_id", "overridden"
            ):
                counts = logged.setdefault(version_id, Counter())
                counts["decided"] += 1
                counts["overridden"] += bool(overridden)
            assert {k: +v for k, v in logged.items()} == {k: +v for k, v in expected.items()}

    return SafetyMachine


def _second_model(deployed: ModelVersion, ml_engineer: User, safety_officer: User) -> ModelVersion:
    """Another approved version (stronger regularisation, different ONNX bytes), as tests/monitoring trains it."""
    run = training_run_create(actor=ml_engineer, snapshot=deployed.training_run.snapshot, params={"C": 0.95}, seed=11)
    version = model_version_for_run(training_run_execute(run_id=run.pk))
    assert version is not None and version.sha256 != deployed.sha256
    return model_approve(version, ml_engineer, safety_officer)


@pytest.mark.slow
def test_safety_invariants_hold_under_random_operations(
    settings: Any,
    care_team: CareTeam,
    other_team: CareTeam,
    clinician: User,
    ml_engineer: User,
    safety_officer: User,
    deployed_model: ModelVersion,
) -> None:
    # Serving re-stats a verified model's files at most every MODEL_RESTAT_SECONDS (1 s; a stat costs about as much
    # as scoring), so a file overwritten within that second is seen on the next stat. The machine takes steps far
    # faster than a second: it stats on every call, so "tampered" means "refused from the next evaluation on".
    settings.MODEL_RESTAT_SECONDS = 0
    settings.CANARY_MIN_DECISIONS = 2  # the breaker judges a canary from two decisions on each arm
    models = [deployed_model, _second_model(deployed_model, ml_engineer, safety_officer)]
    world = World(
        care_team=care_team,
        other_team=other_team,
        clinician=clinician,
        ml_engineer=ml_engineer,
        safety_officer=safety_officer,
        models=models,
        originals={m.sha256: _onnx(m).read_bytes() for m in models},
        coverage=Coverage(),
    )
    # Rounds of EXAMPLES examples until the simulated patient-days reach the target (CI: MIN_PATIENT_DAYS, the soak
    # ten times that), so the size holds whatever hypothesis draws, and each CI run explores new examples.
    target = MIN_PATIENT_DAYS * (10 if SOAK else 1)
    for _ in range(target // 500):
        run_state_machine_as_test(
            machine_for(world),
            settings=hypothesis_settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
        if world.coverage.patient_days >= target:
            break
    print("\n" + world.coverage.line())
    assert world.coverage.patient_days >= target, world.coverage.line()
