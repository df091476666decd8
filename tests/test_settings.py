"""The production settings refuse insecure or incomplete configuration (issue 2)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = base64.b64encode(b"\x01" * 32).decode()
FIELD_KEY = base64.b64encode(b"\x02" * 32).decode()
INDEX_KEY = base64.b64encode(b"\x03" * 32).decode()
GOOD = {
    "DJANGO_SETTINGS_MODULE": "clinaiops.settings.production",
    "SECRET_KEY": "x" * 48,
    "AUDIT_SIGNING_KEY": SEED,
    "AUDIT_DIGEST_KEY": SEED,
    "MODEL_SIGNING_KEY": SEED,
    "EVIDENCE_SIGNING_KEY": SEED,
    "FIELD_ENCRYPTION_KEYS": f"k2:{FIELD_KEY},k1:{SEED}",
    "BLIND_INDEX_KEYS": f"i1:{INDEX_KEY}",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "DATABASE_URL": "sqlite:////tmp/clinaiops-settings-check.sqlite3",
}


def _load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "MODEL_GATE_FAIRNESS_ENFORCED"}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_production_settings_load_when_everything_is_configured() -> None:
    assert _load(GOOD).returncode == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"AUDIT_DIGEST_KEY": ""}, "AUDIT_DIGEST_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"AUDIT_SIGNING_KEY": ""}, "AUDIT_SIGNING_KEY"),
        ({"MODEL_SIGNING_KEY": ""}, "MODEL_SIGNING_KEY"),
        ({"EVIDENCE_SIGNING_KEY": ""}, "EVIDENCE_SIGNING_KEY"),
        ({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL"),
        ({"MODEL_GATE_FAIRNESS_ENFORCED": "0"}, "MODEL_GATE_FAIRNESS_ENFORCED"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        # Identifiers and free text need keys from the environment: no development keys, well formed, distinct.
        ({"FIELD_ENCRYPTION_KEYS": ""}, "FIELD_ENCRYPTION_KEYS"),
        ({"BLIND_INDEX_KEYS": ""}, "BLIND_INDEX_KEYS"),
        ({"FIELD_ENCRYPTION_KEYS": SEED}, "FIELD_ENCRYPTION_KEYS"),
        ({"FIELD_ENCRYPTION_KEYS": "k1:c2hvcnQ="}, "FIELD_ENCRYPTION_KEYS"),
        ({"BLIND_INDEX_KEYS": f"i1:{INDEX_KEY},I1:{INDEX_KEY}"}, "BLIND_INDEX_KEYS"),
        ({"BLIND_INDEX_KEYS": f"i1:{FIELD_KEY}"}, "must not share a key"),
    ],
)
def test_production_refuses_an_insecure_or_incomplete_configuration(override: dict[str, str], message: str) -> None:
    result = _load({**GOOD, **override})
    assert result.returncode != 0
    assert message in result.stderr
