"""Settings shared by every environment. Defaults are the embedded runtime (DESIGN §7): SQLite, eager
Celery and artifacts under ./var/artifacts, so `make demo` needs nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONCE as CSP_NONCE
from kombu import Queue

from clinaiops.env import ConfigurationError, env_bool, env_database, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = env_path("CLINAIOPS_VAR_DIR", BASE_DIR / "var")

DEFAULT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - production refuses it
SECRET_KEY = env_str("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files for /api/v1/docs/, served from our own static files (no CDN).
    "drf_spectacular_sidecar",
    "axes",
    "rest_framework_simplejwt.token_blacklist",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "clinaiops.core",
    "clinaiops.audit",
    "clinaiops.care",
    "inference",
    "inference.monitoring",
    "governance",
    "clinaiops.loops",
    "clinaiops.partnership",
    "clinaiops.api",
    "clinaiops.portal",
    "clinaiops.ops",
    "compliance",
    "fixtures",
]

MIDDLEWARE = [
    # Probes and the scrape are answered before host validation and sessions; then every request is timed.
    "clinaiops.ops.middleware.OpsEndpointsMiddleware",
    "clinaiops.ops.middleware.RequestMetricsMiddleware",
    # A database outage anywhere inside answers 503 with Retry-After (JSON under /api/), never an HTML 500.
    "clinaiops.core.db_outage.DatabaseOutageMiddleware",
    # Forwarded headers only from TRUSTED_PROXIES, before anything reads them (HTTPS detection, client address).
    "clinaiops.core.middleware.ForwardedHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside everything that answers a view, so that every page, API answer and error gets its headers.
    "clinaiops.core.middleware.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "clinaiops.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle and absolute logoff, then the second-factor gate (both need the session user and messages).
    "clinaiops.core.middleware.PortalSessionMiddleware",
    "clinaiops.core.middleware.MfaGateMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: refuses sign-in after repeated failures.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinaiops.urls"
WSGI_APPLICATION = "clinaiops.wsgi.application"
AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "clinaiops.core.auth.LockoutAwareModelBackend"]
# Brute-force protection for portal sign-in and API tokens (django-axes), per username and address: locking a
# username everywhere would let anyone lock a clinician out of the portal during a shift.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
# The same client-address rule as the throttle and the ledger (clinaiops/core/client_address.py), and one answer
# for a lock-out: `account_locked` with Retry-After (clinaiops/portal/views/account.py, clinaiops/api/auth.py).
AXES_CLIENT_IP_CALLABLE = "clinaiops.core.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "clinaiops.portal.views.account.lockout_response"
# Failed signature re-authentications within the window lock the account for the lockout period.
SIGNATURE_MAX_FAILURES = env_int("SIGNATURE_MAX_FAILURES", 5)
SIGNATURE_FAILURE_WINDOW_MINUTES = env_int("SIGNATURE_FAILURE_WINDOW_MINUTES", 15)
SIGNATURE_LOCKOUT_MINUTES = env_int("SIGNATURE_LOCKOUT_MINUTES", 30)
LOGIN_URL = "portal:login"
# A form refused for its token gets the portal's page, which keeps what was typed (clinaiops.portal.views.errors).
CSRF_FAILURE_VIEW = "clinaiops.portal.views.errors.csrf_failure"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'clinaiops.sqlite3'}")}
# The owner role's connection, used by `manage.py migrate` only (clinaiops/audit/management/commands/migrate.py).
# In production DATABASE_URL is the runtime role, which owns nothing and may not change the ledger; the owner's
# credentials belong to the deploy job, not to the app servers (docs/security.md). Empty: migrate on DATABASE_URL.
MIGRATION_DATABASE_URL = env_str("MIGRATION_DATABASE_URL", "")
if str(DATABASES["default"]["NAME"]).startswith(str(VAR_DIR)):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default must work on a fresh clone
# --- Database time limits (issue 8 §5; docs/operations.md "Database outages") --------------------------------
# A database that is down or stalled answers 503 with Retry-After within these limits (clinaiops/core/db_outage.py)
# instead of holding the request until gunicorn kills its worker (GUNICORN_TIMEOUT, 30 s). 0 switches a limit off,
# e.g. DATABASE_STATEMENT_TIMEOUT_MS=0 for a one-off command that runs one long statement.
DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000)
DATABASE_LOCK_TIMEOUT_MS = env_int("DATABASE_LOCK_TIMEOUT_MS", 10_000)
# A transaction whose client went away (a killed worker) gives its locks back after this long.
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = env_int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60_000)
# Client side: a server that stops answering altogether (host frozen, process stopped) cannot enforce its own
# statement_timeout, so the connection gives up after this long and is closed. Above the statement timeout, so
# that the server's own cancel normally comes first.
DATABASE_CLIENT_TIMEOUT_SECONDS = env_int(
    "DATABASE_CLIENT_TIMEOUT_SECONDS", DATABASE_STATEMENT_TIMEOUT_MS // 1000 + 5 if DATABASE_STATEMENT_TIMEOUT_MS else 0
)
DATABASE_RETRY_AFTER_SECONDS = env_int("DATABASE_RETRY_AFTER_SECONDS", 5)
# --- Persistent connections (issue 13; README "Database connections") ----------------------------------------
# Opening a PostgreSQL connection per request cost more than the request itself (96 vs 267 readings/s). CONN_MAX_AGE
# keeps a connection for that many seconds (0: one per request, None: for ever); health checks test a reused
# connection at the start of each request, so one the server dropped (restart, failover, idle timeout) is
# replaced instead of failing the request. Order: CONN_MAX_AGE from the environment, else DATABASE_URL's
# ?conn_max_age=, else 0 here (development, tests) and 60 in production (settings/production.py).
DATABASE_URL_CONN_MAX_AGE: int | None = DATABASES["default"].get("CONN_MAX_AGE")
DATABASES["default"]["CONN_MAX_AGE"] = env_int(
    "CONN_MAX_AGE", DATABASE_URL_CONN_MAX_AGE if DATABASE_URL_CONN_MAX_AGE is not None else 0
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASE_CONNECT_TIMEOUT_SECONDS:
        _db_options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT_SECONDS)
    _db_limits = {
        "statement_timeout": DATABASE_STATEMENT_TIMEOUT_MS,
        "lock_timeout": DATABASE_LOCK_TIMEOUT_MS,
        "idle_in_transaction_session_timeout": DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    }
    _db_options["options"] = " ".join(
        [_db_options.get("options", ""), *(f"-c {name}={ms}" for name, ms in _db_limits.items() if ms)]
    ).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Sessions, tokens, passwords and MFA (issue 8 §4; docs/security.md "Sessions and tokens") ----------------
# Proxies (addresses or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed; nobody else's are. Empty:
# the peer address is the client (clinaiops/core/client_address.py).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])

# ASVS V2.1: at least 12 characters, not a common password (Django's list of 20,000, checked offline), not the
# username or a number. A check against a breach corpus (Have I Been Pwned) needs the network: out of scope.
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id (clinaiops/core/auth.py says why these costs); PBKDF2 hashes still verify and are upgraded at sign-in.
PASSWORD_HASHERS = [
    "clinaiops.core.auth.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
PASSWORD_ARGON2_TIME_COST = env_int("PASSWORD_ARGON2_TIME_COST", 2)
PASSWORD_ARGON2_MEMORY_KIB = env_int("PASSWORD_ARGON2_MEMORY_KIB", 19 * 1024)
PASSWORD_ARGON2_PARALLELISM = env_int("PASSWORD_ARGON2_PARALLELISM", 1)

# Portal sessions: automatic logoff after SESSION_IDLE_MINUTES without a request, with a warning
# SESSION_IDLE_WARNING_SECONDS before it (portal/static/portal/portal.js), and at most SESSION_ABSOLUTE_HOURS
# after sign-in (clinaiops.core.middleware.PortalSessionMiddleware). The cookie ends with the browser.
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_MINUTES", 15) * 60
SESSION_IDLE_WARNING_SECONDS = env_int("SESSION_IDLE_WARNING_SECONDS", 120)
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_HOURS", 12) * 3600
SESSION_ACTIVITY_RESOLUTION_SECONDS = 60
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# TOTP for staff (clinaiops/core/mfa.py): required for the signing roles when on (production's default), optional
# (enrol from the account page) otherwise.
MFA_REQUIRED_FOR_SIGNING_ROLES = env_bool("MFA_REQUIRED_FOR_SIGNING_ROLES", False)
MFA_VERIFY_URL = "portal:mfa-verify"
# The only views a session that still owes its second factor may reach (clinaiops.core.middleware.MfaGateMiddleware).
MFA_GATE_OPEN_VIEWS = frozenset(
    {"portal:login", "portal:logout", "portal:mfa-verify", "portal:mfa-enrol", "portal:session"}
)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "ClinAIOps")

# One cache shared by every process and host: the sign-in throttle must count all workers' requests together
# (a per-process cache let 2 workers take twice the rate). CACHE_URL "redis://host:6379/0" in production
# (Django's RedisCache); by default a table in the database (created after migrate: clinaiops/core/apps.py).
CACHE_URL = env_str("CACHE_URL", "db://clinaiops_cache")


def _cache(url: str) -> dict[str, Any]:
    scheme, _, rest = url.partition("://")
    if scheme in {"redis", "rediss"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "clinaiops"}
    if scheme == "db" and rest:
        # Past MAX_ENTRIES the database cache deletes live entries (a third of them, by key), throttle slots
        # included; Django's default of 300 is only 15 addresses' worth of the 20/min sign-in budget.
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": rest,
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    if scheme == "locmem":
        # Per process: only for a single-process tool. Production refuses it (settings/production.py).
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": rest or "clinaiops"}
    raise ConfigurationError(f"environment variable CACHE_URL={url!r} must be redis://…, db://<table> or locmem://")


CACHES = {"default": _cache(CACHE_URL)}

# Content-Security-Policy (django-csp): scripts only from our own static files, never inline; a <style> block
# only with the response's nonce; no plugins, framing or foreign form targets.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", CSP_NONCE],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve app static files straight from the apps (no collectstatic step needed for the demo).
WHITENOISE_USE_FINDERS = True

# Mobile bodies are small; refuse anything large before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)

ARTIFACT_ROOT = env_path("ARTIFACT_ROOT", VAR_DIR / "artifacts")

# --- Celery -------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://")
# With no broker configured the tasks run in-process (embedded default); a real broker turns this off.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_BEAT_SCHEDULE = {
    "evaluations-schedule": {"task": "clinaiops.loops.tasks.evaluations_schedule", "schedule": 3600.0},
    "alerts-escalate": {"task": "clinaiops.loops.tasks.alerts_escalate", "schedule": 300.0},
    "drift-report-daily": {"task": "inference.monitoring.tasks.drift_report_compute", "schedule": 86400.0},
    "canary-breaker-check": {"task": "inference.monitoring.tasks.canary_breaker_check", "schedule": 900.0},
}
# Queues per kind of work (issue 13), so that a training run or a drift report never delays an evaluation: each
# queue gets its own worker pool in production (README "Workers"). Beat's dispatchers, sweepers and purges are
# light and go to `default`, so they run while the pool of their kind is busy or down. A task nobody routes lands
# in `default` too. TASK_QUEUE_PREFIX namespaces every queue (tests on a shared broker; a staging and a
# production deployment on one vhost). Eager mode (demo, tests) ignores queues altogether.
TASK_QUEUE_PREFIX = env_str("TASK_QUEUE_PREFIX", "")
TASK_QUEUE_KINDS = ("evaluation", "training", "exports", "monitoring", "audit", "default")
CELERY_TASK_DEFAULT_QUEUE = f"{TASK_QUEUE_PREFIX}default"
# Declared, so that a worker started without -Q consumes every kind (an upgrade that keeps its old worker command
# still processes everything); -Q picks a subset for a dedicated pool.
CELERY_TASK_QUEUES = [Queue(f"{TASK_QUEUE_PREFIX}{kind}") for kind in TASK_QUEUE_KINDS]
CELERY_TASK_ROUTES = {
    pattern: {"queue": f"{TASK_QUEUE_PREFIX}{kind}"}
    for pattern, kind in (
        ("clinaiops.loops.tasks.evaluation_run", "evaluation"),
        ("inference.tasks.training_run_execute", "training"),
        ("compliance.tasks.export_run", "exports"),
        ("inference.monitoring.tasks.*", "monitoring"),
        ("inference.tasks.model_reverify", "monitoring"),
        ("clinaiops.audit.tasks.*", "audit"),
    )
}

# --- REST framework -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["clinaiops.api.auth.RevocableJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a bound on nesting, and limit/offset checked strictly, at most 200 a page (clinaiops/api/).
    "DEFAULT_PARSER_CLASSES": ["clinaiops.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Every operation's 4xx and 5xx in the one error shape (clinaiops/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "clinaiops.api.schema.ErrorDocumentingAutoSchema",
    "EXCEPTION_HANDLER": "clinaiops.api.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "clinaiops.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"token": env_str("TOKEN_THROTTLE_RATE", "20/min")},
}
# API tokens (clinaiops/api/auth.py): short access tokens; refresh tokens rotate on every use, a used one is
# blacklisted, and presenting it again revokes its whole sign-in. Rotation does not extend a sign-in: it ends
# JWT_REFRESH_DAYS after the password was given. Every token carries the user's token generation, so a password
# change, deactivation or lock-out revokes them all at once, access tokens included.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}
# Each sign-in and rotation leaves a token record; the expired ones are deleted daily (clinaiops/api/tasks.py).
CELERY_BEAT_SCHEDULE["api-tokens-expired-purge"] = {
    "task": "clinaiops.api.tasks.tokens_expired_purge",
    "schedule": 86400.0,
}
# The plausible window of a reading's or a symptom's time on the API (clinaiops/api/serializers.py): older, or
# further in the future (a device clock running fast), is a wrong clock and refused with 400.
PLAUSIBLE_PAST_DAYS = env_int("PLAUSIBLE_PAST_DAYS", 365)
PLAUSIBLE_FUTURE_MINUTES = env_int("PLAUSIBLE_FUTURE_MINUTES", 5)
# Idempotency-Key records of the API's POSTs are kept this long, then purged daily (clinaiops/api/idempotency.py).
IDEMPOTENCY_KEY_HOURS = env_int("IDEMPOTENCY_KEY_HOURS", 24)
CELERY_BEAT_SCHEDULE["api-idempotency-keys-purge"] = {
    "task": "clinaiops.api.tasks.idempotency_keys_purge",
    "schedule": 86400.0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ClinAIOps patient mobile API",
    "DESCRIPTION": "Home blood-pressure readings in; titration recommendations with plain-language reasons out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The error components and the table of error codes (clinaiops/api/schema.py), after the shared enums.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinaiops.api.schema.error_components_add",
    ],
    # One name per choice set the API shares between components (an alert's kind, a symptom's kind).
    "ENUM_NAME_OVERRIDES": {
        "AlertKindEnum": "clinaiops.care.models.AlertKind",
        "AlertStatusEnum": "clinaiops.care.models.AlertStatus",
        "SymptomKindEnum": "clinaiops.care.models.SymptomKind",
        "SymptomSeverityEnum": "clinaiops.care.models.SymptomSeverity",
    },
    # /api/v1/docs/ serves Swagger UI from drf-spectacular-sidecar's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Clinical defaults ----------------------------------------------------------------------------------
# How often the scheduler proposes a titration review for a patient; home BP titration is usually
# reassessed after 1–4 weeks on a regimen (ACC/AHA 2017 §8), and at most once per day here.
EVALUATION_INTERVAL_DAYS = env_int("EVALUATION_INTERVAL_DAYS", 7)
# Event-driven evaluation (issue 13; clinaiops/loops/services/evaluation_trigger.py): the reading that makes a patient
# due enqueues their evaluation at once, instead of waiting for the hourly schedule, which stays as the safety net.
EVALUATION_ON_READING = env_bool("EVALUATION_ON_READING", True)
# P0 alerts nobody acknowledges within this many minutes are escalated.
ALERT_ESCALATION_MINUTES = env_int("ALERT_ESCALATION_MINUTES", 15)
# Issue 11: each step of a care team's escalation chain waits ALERT_ESCALATION_MINUTES; the sweep runs this often,
# so a step is late by at most this much. Notices go to the portal inbox and to each NOTIFIERS channel (dotted
# paths of clinaiops.care.notifications.Notifier classes), with links to PORTAL_BASE_URL. The console email
# backend prints mail (the demo); production sets EMAIL_BACKEND and EMAIL_HOST etc. A major proposal waiting
# longer than REVIEW_SLA_HOURS is overdue on the worklist.
ALERT_ESCALATION_SWEEP_SECONDS = env_int("ALERT_ESCALATION_SWEEP_SECONDS", 60)
CELERY_BEAT_SCHEDULE["alerts-escalate"] = {
    "task": "clinaiops.loops.tasks.alerts_escalate",
    "schedule": float(ALERT_ESCALATION_SWEEP_SECONDS),
}
NOTIFIERS = env_list("NOTIFIERS", ["clinaiops.care.notifications.EmailNotifier"])
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5)
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "clinaiops@localhost")
REVIEW_SLA_HOURS = env_int("REVIEW_SLA_HOURS", 48)
# Audit ledger (DESIGN §4, docs/security.md): a signed checkpoint over the head after the commit of every N-th
# event and every AUDIT_CHECKPOINT_INTERVAL_SECONDS by beat, each also published to the witness. What can vanish
# unseen from the tail is what came after the newest witnessed checkpoint: fewer than N events, written within
# the last interval (plus the time a checkpoint task waits for a worker).
AUDIT_CHECKPOINT_EVERY = env_int("AUDIT_CHECKPOINT_EVERY", 100)
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 300)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "clinaiops.audit.tasks.audit_checkpoint_create",
    "schedule": float(AUDIT_CHECKPOINT_INTERVAL_SECONDS),
}
# Where checkpoints are published outside the database (clinaiops/audit/witness.py): "file", "syslog" and/or dotted
# paths to sink classes. The file defaults to ARTIFACT_ROOT/audit/witness.jsonl, resolved when used.
AUDIT_WITNESS_SINKS = env_list("AUDIT_WITNESS_SINKS", ["file"])
AUDIT_WITNESS_FILE = env_str("AUDIT_WITNESS_FILE", "")
AUDIT_WITNESS_SYSLOG_ADDRESS = env_str("AUDIT_WITNESS_SYSLOG_ADDRESS", "/dev/log")
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_ID = env_str("AUDIT_SIGNING_KEY_ID", "")
AUDIT_TRUSTED_PUBLIC_KEYS = env_list("AUDIT_TRUSTED_PUBLIC_KEYS", [])
AUDIT_KEY_DIR = VAR_DIR / "keys"
# HMAC key for digests of clinical values and free text in audit payloads (clinaiops/audit/digests.py): base64 of
# 32 random bytes. Empty: a development key generated under AUDIT_KEY_DIR. Production must set it.
AUDIT_DIGEST_KEY = env_str("AUDIT_DIGEST_KEY", "")
AUDIT_DIGEST_KEY_ID = env_str("AUDIT_DIGEST_KEY_ID", "")
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo-password")
# Where `manage.py simulate` writes its results and the portal's simulation page and the model card read them.
SIMULATION_RESULTS_PATH = env_path("SIMULATION_RESULTS_PATH", VAR_DIR / "simulation" / "latest.json")

# --- Operability (clinaiops/ops, docs/operations.md) ---
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; with no token, only loopback clients.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# "json": one object per line (time, level, logger, message, request_id / task_id), what production uses
# (settings/production.py); "plain" reads better on the demo's console and in tests. PHI is masked in both.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"phi": {"()": "clinaiops.ops.logs.PhiFilter"}},
    "formatters": {
        "json": {"()": "clinaiops.ops.logs.JsonFormatter"},
        "plain": {"()": "clinaiops.ops.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": ["phi"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"shap": {"level": "WARNING"}, "numba": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
# Celery workers log through the handler above (JSON with the task id), not Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Deployment and drift (issue 4) ---
# Canary routing hashes sha256("<salt>:<canary model hash>:<patient id>") into [0, 100); changing the salt
# reshuffles which patients a canary reaches, so set it once per installation.
CANARY_SALT = env_str("CANARY_SALT", "clinaiops-canary")
# The circuit breaker compares a rate only once both arms have this many decisions behind it.
CANARY_MIN_DECISIONS = env_int("CANARY_MIN_DECISIONS", 20)
# It rolls the canary back when the canary's rate exceeds production's by more than this, in percentage points.
CANARY_OVERRIDE_MARGIN_PP = env_int("CANARY_OVERRIDE_MARGIN_PP", 10)
CANARY_ERROR_MARGIN_PP = env_int("CANARY_ERROR_MARGIN_PP", 10)
# A P0 safety alert within this many days after a model's advice reached the patient counts against that advice.
CANARY_OUTCOME_DAYS = env_int("CANARY_OUTCOME_DAYS", 14)
# Drift compares the last DRIFT_WINDOW_DAYS of logged proposals with the production model's training snapshot;
# below DRIFT_MIN_CURRENT_ROWS rows PSI's small-sample bias alone reads "watch", so no severity is given.
DRIFT_WINDOW_DAYS = env_int("DRIFT_WINDOW_DAYS", 14)
DRIFT_MIN_CURRENT_ROWS = env_int("DRIFT_MIN_CURRENT_ROWS", 200)

# --- Model lifecycle (issue 4) ---
# Ed25519 key that signs model manifests (inference/manifest.py): base64 of a 32-byte seed. Empty: a development
# key generated under AUDIT_KEY_DIR. Production must set it. Public keys of rotated-out keys stay trusted for
# verification through MODEL_TRUSTED_PUBLIC_KEYS ("key_id:base64,…").
MODEL_SIGNING_KEY = env_str("MODEL_SIGNING_KEY", "")
MODEL_TRUSTED_PUBLIC_KEYS = env_list("MODEL_TRUSTED_PUBLIC_KEYS", [])
# The served model is the signed one (inference/runtime.py, docs/security.md "The served model"): a process
# re-hashes a cached model's files at its first use after this many seconds (at once if a file's inode, size,
# mtime or ctime changes; files are stat'ed at most every MODEL_RESTAT_SECONDS), and beat re-verifies the
# serving versions on disk at the same interval, opening the model_integrity alert that holds a failing version
# in every process.
MODEL_REVERIFY_SECONDS = env_int("MODEL_REVERIFY_SECONDS", 300)
MODEL_RESTAT_SECONDS = env_int("MODEL_RESTAT_SECONDS", 1)
CELERY_BEAT_SCHEDULE["model-reverify"] = {
    "task": "inference.tasks.model_reverify",
    "schedule": float(MODEL_REVERIFY_SECONDS),
}


def _model_gate_float(name: str, default: float) -> float:
    raw = env_str(name, str(default))
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"environment variable {name}={raw!r} must be between 0 and 1")
    return value


# Gates before a model version is validated (inference/gates.py, DESIGN §3).
MODEL_GATE_NONINFERIORITY_MARGIN = _model_gate_float("MODEL_GATE_NONINFERIORITY_MARGIN", 0.02)
MODEL_GATE_MAX_ECE = _model_gate_float("MODEL_GATE_MAX_ECE", 0.10)
MODEL_GATE_FAIRNESS_MAX_EOD = _model_gate_float("MODEL_GATE_FAIRNESS_MAX_EOD", 0.15)
MODEL_GATE_FAIRNESS_MAX_DPD = _model_gate_float("MODEL_GATE_FAIRNESS_MAX_DPD", 0.15)
MODEL_GATE_FAIRNESS_MIN_RATIO = _model_gate_float("MODEL_GATE_FAIRNESS_MIN_RATIO", 0.8)
MODEL_GATE_FAIRNESS_MIN_GROUP = env_int("MODEL_GATE_FAIRNESS_MIN_GROUP", 20)
# A group's TPR (FPR) is judged only with at least this many true positives (negatives); fewer are reported.
MODEL_GATE_FAIRNESS_MIN_RATE_ROWS = env_int("MODEL_GATE_FAIRNESS_MIN_RATE_ROWS", 20)
# Off by default: demographic parity and selection-rate ratios are reported, not judged, because groups differ in
# clinical need (patients over 75 have a higher target); equalized odds and TPR ratios are judged.
MODEL_GATE_FAIRNESS_PARITY_JUDGED = env_bool("MODEL_GATE_FAIRNESS_PARITY_JUDGED", False)
# Off: fairness failures are stored and must be acknowledged by the safety sign-off instead of rejecting the
# version. For synthetic demos only; the default enforces the gate.
MODEL_GATE_FAIRNESS_ENFORCED = env_bool("MODEL_GATE_FAIRNESS_ENFORCED", True)
# One-vs-rest classes whose disparity is judged; "increase" (being offered more medication) by default.
MODEL_GATE_FAIRNESS_POSITIVE_CLASSES = env_list("MODEL_GATE_FAIRNESS_POSITIVE_CLASSES", ["increase"])
# Re-scoring production on the candidate's held-out rows uses only rows production never trained on when at
# least this many are left; otherwise all of the candidate's validation rows (which can only favour production).
MODEL_GATE_MIN_RESCORE_ROWS = env_int("MODEL_GATE_MIN_RESCORE_ROWS", 30)

# --- Compliance exports (issue 9, compliance/) ---
# Ed25519 key that signs evidence-bundle manifests: base64 of a 32-byte seed, a key of its own (a leaked bundle
# key cannot forge checkpoints or model manifests). Empty: a development key under AUDIT_KEY_DIR; production
# refuses to start without it.
EVIDENCE_SIGNING_KEY = env_str("EVIDENCE_SIGNING_KEY", "")
EVIDENCE_SIGNING_KEY_ID = env_str("EVIDENCE_SIGNING_KEY_ID", "")
# Where finished export files are kept. Empty: ARTIFACT_ROOT/exports.
EXPORT_ROOT = env_str("EXPORT_ROOT", "")
# A PDF summarises: at most this many listing rows, then it says where the rest is (DESIGN §10: WeasyPrint takes
# about 20 s for a 2,000-row table).
EXPORT_PDF_MAX_ROWS = env_int("EXPORT_PDF_MAX_ROWS", 200)
# A running export whose heartbeat is older than this is re-queued by the sweeper (its worker died).
EXPORT_STALE_MINUTES = env_int("EXPORT_STALE_MINUTES", 15)
# The ledger page flags an actor refused this many times within this many minutes.
AUDIT_DENIED_BURST_COUNT = env_int("AUDIT_DENIED_BURST_COUNT", 5)
AUDIT_DENIED_BURST_MINUTES = env_int("AUDIT_DENIED_BURST_MINUTES", 10)
CELERY_BEAT_SCHEDULE["exports-sweep"] = {"task": "compliance.tasks.exports_sweep", "schedule": 300.0}
# WeasyPrint logs every layout step at INFO; a PDF export should log its result, not its pages.
LOGGING["loggers"].update({"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}})  # type: ignore[attr-defined]
if CELERY_TASK_ALWAYS_EAGER:
    # Eager tasks (the demo, tests) run inside the caller: one INFO line per task is noise there, not an event.
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}  # type: ignore[index]

# --- Encryption at rest (issue 8 §3, clinaiops/core/crypto, docs/security.md) ---
# AES-256-GCM keys for direct identifiers and free text, "key_id:base64-of-32-bytes,…", the first one current; the
# others stay readable until `manage.py rotate_keys` has moved every value onto the current one. The blind-index
# (HMAC) keys for MRN and name lookup, the same format, must be different keys. Empty: development keys generated
# under AUDIT_KEY_DIR. Production refuses to start without both.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
BLIND_INDEX_KEYS = env_list("BLIND_INDEX_KEYS", [])

# --- Recovery without a human (issue 8 §5, docs/operations.md "Recovery") ---
# A running training run refreshes its heartbeat this often; the sweeper requeues a running run whose heartbeat
# is older than TRAINING_STALE_SECONDS (its worker died) and a queued run nobody took for
# TRAINING_QUEUED_STALE_SECONDS (its message was lost). After TRAINING_MAX_REQUEUES requeues it fails the run with
# the reason instead. A long queue behind other training can look like a lost message: a requeue then only sends a
# second message, and the run still starts once (the claim is a conditional update).
TRAINING_HEARTBEAT_SECONDS = env_int("TRAINING_HEARTBEAT_SECONDS", 30)
TRAINING_STALE_SECONDS = env_int("TRAINING_STALE_SECONDS", 300)
TRAINING_QUEUED_STALE_SECONDS = env_int("TRAINING_QUEUED_STALE_SECONDS", 900)
TRAINING_MAX_REQUEUES = env_int("TRAINING_MAX_REQUEUES", 3)
# A due patient whose evaluation message was enqueued this long ago with no result (no recommendation, no
# recorded skip) is enqueued again by the evaluations sweep: the message was lost, or its task gave up.
EVALUATION_SWEEP_GRACE_SECONDS = env_int("EVALUATION_SWEEP_GRACE_SECONDS", 600)
RECOVERY_SWEEP_SECONDS = env_int("RECOVERY_SWEEP_SECONDS", 300)
# Month partitions of the readings and the ledger (PostgreSQL), made this many months ahead by a daily task.
PARTITION_MONTHS_AHEAD = env_int("PARTITION_MONTHS_AHEAD", 3)
if not 0 <= PARTITION_MONTHS_AHEAD <= 24:  # the partition functions refuse more: they run as the owner
    raise ConfigurationError("PARTITION_MONTHS_AHEAD must be between 0 and 24")
CELERY_BEAT_SCHEDULE["partitions-ensure"] = {"task": "clinaiops.ops.tasks.partitions_ensure", "schedule": 86400.0}
CELERY_BEAT_SCHEDULE["training-runs-sweep"] = {
    "task": "inference.tasks.training_runs_sweep",
    "schedule": float(RECOVERY_SWEEP_SECONDS),
}
CELERY_BEAT_SCHEDULE["evaluations-sweep"] = {
    "task": "clinaiops.loops.tasks.evaluations_sweep",
    "schedule": float(RECOVERY_SWEEP_SECONDS),
}
