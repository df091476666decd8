"""Structured logs: JSON lines with the ledger's request id or the task id, and no value a patient sent."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import shared_task
from django.utils import timezone
from rest_framework.test import APIClient

from clinaiops.audit.models import AuditEvent
from clinaiops.care.models import Patient
from clinaiops.core.models import User
from clinaiops.ops.logs import JsonFormatter, PhiFilter, phi_mask

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The production handler (JSON formatter + PHI filter) on the root logger, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PhiFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_reading_post_logs_its_ledger_request_id_and_no_value_from_the_payload(
    patient: Patient, api_client_for: Callable[[User], APIClient], captured: io.StringIO, settings: object
) -> None:
    settings.DEBUG = True  # type: ignore[attr-defined]  # the worst case: Django's SQL debug log is on
    client = api_client_for(patient.user)
    taken_at = (timezone.now() - timedelta(minutes=7)).replace(microsecond=0)
    body = {"taken_at": taken_at.isoformat(), "systolic": 173, "diastolic": 97, "heart_rate": 61, "source": "ppg"}
    response = client.post("/api/v1/readings/", body, format="json", HTTP_X_REQUEST_ID="req-ops-log-test-1")
    assert response.status_code == 201
    implausible = {**body, "systolic": 297, "diastolic": 231}  # refused: 4xx, logged by django.request
    assert client.post("/api/v1/readings/", implausible, format="json").status_code == 400

    lines = _lines(captured)
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "clinaiops.request" and line.get("status") == 201]
    assert len(access) == 1
    assert access[0]["request_id"] == "req-ops-log-test-1" == response["X-Request-ID"]
    assert access[0]["view"] == "api:readings"
    # The same id the audit ledger recorded for this ingest: logs and ledger can be joined.
    assert AuditEvent.objects.filter(request_id="req-ops-log-test-1", action="reading.ingested").exists()

    text = "\n".join(
        " ".join(str(v) for k, v in line.items() if k not in {"time", "duration_ms", "request_id"}) for line in lines
    )
    for value in ("173", "97", "61", "297", "231"):
        assert not re.search(rf"(?<![\d.]){value}(?![\d.])", text), f"{value} from the payload reached the log"
    for stamp in (taken_at.isoformat(), taken_at.strftime("%Y-%m-%d %H:%M:%S"), taken_at.strftime("%H:%M:%S")):
        assert stamp not in text
    assert "ppg" not in text


def test_phi_in_a_careless_message_or_extra_is_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("clinaiops.somewhere")
    log.warning("reading refused systolic=%s diastolic=%s for code=%s", 173, 97, "P-0042")
    log.warning('payload {"systolic": 173, "taken_at": "2026-03-01T07:41:00Z"}', extra={"mrn": "MRN-55"})
    log.error("new row violates check constraint DETAIL: Failing row contains (7, 2026-03-01 07:41:00+00, 300, 250).")
    log.error("duplicate key DETAIL: Key (patient_id, taken_at, source)=(7, 2026-03-01 07:41:00+00, cuff) exists")
    # Only what the records say, not the time each was written (a timestamp can contain "97" or "173").
    text = "\n".join(" ".join(str(v) for k, v in line.items() if k != "time") for line in _lines(captured))
    for secret in ("173", "97", "P-0042", "MRN-55", "2026-03-01", "300, 250", "cuff"):
        assert secret not in text
    assert "systolic" in text and "Failing row contains" in text  # the reader still sees what was masked


def test_exception_text_in_a_traceback_is_masked_too(captured: io.StringIO) -> None:
    try:
        raise ValueError("Failing row contains (7, 173, 97)")
    except ValueError:
        logging.getLogger("clinaiops.somewhere").exception("evaluation failed")
    (line,) = _lines(captured)
    assert line["exc_type"] == "ValueError"
    assert "173" not in str(line["traceback"]) and line["message"] == "evaluation failed"


def test_sql_debug_records_are_dropped_because_they_carry_values(captured: io.StringIO) -> None:
    logging.getLogger("django.db.backends").debug("(0.001) INSERT INTO care_reading VALUES (173, 97)")
    assert captured.getvalue() == ""


def test_masking_leaves_operational_text_alone() -> None:
    text = "evaluation_run took 14 ms status_code=201 view=api:readings queue depth 3"
    assert phi_mask(text) == text


@shared_task(name="tests.ops.task_that_logs")
def _task_that_logs() -> str:
    logging.getLogger("clinaiops.tasks.test").info("working")
    return "done"


def test_a_celery_task_log_line_carries_the_task_id(captured: io.StringIO) -> None:
    result = _task_that_logs.delay()
    (line,) = [line for line in _lines(captured) if line["logger"] == "clinaiops.tasks.test"]
    assert line["task_id"] == result.id
    assert "request_id" not in line


def _log_once(settings_module: str, **env: str) -> str:
    """stderr of a fresh process with these settings that logs one careless line."""
    from tests.test_settings import GOOD  # the configuration production needs, kept current by its owners

    clean = {k: v for k, v in os.environ.items() if k not in {"LOG_FORMAT", "DJANGO_SETTINGS_MODULE", *GOOD}}
    code = "import django, logging; django.setup(); logging.getLogger('clinaiops.x').warning('hello systolic=173')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **GOOD, **env, "DJANGO_SETTINGS_MODULE": settings_module},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stderr


def test_production_settings_log_one_json_object_per_line() -> None:
    (line,) = [json.loads(x) for x in _log_once("clinaiops.settings.production").splitlines() if x.startswith("{")]
    assert line["level"] == "WARNING" and line["logger"] == "clinaiops.x"
    assert line["message"] == "hello systolic=[masked]"
    assert {"time", "level", "logger", "message"} <= line.keys()


def test_the_demo_console_reads_plain_lines_and_still_masks() -> None:
    output = _log_once("clinaiops.settings.base")
    assert "WARNING clinaiops.x hello systolic=[masked]" in output
    assert not any(x.startswith("{") for x in output.splitlines())
    assert "hello systolic=[masked]" in _log_once("clinaiops.settings.production", LOG_FORMAT="plain")
