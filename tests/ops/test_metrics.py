"""/metrics: who may scrape it, and that what an on-call engineer reads there matches what happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.care.models import Alert, AlertKind, AlertPriority, AlertStatus, Patient
from clinaiops.core.models import User
from clinaiops.loops.models import Recommendation, RecommendationStatus, Tier
from clinaiops.ops.collectors import ClinicalStateCollector
from governance.models import ApprovalPolicy
from inference.models import DatasetSnapshot, ModelVersion
from inference.monitoring.models import DriftReport, MonitoringAlert
from tests.ops.conftest import Scrape, celery_task, scrape

# --- who may scrape -------------------------------------------------------------------------------------------


def test_without_a_token_only_a_loopback_scraper_is_answered(db: None) -> None:
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 403
    # A reverse proxy on the same host makes every client look local: a proxied request is refused.
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_with_a_token_configured_only_the_bearer_token_is_answered(db: None, settings: object) -> None:
    settings.METRICS_TOKEN = "s3cret-scrape-token"  # type: ignore[attr-defined]
    remote = Client(REMOTE_ADDR="10.20.30.40")
    refused = remote.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert refused.content == b""
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 401
    # Loopback is no exemption once a token is configured.
    assert Client().get("/metrics").status_code == 401
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200


def test_probes_and_scrape_answer_a_host_name_outside_allowed_hosts_and_need_no_session(db: None) -> None:
    # Prometheus and load balancers address the pod by IP, which is not in ALLOWED_HOSTS.
    client = Client(HTTP_HOST="10.0.0.5:8000")
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert "sessionid" not in client.get("/metrics").cookies
    assert client.get("/api/v1/me/").status_code == 400  # the host check still guards everything else


def test_metrics_refuse_writes(db: None) -> None:
    assert Client().post("/metrics").status_code == 405


# --- request metrics ------------------------------------------------------------------------------------------


def test_request_latency_and_errors_are_labelled_by_route_name_never_by_path(
    patient: Patient, api_client_for: Callable[[User], APIClient], clinician: User,
    portal_client_for: Callable[[User], Client],
) -> None:  # fmt: skip
    client = api_client_for(patient.user)
    before = scrape()
    assert client.get("/api/v1/recommendations/987654/").status_code == 404
    assert client.get("/api/v1/recommendations/").status_code == 200
    assert portal_client_for(clinician).get(f"/patients/{patient.pk}/").status_code == 200
    after = scrape()

    views = after.label_values("clinaiops_http_request_duration_seconds_count", "view")
    assert {"api:recommendation", "api:recommendations", "portal:patient"} <= views
    for label in views | after.label_values("clinaiops_http_responses_total", "view"):
        assert "987654" not in label and str(patient.pk) not in label.split(":")[-1] and "/" not in label
        assert patient.code not in label

    def count(s: Scrape, view: str, status_class: str) -> float:
        return s.total("clinaiops_http_responses_total", view=view, status_class=status_class)

    assert count(after, "api:recommendation", "4xx") - count(before, "api:recommendation", "4xx") == 1
    assert count(after, "api:recommendations", "2xx") - count(before, "api:recommendations", "2xx") == 1
    timed = after.total("clinaiops_http_request_duration_seconds_count", view="portal:patient", method="GET")
    assert (
        timed - before.total("clinaiops_http_request_duration_seconds_count", view="portal:patient", method="GET") == 1
    )


def test_a_path_that_matches_no_route_gets_one_label_whatever_the_path(db: None) -> None:
    client = Client()
    for probe in ("/wp-login.php", "/.env", "/patients/123/../../etc/passwd"):
        client.get(probe)
    views = scrape().label_values("clinaiops_http_responses_total", "view")
    assert not any("wp-login" in v or ".env" in v or "passwd" in v for v in views)
    assert "unmatched" in views


# --- clinical counters ----------------------------------------------------------------------------------------


def _reading(minutes_ago: int, systolic: int = 150, diastolic: int = 92) -> dict[str, object]:
    taken = (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()
    return {"taken_at": taken, "systolic": systolic, "diastolic": diastolic, "heart_rate": 70, "source": "cuff"}


def test_a_reading_is_counted_once_when_stored_and_not_when_resent(
    patient: Patient, api_client_for: Callable[[User], APIClient], django_capture_on_commit_callbacks: object
) -> None:
    client = api_client_for(patient.user)
    before = scrape().value("clinaiops_readings_ingested_total", source="cuff") or 0.0
    body = _reading(5)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert client.post("/api/v1/readings/", body, format="json").status_code == 201
        assert client.post("/api/v1/readings/", body, format="json").status_code == 200  # the device resent it
        refused = _reading(4, systolic=400)
        assert client.post("/api/v1/readings/", refused, format="json").status_code == 400
    assert scrape().value("clinaiops_readings_ingested_total", source="cuff") == before + 1


def test_an_evaluation_is_counted_by_tier_and_arm_and_its_task_is_timed(
    patient: Patient, deployed_model: ModelVersion, api_client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: object,
) -> None:  # fmt: skip
    client = api_client_for(patient.user)
    for hours in range(8):
        assert client.post("/api/v1/readings/", _reading(60 * 12 * hours + 1), format="json").status_code == 201
    before = scrape()
    task = celery_task("clinaiops.loops.tasks.evaluation_run")
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        task.delay(patient.pk)
    rec = Recommendation.objects.get(patient=patient)
    after = scrape()

    counted = after.total("clinaiops_evaluations_total", tier=rec.tier, arm=rec.arm)
    assert counted - before.total("clinaiops_evaluations_total", tier=rec.tier, arm=rec.arm) == 1
    assert rec.arm == "production"
    runs = "clinaiops_celery_task_duration_seconds_count"
    name = "clinaiops.loops.tasks.evaluation_run"
    assert after.total(runs, task=name, state="SUCCESS") - before.total(runs, task=name, state="SUCCESS") == 1


def test_an_unacknowledged_p0_shows_past_escalation_until_escalated_then_counts_the_escalation(
    patient: Patient, settings: object
) -> None:
    settings.ALERT_ESCALATION_MINUTES = 15  # type: ignore[attr-defined]
    Alert.objects.create(
        patient=patient, kind=AlertKind.HYPERTENSIVE_CRISIS, priority=AlertPriority.P0,
        opened_at=timezone.now() - timedelta(minutes=40),
    )  # fmt: skip
    Alert.objects.create(
        patient=patient, kind=AlertKind.SUSTAINED_HYPOTENSION, priority=AlertPriority.P0, opened_at=timezone.now()
    )
    before = scrape()
    assert before.value("clinaiops_alerts_open", priority="P0", kind="hypertensive_crisis") == 1
    assert before.value("clinaiops_alerts_open_past_escalation", priority="P0") == 1
    assert before.value("clinaiops_alerts_escalation_overdue", priority="P0") == 1
    assert (before.value("clinaiops_alert_oldest_open_age_seconds", priority="P0") or 0) >= 40 * 60

    celery_task("clinaiops.loops.tasks.alerts_escalate").delay()
    after = scrape()
    assert after.value("clinaiops_alerts_escalation_overdue", priority="P0") == 0
    assert after.value("clinaiops_alerts_open_escalated", priority="P0") == 1
    assert after.value("clinaiops_alerts_open_past_escalation", priority="P0") == 1  # still nobody acknowledged
    escalations = "clinaiops_alert_escalations_total"
    assert (after.value(escalations) or 0) - (before.value(escalations) or 0) == 1

    Alert.objects.update(status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now())
    acknowledged = scrape()
    assert acknowledged.value("clinaiops_alerts_open_past_escalation", priority="P0") == 0
    assert acknowledged.value("clinaiops_alerts_open", priority="P0", kind="hypertensive_crisis") is None


# --- state read from the database -----------------------------------------------------------------------------


def test_reviews_pending_are_counted_by_age_and_decided_ones_drop_out(
    patient: Patient, model_version_row: ModelVersion
) -> None:
    policy = ApprovalPolicy.objects.create(version=900, created_at=timezone.now())
    now = timezone.now()

    def proposal(hours_ago: float, status: str = RecommendationStatus.PENDING_REVIEW, tier: str = Tier.MAJOR) -> None:
        Recommendation.objects.create(
            patient=patient, created_at=now - timedelta(hours=hours_ago), trigger="on_demand",
            evaluation_date=now.date(), model_version=model_version_row, arm="production", policy=policy,
            feature_set_version="ops-test", features={}, probabilities={}, top_factors=[], action="increase",
            from_step=2, to_step=3, confidence=0.7, tier=tier, status=status, reason_text="",
        )  # fmt: skip

    for hours in (0.2, 3, 5, 30):
        proposal(hours)
    proposal(50, status=RecommendationStatus.DELIVERED)  # decided: no longer waiting
    proposal(60, tier=Tier.MINOR, status=RecommendationStatus.DELIVERED)
    s = scrape()
    assert s.value("clinaiops_reviews_pending", age="under_1h") == 1
    assert s.value("clinaiops_reviews_pending", age="1h_to_24h") == 2
    assert s.value("clinaiops_reviews_pending", age="over_24h") == 1
    oldest = s.value("clinaiops_review_oldest_pending_age_seconds") or 0
    assert 30 * 3600 <= oldest < 31 * 3600


def test_the_ledger_head_and_the_unwitnessed_tail_follow_checkpoints(db: None, settings: object) -> None:
    from django.db import transaction

    with transaction.atomic():
        for i in range(3):
            audit_record(action=AuditAction.EXPORT_CREATED, object_type="ops-test", object_id=i, system_reason="t")
    later = timezone.now() + timedelta(hours=2)
    state = Scrape(_exposition(ClinicalStateCollector().state(later)))
    assert state.value("clinaiops_audit_head_seq") == 3
    assert state.value("clinaiops_audit_checkpoint_seq") == 0
    assert (state.value("clinaiops_audit_oldest_unwitnessed_age_seconds") or 0) >= 2 * 3600 - 60
    assert state.value("clinaiops_audit_checkpoint_age_seconds") is None  # no checkpoint yet

    checkpoint = audit_checkpoint_create(reason="ops-test")
    assert checkpoint is not None
    state = Scrape(_exposition(ClinicalStateCollector().state(later)))
    # The checkpoint's own "checkpoint created" event follows it and needs no later checkpoint.
    assert state.value("clinaiops_audit_head_seq") == checkpoint.seq + 1
    assert state.value("clinaiops_audit_checkpoint_seq") == checkpoint.seq
    assert state.value("clinaiops_audit_oldest_unwitnessed_age_seconds") == 0
    assert (state.value("clinaiops_audit_checkpoint_age_seconds") or 0) >= 2 * 3600 - 60
    configured = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["schedule"]  # type: ignore[attr-defined]
    assert state.value("clinaiops_audit_checkpoint_interval_seconds") == float(configured)

    with transaction.atomic():
        audit_record(action=AuditAction.EXPORT_CREATED, object_type="ops-test", object_id=9, system_reason="t")
    state = Scrape(_exposition(ClinicalStateCollector().state(later)))
    assert (state.value("clinaiops_audit_oldest_unwitnessed_age_seconds") or 0) >= 2 * 3600 - 60


def test_integrity_failures_and_the_newest_drift_severity_are_exported(model_version_row: ModelVersion) -> None:
    now = timezone.now()
    MonitoringAlert.objects.create(
        kind="model_integrity", dedup_key="integrity:b", occurrences=3, model_version=model_version_row,
        opened_at=now, last_seen_at=now,
    )  # fmt: skip
    snapshot = DatasetSnapshot.objects.get()

    def report(severity: str, drifted: list[str], days_ago: int) -> None:
        DriftReport.objects.create(
            created_at=now - timedelta(days=days_ago), as_of=now, window_start=now - timedelta(days=14),
            window_days=14, model_version=model_version_row, reference_snapshot=snapshot, reference_sha256="a" * 64,
            n_reference=100, n_current=300, severity=severity, drifted=drifted,
        )  # fmt: skip

    report("stable", [], days_ago=2)
    report("severe", ["sbp_mean_7d", "prediction"], days_ago=1)
    s = scrape()
    assert s.value("clinaiops_model_integrity_failures") == 3
    assert s.value("clinaiops_monitoring_alerts_open", kind="model_integrity") == 1
    assert s.value("clinaiops_drift_severity", severity="severe") == 1
    assert s.value("clinaiops_drift_severity", severity="stable") == 0
    assert s.value("clinaiops_drift_features_severe") == 2
    assert 86_000 < (s.value("clinaiops_drift_report_age_seconds") or 0) < 87_000

    MonitoringAlert.objects.update(status="acknowledged", acknowledged_at=now)
    assert scrape().value("clinaiops_model_integrity_failures") == 0


def test_the_scrape_reads_open_state_with_a_bounded_number_of_queries(
    patient: Patient, django_assert_max_num_queries: object
) -> None:
    # One query per kind of state whatever the history: reviews, alerts, ledger (3), models (3), partitions (2),
    # plus the transaction and the statement timeout. History-sized COUNTs would show up as time, not queries, so
    # bench/history_bench.py times the scrape at 20k and 2M readings as well.
    with django_assert_max_num_queries(14):  # type: ignore[operator]
        scrape()


def _exposition(families: list[object]) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self) -> list[object]:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


@pytest.mark.parametrize("status", [AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED])
def test_closed_alerts_are_not_open(patient: Patient, status: str) -> None:
    Alert.objects.create(
        patient=patient, kind=AlertKind.HYPERTENSIVE_CRISIS, priority=AlertPriority.P0, status=status,
        opened_at=timezone.now() - timedelta(days=3),
    )  # fmt: skip
    s = scrape()
    assert s.value("clinaiops_alerts_open_past_escalation", priority="P0") == 0
    assert s.value("clinaiops_alert_oldest_open_age_seconds", priority="P0") == 0
