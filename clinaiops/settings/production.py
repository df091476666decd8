"""Production settings: everything from the environment, and no insecure defaults."""

from __future__ import annotations

from clinaiops.core.crypto.keys import production_keyrings_check
from clinaiops.env import ConfigurationError, env_bool, env_int, env_str
from clinaiops.settings.base import *  # noqa: F403
from clinaiops.settings.base import (
    AUDIT_DIGEST_KEY,
    AUDIT_SIGNING_KEY,
    AUDIT_WITNESS_SINKS,
    BLIND_INDEX_KEYS,
    CELERY_BROKER_URL,
    DATABASE_URL_CONN_MAX_AGE,
    DEFAULT_SECRET_KEY,
    EVIDENCE_SIGNING_KEY,
    FIELD_ENCRYPTION_KEYS,
    MODEL_GATE_FAIRNESS_ENFORCED,
    MODEL_SIGNING_KEY,
    SECRET_KEY,
)

if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ConfigurationError("SECRET_KEY must be set to a random value of at least 32 characters in production")
if not AUDIT_SIGNING_KEY:
    raise ConfigurationError("AUDIT_SIGNING_KEY (base64 Ed25519 seed) must be set in production")
if not AUDIT_WITNESS_SINKS:
    # Without a witness outside the database, a tail cut together with its checkpoints goes unseen (issue 8).
    raise ConfigurationError("AUDIT_WITNESS_SINKS must name at least one checkpoint witness (file, syslog, …)")
if not AUDIT_DIGEST_KEY:
    raise ConfigurationError(
        "AUDIT_DIGEST_KEY (base64 of 32 random bytes, for keyed audit digests) must be set in production"
    )
if not MODEL_SIGNING_KEY:
    raise ConfigurationError("MODEL_SIGNING_KEY (base64 Ed25519 seed) must be set in production")
if not EVIDENCE_SIGNING_KEY:
    raise ConfigurationError(
        "EVIDENCE_SIGNING_KEY (base64 Ed25519 seed, for evidence bundles) must be set in production"
    )
# Identifiers and free text are encrypted with keys from the environment, never development keys (issue 8 §3).
production_keyrings_check(FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEYS)
if not MODEL_GATE_FAIRNESS_ENFORCED:
    # The demo relaxes the fairness gate to "needs full review"; a hospital must not.
    raise ConfigurationError("MODEL_GATE_FAIRNESS_ENFORCED cannot be turned off in production")
if CELERY_BROKER_URL == "memory://":
    raise ConfigurationError("CELERY_BROKER_URL must point at RabbitMQ or Redis in production")

DEBUG = False
# One JSON object per line with the request or task id (clinaiops/ops/logs.py); LOG_FORMAT=plain still overrides.
LOGGING["handlers"]["console"]["formatter"] = "plain" if env_str("LOG_FORMAT", "json") == "plain" else "json"  # noqa: F405
STATIC_ROOT = VAR_DIR / "static"  # noqa: F405 - `manage.py collectstatic` fills it
CELERY_TASK_ALWAYS_EAGER = False
# Persistent database connections by default (issue 13); CONN_MAX_AGE=0 turns them off, e.g. behind pgbouncer in
# transaction mode if its pool should do all the pooling (README "Database connections").
DATABASES["default"]["CONN_MAX_AGE"] = env_int(  # noqa: F405
    "CONN_MAX_AGE", DATABASE_URL_CONN_MAX_AGE if DATABASE_URL_CONN_MAX_AGE is not None else 60
)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Transport and sessions (issue 8 §4; docs/security.md "Sessions and tokens") ---
# TLS ends at the proxy in front of gunicorn. Plain HTTP is redirected to HTTPS, and HSTS tells browsers never to
# try plain HTTP again. The proxy's X-Forwarded-Proto says a request came over HTTPS; it is believed only from
# TRUSTED_PROXIES (clinaiops.core.middleware.ForwardedHeadersMiddleware drops it from anyone else). Probes
# (/healthz, /readyz, /metrics) are answered before the redirect.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole domain to HTTPS in browsers' built-in lists, which only the domain's owner can
# decide (hstspreload.org). Off by default; security.W021, which asks for it, is silenced for that reason.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Signing roles sign in with a second factor (clinaiops/core/mfa.py).
MFA_REQUIRED_FOR_SIGNING_ROLES = env_bool("MFA_REQUIRED_FOR_SIGNING_ROLES", True)
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):  # noqa: F405
    # A per-process cache gives each gunicorn worker its own sign-in throttle (issue 8 §4).
    raise ConfigurationError("CACHE_URL must be shared in production: redis://… (recommended) or db://<table>")
