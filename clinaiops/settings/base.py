"""Settings shared by every environment. Defaults are the embedded runtime (DESIGN §7): SQLite, eager
Celery and artifacts under ./var/artifacts, so `make demo` needs nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clinaiops.env import env_bool, env_database, env_int, env_list, env_path, env_str

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
    "axes",
    "clinaiops.core",
    "clinaiops.audit",
    "clinaiops.care",
    "inference",
    "inference.monitoring",
    "governance",
    "clinaiops.loops",
    "clinaiops.api",
    "clinaiops.portal",
    "compliance",
    "fixtures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "clinaiops.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
# Failed signature re-authentications within the window lock the account for the lockout period.
SIGNATURE_MAX_FAILURES = env_int("SIGNATURE_MAX_FAILURES", 5)
SIGNATURE_FAILURE_WINDOW_MINUTES = env_int("SIGNATURE_FAILURE_WINDOW_MINUTES", 15)
SIGNATURE_LOCKOUT_MINUTES = env_int("SIGNATURE_LOCKOUT_MINUTES", 30)
LOGIN_URL = "portal:login"
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
if str(DATABASES["default"]["NAME"]).startswith(str(VAR_DIR)):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default must work on a fresh clone
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

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
    "audit-checkpoint": {"task": "clinaiops.audit.tasks.audit_checkpoint_create", "schedule": 3600.0},
    "drift-report-daily": {"task": "inference.monitoring.tasks.drift_report_compute", "schedule": 86400.0},
    "canary-breaker-check": {"task": "inference.monitoring.tasks.canary_breaker_check", "schedule": 900.0},
}

# --- REST framework -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clinaiops.api.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"token": env_str("TOKEN_THROTTLE_RATE", "20/min")},
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ClinAIOps patient mobile API",
    "DESCRIPTION": "Home blood-pressure readings in; titration recommendations with plain-language reasons out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
}

# --- Clinical defaults ----------------------------------------------------------------------------------
# How often the scheduler proposes a titration review for a patient; home BP titration is usually
# reassessed after 1–4 weeks on a regimen (ACC/AHA 2017 §8), and at most once per day here.
EVALUATION_INTERVAL_DAYS = env_int("EVALUATION_INTERVAL_DAYS", 7)
# P0 alerts nobody acknowledges within this many minutes are escalated.
ALERT_ESCALATION_MINUTES = env_int("ALERT_ESCALATION_MINUTES", 15)
# Audit ledger: a signed checkpoint over the head every N events (and on demand / hourly by beat).
AUDIT_CHECKPOINT_EVERY = env_int("AUDIT_CHECKPOINT_EVERY", 1000)
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_ID = env_str("AUDIT_SIGNING_KEY_ID", "")
AUDIT_TRUSTED_PUBLIC_KEYS = env_list("AUDIT_TRUSTED_PUBLIC_KEYS", [])
AUDIT_KEY_DIR = VAR_DIR / "keys"
# HMAC key for digests of clinical values and free text in audit payloads (clinaiops/audit/digests.py): base64 of
# 32 random bytes. Empty: a development key generated under AUDIT_KEY_DIR. Production must set it.
AUDIT_DIGEST_KEY = env_str("AUDIT_DIGEST_KEY", "")
AUDIT_DIGEST_KEY_ID = env_str("AUDIT_DIGEST_KEY_ID", "")
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo-password")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"shap": {"level": "WARNING"}, "numba": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

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


def _model_gate_float(name: str, default: float) -> float:
    from clinaiops.env import ConfigurationError

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
# Off: fairness failures are stored and must be acknowledged by the safety sign-off instead of rejecting the
# version. For synthetic demos only; the default enforces the gate.
MODEL_GATE_FAIRNESS_ENFORCED = env_bool("MODEL_GATE_FAIRNESS_ENFORCED", True)
# One-vs-rest classes whose disparity is judged; "increase" (being offered more medication) by default.
MODEL_GATE_FAIRNESS_POSITIVE_CLASSES = env_list("MODEL_GATE_FAIRNESS_POSITIVE_CLASSES", ["increase"])
# Re-scoring production on the candidate's held-out rows uses only rows production never trained on when at
# least this many are left; otherwise all of the candidate's validation rows (which can only favour production).
MODEL_GATE_MIN_RESCORE_ROWS = env_int("MODEL_GATE_MIN_RESCORE_ROWS", 30)
