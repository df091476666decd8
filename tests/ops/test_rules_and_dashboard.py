"""The alerting rules and the Grafana dashboard kept in the repository: well formed, and naming only metrics that
/metrics exports. With promtool installed (`make system-deps` extracts it from Debian's prometheus package),
the rules are also checked and unit-tested by Prometheus' own tool, and every dashboard expression is parsed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.db import transaction
from django.test import Client
from django.utils import timezone

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_checkpoint_create, audit_record
from clinaiops.celery import app
from clinaiops.ops.collectors import queue_cache_clear
from inference.models import DatasetSnapshot, ModelVersion
from inference.monitoring.models import DriftReport
from tests.ops.conftest import scrape

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "clinaiops" / "ops" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"

# Series Prometheus itself records for every target.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",)}


def promtool() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), str(ROOT / "var" / "tools" / "promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers left once strings, label matchers, grouping
    clauses and ranges are removed, that are not functions (followed by "(") or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\w+", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", name):
            names.add(name)
    return names


@pytest.fixture
def exported(model_version_row: ModelVersion, settings: Any) -> set[str]:
    """Every series name one scrape of a running installation can carry: with a checkpoint, a drift report, a
    broker and a request behind it, so that the families that appear only then are there too."""
    with transaction.atomic():
        audit_record(action=AuditAction.EXPORT_CREATED, object_type="ops-test", object_id=1, system_reason="t")
    assert audit_checkpoint_create(reason="ops-test") is not None
    now = timezone.now()
    DriftReport.objects.create(
        created_at=now, as_of=now, window_start=now, window_days=14, model_version=model_version_row,
        reference_snapshot=DatasetSnapshot.objects.get(), reference_sha256="a" * 64, n_reference=1, n_current=1,
        severity="stable",
    )  # fmt: skip
    Client().get("/api/v1/me/")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = app.conf.broker_url
    app.conf.broker_url = "memory://"
    queue_cache_clear()
    try:
        families = scrape().families
    finally:
        app.conf.broker_url = saved
        queue_cache_clear()
    names = set(PROMETHEUS_BUILTINS)
    for family in families.values():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_rule_file_has_the_prometheus_rule_shape() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    groups = document["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    seen = set()
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert re.fullmatch(r"ClinAIOps[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
            assert rule["alert"] not in seen
            seen.add(rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s"))
            assert rule["labels"]["severity"] in {"page", "warning", "ticket"}
            assert rule["annotations"]["summary"]


def test_rules_cover_the_slos_and_the_clinical_conditions() -> None:
    by_name = {rule["alert"]: rule for rule in _rules()}
    thresholds = {
        "ClinAIOpsLatencyP95AboveSLO": ("0.95", "> 0.1"),
        "ClinAIOpsLatencyP99AboveSLO": ("0.99", "> 0.5"),
        "ClinAIOpsErrorRateAboveSLO": ("5xx", "> 0.001"),
        "ClinAIOpsServingP99AboveSLO": ("0.99", "> 0.05"),
    }
    for name, fragments in thresholds.items():
        expr = " ".join(by_name[name]["expr"].split())
        assert all(fragment in expr for fragment in fragments), (name, expr)
    for clinical in (
        "ClinAIOpsP0UnacknowledgedPastEscalation",
        "ClinAIOpsAuditCheckpointOverdue",
        "ClinAIOpsModelIntegrityFailure",
        "ClinAIOpsDriftSevere",
    ):
        assert clinical in by_name


def test_every_metric_a_rule_reads_is_exported(exported: set[str]) -> None:
    used = {name for rule in _rules() for name in metric_names(rule["expr"])}
    assert "clinaiops_alerts_open_past_escalation" in used  # the extraction sees names at all
    assert used <= exported, sorted(used - exported)


def test_every_series_in_the_rule_unit_tests_is_exported(exported: set[str]) -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    series = {s["series"].split("{")[0] for test in document["tests"] for s in test["input_series"]}
    assert series <= exported, sorted(series - exported)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed (make system-deps extracts it from Debian's prometheus package)")
    checked = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name], cwd=MONITORING, capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboard_is_importable_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "view"} <= variables
    for panel in _panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_every_dashboard_expression_reads_exported_metrics(exported: set[str]) -> None:
    used = {name for panel in _panels() for target in panel["targets"] for name in metric_names(target["expr"])}
    assert "clinaiops_http_request_duration_seconds_bucket" in used
    assert used <= exported, sorted(used - exported)


def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed (make system-deps extracts it from Debian's prometheus package)")
    # Grafana's variables are not PromQL: substitute what Grafana would, then let promtool parse each expression
    # as a recording rule.
    rules = []
    for panel in _panels():
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$view", ".*")
            rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId'].lower()}", "expr": expr})
    path = tmp_path / "dashboard-exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metric_name_extraction_ignores_functions_labels_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, view) (rate(x_bucket{view=~"a|b", le!="y"}[5m]))) > 0.5 '
        "and on (instance) max(up) unless count without (job) (z_total offset 1h) > bool 2"
    )
    assert metric_names(expr) == {"x_bucket", "up", "z_total"}
