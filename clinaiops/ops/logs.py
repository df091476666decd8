"""Structured logs: one JSON object per line, carrying the request id the audit ledger records, or the Celery
task id, and no PHI (DESIGN §6).

Two safeguards, because either alone leaks:

- the formatter writes a fixed set of keys (time, level, logger, message, request_id, task_id, and a short
  allow-list of operational extras such as status and duration_ms), so a value passed in `extra=` under any other
  name never reaches the log;
- `PhiFilter` masks what gets into the message itself: `field=value` or `"field": value` pairs whose field is a
  known identifier or clinical value, and PostgreSQL's "Failing row contains (…)" / "Key (…)=(…)" details, which
  quote the row being written (blood pressures, timestamps). Exception text goes through the same masking;
  Django's SQL debug log, whose statements carry interpolated values, is dropped entirely.

Nothing here imports Django models: logging is configured before the apps are ready.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import traceback
from datetime import UTC, datetime
from typing import Any

from clinaiops.core.request_context import request_context_get

MASK = "[masked]"

# Fields whose values identify a person or are clinical values: the request serializers' and models' names.
PHI_FIELDS: frozenset[str] = frozenset(
    {
        "systolic", "diastolic", "heart_rate", "sbp", "dbp", "hr", "taken_at", "reported_at", "valuequantity",
        "value", "values", "effectivedatetime", "component", "name", "first_name", "last_name", "full_name",
        "printed_name", "given", "family", "email", "phone", "address", "birth_date", "birth_year", "date_of_birth",
        "dob", "mrn", "code", "patient_code", "username", "password", "token", "access", "refresh", "authorization",
        "cookie", "reason", "note", "notes", "text", "free_text", "comment", "sex", "race_ethnicity", "skin_tone",
        "target_sbp", "target_dbp", "features", "probabilities", "symptom", "kind",
    }
)  # fmt: skip

# Extras an operational log line may carry: route names, codes and numbers, never typed text.
ALLOWED_EXTRAS: tuple[str, ...] = ("method", "view", "status", "duration_ms", "task", "state", "port", "code_name")

_FIELD_NAMES = "|".join(sorted(PHI_FIELDS, key=len, reverse=True))
_FIELD_PAIR = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:"""
    + _FIELD_NAMES
    + r""")\b["']?)   # a known field name, quoted or not
    (?P<sep>\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|\{[^}]*\}|[^,;&\s)}\]]+)
    """
)
# PostgreSQL quotes the offending row or key in DETAIL lines: "Failing row contains (7, 2026-…, 250, 40, …)."
_PG_ROW = re.compile(r"(?i)(failing row contains\s*)\([^)]*\)")
_PG_KEY = re.compile(r"(?i)(key\s*)\(([^)]*)\)=\([^)]*\)")

task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("celery_task_id", default="")


def task_id_set(task_id: str) -> contextvars.Token[str]:
    return task_id_var.set(task_id)


def task_id_reset(token: contextvars.Token[str]) -> None:
    task_id_var.reset(token)


def phi_mask(text: str) -> str:
    """Mask identifier and clinical values in free log text, keeping the field names for the reader."""
    text = _FIELD_PAIR.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    text = _PG_ROW.sub(rf"\1({MASK})", text)
    return _PG_KEY.sub(rf"\1(\2)=({MASK})", text)


class PhiFilter(logging.Filter):
    """Masks PHI in a record's message and arguments in place; drops SQL debug records (they carry values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.db.backends"):
            return False
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must not take the log line down with it
            message = str(record.msg)
        record.msg = phi_mask(message)
        record.args = None
        for name in PHI_FIELDS:
            if name in record.__dict__ and name not in _RECORD_ATTRIBUTES:
                setattr(record, name, MASK)
        return True


_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, task_id, and the
    allowed operational extras; an exception adds its type and a traceback whose messages are masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": phi_mask(record.getMessage()),
        }
        request_id = getattr(record, "request_id", "") or request_context_get().request_id
        if request_id:
            entry["request_id"] = request_id
        task_id = task_id_var.get()
        if task_id:
            entry["task_id"] = task_id
        for name in ALLOWED_EXTRAS:
            value = record.__dict__.get(name)
            if isinstance(value, str | int | float | bool):
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = phi_mask("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The readable console line for `make demo`, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "") or request_context_get().request_id or task_id_var.get()
        return f"{line} [{request_id}]" if request_id else line
