"""Test settings: PostgreSQL by default (CI), SQLite when DATABASE_URL says so."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinaiops_test")

from clinaiops.env import env_bool, env_path
from clinaiops.settings.base import *  # noqa: F403
from clinaiops.settings.base import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
ARTIFACT_ROOT = env_path("ARTIFACT_ROOT", Path(tempfile.mkdtemp(prefix="clinaiops-artifacts-")))
# Eager unless a test process (for example a real Celery worker under test) asks otherwise.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}
AUDIT_KEY_DIR = env_path("AUDIT_KEY_DIR", Path(tempfile.mkdtemp(prefix="clinaiops-keys-")))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # pytest-django empties tables between transactional tests with TRUNCATE; the ledger's TRUNCATE trigger
    # lets a session through only with this setting, which production connections never carry.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c clinaiops.allow_ledger_truncate=on"  # noqa: F405
