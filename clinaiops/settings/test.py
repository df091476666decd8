"""Test settings: PostgreSQL by default (CI), SQLite when DATABASE_URL says so."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinaiops_test")
# One thread for OpenMP and BLAS (scikit-learn's HistGradientBoosting, OpenBLAS): on a small, shared machine the
# default (one spinning thread a core) made a 640-row fit take 30 s instead of 2 s. The results do not depend on
# it. Set here, before anything loads those libraries, and inherited by the processes a test starts (a Celery
# worker, a command); an explicit setting in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from clinaiops.env import env_bool, env_path
from clinaiops.settings.base import *  # noqa: F403
from clinaiops.settings.base import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
ARTIFACT_ROOT = env_path("ARTIFACT_ROOT", Path(tempfile.mkdtemp(prefix="clinaiops-artifacts-")))
# Eager unless a test process (for example a real Celery worker under test) asks otherwise.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
# Off, so that the readings a test sets up (tests/conftest.py `readings_add`) do not evaluate their patient before
# the test does; tests/loops/test_evaluation_on_reading.py turns it on.
EVALUATION_ON_READING = env_bool("EVALUATION_ON_READING", False)
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1000/min"}}
# Exported, so the processes a test starts (a real Celery worker, a command run as the runtime role) sign and
# verify audit checkpoints with the same development keys as the test itself.
if not os.environ.get("AUDIT_KEY_DIR"):
    os.environ["AUDIT_KEY_DIR"] = tempfile.mkdtemp(prefix="clinaiops-keys-")
AUDIT_KEY_DIR = env_path("AUDIT_KEY_DIR", Path(os.environ["AUDIT_KEY_DIR"]))
# No session setting lets anyone past the ledger's TRUNCATE trigger. pytest-django empties tables between
# transactional tests with TRUNCATE; the suite connects as a superuser, and tests/conftest.py suspends triggers
# for that flush alone with session_replication_role, which only a superuser may set.
