"""Test settings: PostgreSQL by default (CI), SQLite when DATABASE_URL says so."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinaiops_test")

from clinaiops.settings.base import *  # noqa: F403
from clinaiops.settings.base import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
ARTIFACT_ROOT = Path(tempfile.mkdtemp(prefix="clinaiops-artifacts-"))
CELERY_TASK_ALWAYS_EAGER = True
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}
