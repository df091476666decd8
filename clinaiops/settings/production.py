"""Production settings: everything from the environment, and no insecure defaults."""

from __future__ import annotations

from clinaiops.env import ConfigurationError, env_bool
from clinaiops.settings.base import *  # noqa: F403
from clinaiops.settings.base import (
    AUDIT_DIGEST_KEY,
    AUDIT_SIGNING_KEY,
    CELERY_BROKER_URL,
    DEFAULT_SECRET_KEY,
    MODEL_GATE_FAIRNESS_ENFORCED,
    MODEL_SIGNING_KEY,
    SECRET_KEY,
)

if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ConfigurationError("SECRET_KEY must be set to a random value of at least 32 characters in production")
if not AUDIT_SIGNING_KEY:
    raise ConfigurationError("AUDIT_SIGNING_KEY (base64 Ed25519 seed) must be set in production")
if not AUDIT_DIGEST_KEY:
    raise ConfigurationError(
        "AUDIT_DIGEST_KEY (base64 of 32 random bytes, for keyed audit digests) must be set in production"
    )
if not MODEL_SIGNING_KEY:
    raise ConfigurationError("MODEL_SIGNING_KEY (base64 Ed25519 seed) must be set in production")
if not MODEL_GATE_FAIRNESS_ENFORCED:
    # The demo relaxes the fairness gate to "needs full review"; a hospital must not.
    raise ConfigurationError("MODEL_GATE_FAIRNESS_ENFORCED cannot be turned off in production")
if CELERY_BROKER_URL == "memory://":
    raise ConfigurationError("CELERY_BROKER_URL must point at RabbitMQ or Redis in production")

DEBUG = False
STATIC_ROOT = VAR_DIR / "static"  # noqa: F405 - `manage.py collectstatic` fills it
CELERY_TASK_ALWAYS_EAGER = False
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
