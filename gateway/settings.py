"""Django settings, read from the environment with django-environ.

Variables (see README "Environment"): DATABASE_URL, REDIS_URL, SECRET_KEY,
GATEWAY_MASTER_KEY, GATEWAY_ENCRYPTION_KEY, plus the GATEWAY_* tuning knobs below.
A file `.gateway.local.env` at the repo root (written by `make run` on first start)
is read for local development, never in production; real environment variables always win.

`GATEWAY_ENV=production` turns on the production rules (README "Production"): SECRET_KEY
and ALLOWED_HOSTS must be set (start-up fails otherwise), DEBUG must be off, and HSTS,
the HTTPS redirect and secure cookies are on unless an environment variable turns them
off. Anything else (`make run`, the tests) works with no configuration at all.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
PRODUCTION = env.str("GATEWAY_ENV", default="development").strip().lower() == "production"
_local_env = BASE_DIR / ".gateway.local.env"
if _local_env.exists() and not PRODUCTION:  # development secrets never configure a production process
    environ.Env.read_env(str(_local_env), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when GATEWAY_ENV=production.")
    SECRET_KEY = env("SECRET_KEY")  # ImproperlyConfigured when missing: no default in production
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("Set ALLOWED_HOSTS to the gateway's host names when GATEWAY_ENV=production.")
else:
    SECRET_KEY = env("SECRET_KEY", default="insecure-dev-only-secret-key-change-me")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS and cookies (production defaults; each can be turned off from the environment) ---
# The admin only: /v1/* is served by routing.api.handler.ApiHandler, which runs no middleware.
SECURE_HSTS_SECONDS = env.int("GATEWAY_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("GATEWAY_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("GATEWAY_HSTS_PRELOAD", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("GATEWAY_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapes come over plain HTTP
SESSION_COOKIE_SECURE = env.bool("GATEWAY_SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy that sets it, e.g. GATEWAY_PROXY_SSL_HEADER=X-Forwarded-Proto. Only when
# the proxy always sets (or strips) that header: a client could otherwise claim HTTPS.
_proxy_ssl_header = env.str("GATEWAY_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# --- admin login throttling (django-axes) ---
# A username is locked for one client address after AXES_FAILURE_LIMIT failed logins, for the
# cool-off time; a success resets the count. Behind a proxy, run uvicorn with
# --forwarded-allow-ips=<proxy address> so REMOTE_ADDR is the client's. `manage.py axes_reset` unlocks.
AXES_FAILURE_LIMIT = env.int("GATEWAY_ADMIN_LOGIN_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("GATEWAY_ADMIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "adrf",
    "simple_history",
    "axes",
    "django_filters",  # the management API's filters (/api/, routing/management_api)
    "drf_spectacular",  # its OpenAPI schema
    "drf_spectacular_sidecar",  # Swagger UI and Redoc, served by the gateway (no CDN)
    "routing",
]

# These run for the admin only: gateway.asgi serves /v1/* with routing.api.handler, which
# runs no middleware (each classic Django middleware costs a thread hop per request).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # /static/ (the console block below)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",  # who made each config change
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "gateway.urls"
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
ASGI_APPLICATION = "gateway.asgi.application"

(BASE_DIR / "var").mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'gateway.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the server's log writer and readers (admin, tests) work side by side;
    # IMMEDIATE transactions wait for the write lock (busy timeout) instead of failing with
    # "database is locked" when a read-then-write block meets a log-writer commit.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20,
         "transaction_mode": "IMMEDIATE"}
    )
    # A file, not ":memory:", so integration tests can share it with a server process.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- ops console: static files, change history (README "Ops console") ---
# WhiteNoise serves /static/ from the gateway process itself: gzip-compressed, and after `collectstatic`
# (`make run` runs it) with content-hashed names cached for a year. Before `collectstatic` (a test run, a
# server started by hand) it serves the apps' own files under their plain names.
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "gateway.staticfiles.StaticStorage"},
}
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
FORMAT_MODULE_PATH = ["gateway.formats"]  # timestamps with seconds: 2026-11-25 14:03:07 UTC

# /v1/* bodies are bounded by GATEWAY_MAX_BODY_BYTES (routing.api.handler, 413) and read with
# request.read(), which this does not limit; this bounds admin forms, the public login page
# included (the policy preview's body field is 1 MB at most).
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024

# The /v1 views set their own authentication, permissions, negotiation and errors
# (routing/api/base.py); these defaults are for any other DRF view.
REST_FRAMEWORK = {
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The management API's schema (README "Management API"): /api/ only, request and response bodies apart
# (write-only fields), Swagger UI and Redoc from drf-spectacular-sidecar's static files.
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway management API",
    "DESCRIPTION": "Routes, policies, client keys and the request log. Roles: ops (read and write), auditor "
    "(read only). Errors: {\"error\": {\"message\", \"type\", \"param\", \"code\", \"fields\"}}.",
    "VERSION": "1.0.0",
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["routing.management_api.schema.only_management_api"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

REDIS_URL = env("REDIS_URL", default="")

GATEWAY = {
    "MASTER_KEY": env("GATEWAY_MASTER_KEY", default=""),
    # Comma-separated; the first encrypts, all decrypt (key rotation).
    "ENCRYPTION_KEYS": env.list("GATEWAY_ENCRYPTION_KEY", default=[]),
    "MAX_BODY_BYTES": env.int("GATEWAY_MAX_BODY_BYTES", default=32 * 1024 * 1024),
    # How often each process checks the database for route changes.
    "ROUTE_REFRESH_SECONDS": env.float("GATEWAY_ROUTE_REFRESH_SECONDS", default=2.0),
    "LOG_FLUSH_SECONDS": env.float("GATEWAY_LOG_FLUSH_SECONDS", default=0.25),
    "LOG_BATCH_SIZE": env.int("GATEWAY_LOG_BATCH_SIZE", default=500),
    "GIL_SWITCH_INTERVAL": env.float("GATEWAY_GIL_SWITCH_INTERVAL", default=0.0005),
    # Spool file of earlier versions: replayed once at startup if present (the journal replaced it).
    "LOG_SPOOL_FILE": env("GATEWAY_LOG_SPOOL_FILE", default=str(BASE_DIR / "var" / "requestlog-spool.jsonl")),
    # Every accepted log row is appended here before its request ends (routing/audit/journal.py).
    "LOG_JOURNAL_DIR": env("GATEWAY_LOG_JOURNAL_DIR", default=str(BASE_DIR / "var" / "requestlog-journal")),
    # fdatasync the journal before each batch insert (machine crashes); a process crash never needs it.
    "LOG_JOURNAL_FSYNC": env.bool("GATEWAY_LOG_JOURNAL_FSYNC", default=True),
    "RESPONSE_AFFINITY_TTL_SECONDS": env.int("GATEWAY_RESPONSE_AFFINITY_TTL_SECONDS", default=30 * 24 * 3600),
    "UPSTREAM_MAX_CONNECTIONS": env.int("GATEWAY_UPSTREAM_MAX_CONNECTIONS", default=1000),
    # The Chat bridge's own response store (routing/forwarding/bridge_store.py).
    "BRIDGE_STORE_TTL_SECONDS": env.int("GATEWAY_BRIDGE_STORE_TTL_SECONDS", default=30 * 24 * 3600),
    "BRIDGE_STORE_MAX_ROW_BYTES": env.int("GATEWAY_BRIDGE_STORE_MAX_ROW_BYTES", default=4 * 1024 * 1024),
    "BRIDGE_STORE_MAX_TOTAL_BYTES": env.int("GATEWAY_BRIDGE_STORE_MAX_TOTAL_BYTES", default=1024 ** 3),
    "BRIDGE_STORE_PRUNE_SECONDS": env.int("GATEWAY_BRIDGE_STORE_PRUNE_SECONDS", default=600),
    # Every Redis key the gateway writes starts with this (several gateways, or tests, can share a Redis).
    "REDIS_PREFIX": env("GATEWAY_REDIS_PREFIX", default="gw:"),
    # Idle upstream connections are closed after this long: below the 5 s of uvicorn/Node upstreams.
    "UPSTREAM_KEEPALIVE_SECONDS": env.float("GATEWAY_UPSTREAM_KEEPALIVE_SECONDS", default=4.0),
    "UPSTREAM_MAX_HEADER_BYTES": env.int("GATEWAY_UPSTREAM_MAX_HEADER_BYTES", default=64 * 1024),
    "UPSTREAM_MAX_BODY_BYTES": env.int("GATEWAY_UPSTREAM_MAX_BODY_BYTES", default=64 * 1024 * 1024),
    # Operations (README "Operations"): the log writer counts as stuck (/readyz 503) when rows have waited
    # this long with nothing written; /metrics wants this bearer token (unset: loopback clients only);
    # which requests get a log line (all | errors | off).
    "LOG_STALL_SECONDS": env.float("GATEWAY_LOG_STALL_SECONDS", default=30.0),
    "METRICS_TOKEN": env.str("GATEWAY_METRICS_TOKEN", default=""),
    "LOG_REQUESTS": env.str("GATEWAY_LOG_REQUESTS", default="").strip().lower() or "errors",
}

# The gateway's own logs (README "Operations"): JSON lines, or plain text (`make run` sets
# GATEWAY_LOG_FORMAT=text). Secrets are masked in every line; routing.monitoring.logs.configure also gives
# uvicorn's own handlers (server messages, the access log when it is on) this formatter.
LOGGING_CONFIG = "routing.monitoring.logs.configure"
LOG_FORMAT = env.str("GATEWAY_LOG_FORMAT", default="").strip().lower() or "json"
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"GATEWAY_LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "routing.monitoring.logs.JsonFormatter"}},
    "filters": {"redact": {"()": "routing.monitoring.logs.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "httpx": {"level": "WARNING"},  # one INFO line per upstream request otherwise
    },
}
