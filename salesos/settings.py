"""Settings, read only from the environment (see .env.example for every variable).

Defaults are the secure production ones; `make run` and `make test` set the development values
explicitly, so a forgotten variable in production never silently turns DEBUG on.
"""

import os
import sys
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file; ENV_FILE names another file.
env_file = Path(os.environ.get("ENV_FILE") or BASE_DIR / ".env")
if env_file.is_file():
    env.read_env(str(env_file))

TESTING = os.environ.get("SALESOS_TESTING") == "1" or "pytest" in sys.modules

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="" if not (DEBUG or TESTING) else "insecure-development-key")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The address customers' providers and invited users reach us on (webhook signatures, e-mails).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "rest_framework",
    "drf_spectacular",
    "tenants",
    "channels_app",
    "crm",
    "privacy",
]

if TESTING:
    # Test-only tenant-owned models that exercise the base class (foreign keys, RLS).
    INSTALLED_APPS.append("tests.probe_app")

GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET", default="")
GOOGLE_LOGIN_ENABLED = bool(GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)
if GOOGLE_LOGIN_ENABLED:
    INSTALLED_APPS.append("allauth.socialaccount.providers.google")
    SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APP": {"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""},
            "SCOPE": ["profile", "email"],
            "AUTH_PARAMS": {"access_type": "online"},
        }
    }

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last: it resolves /app/<tenant-slug>/ after the user is known and activates the tenant.
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "salesos.urls"
WSGI_APPLICATION = "salesos.wsgi.application"

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
                "django.template.context_processors.i18n",
                "tenants.context_processors.tenancy",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# PostgreSQL in production and CI (row-level security is the second isolation wall); an
# embedded SQLite file for `make run` on a fresh clone.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Server-side parameters and prepared statements: PostgreSQL plans a repeated query once per
# connection (the webhook hot path runs the same few statements all day). Turn it off behind
# a pooler in transaction mode that cannot keep prepared statements (pgbouncer before 1.21, or
# without max_prepared_statements).
if IS_POSTGRES and env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 5}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://salesos")}

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks_late, Redis hands a task that is not acknowledged within this many seconds to
# another worker, even while the first still runs it (an export of a large business, a long
# purge). Workers give their tasks back when they stop, so a long timeout only delays the
# redelivery of a task whose worker was killed outright.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600)
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Outbound messages whose delivery task was lost (broker down at commit, dead worker).
    "recover-stuck-messages": {
        "task": "channels_app.tasks.recover_stuck_messages",
        "schedule": 60.0,
    },
    # Appointment reminders that are due (each sent once).
    "send-appointment-reminders": {
        "task": "crm.tasks.send_appointment_reminders",
        "schedule": 60.0,
    },
    # Data-request export archives past their expiry are deleted.
    "expire-data-request-exports": {
        "task": "privacy.tasks.expire_exports",
        "schedule": 3600.0,
    },
    # A data request whose queue message or worker was lost is queued again.
    "requeue-stalled-data-requests": {
        "task": "privacy.tasks.requeue_stalled_requests",
        "schedule": 300.0,
    },
    # Owners get one e-mail per overdue data request.
    "notify-overdue-data-requests": {
        "task": "privacy.tasks.notify_overdue_requests",
        "schedule": 3600.0,
    },
    # Retention (P9): each business's expired messages, payloads, logs and files.
    "purge-expired": {"task": "privacy.tasks.purge_expired", "schedule": 24 * 3600.0},
    # Tenant deletion (P10): businesses whose grace period is over.
    "purge-deleted-tenants": {
        "task": "privacy.tasks.purge_deleted_tenants",
        "schedule": 24 * 3600.0,
    },
}

# --- Privacy --------------------------------------------------------------------------------
# The retention purge rests this multiple of each batch's duration before the next one, so
# live webhooks keep the CPU and disk they need (0 = no rest; bench/purge.py measures it).
RETENTION_PURGE_PAUSE = env.float("RETENTION_PURGE_PAUSE", default=6.0)
# Rows the purge deletes in one transaction: a batch's length is how long a live webhook that
# meets it can be slowed by it (bench/purge.py --compare weighs one setting against another).
RETENTION_PURGE_BATCH_SIZE = env.int("RETENTION_PURGE_BATCH_SIZE", default=1000)
# The purge checks foreign keys once per batch instead of PostgreSQL's once per row, when the
# database role may set session_replication_role (privacy.retention.purge_rights).
RETENTION_PURGE_OWN_KEY_CHECKS = env.bool("RETENTION_PURGE_OWN_KEY_CHECKS", default=True)
# The WAL compression the purge's batches use when the role may set wal_compression: its
# deletes write page images that compress to a third ("" = the server's setting).
RETENTION_PURGE_WAL_COMPRESSION = env.str("RETENTION_PURGE_WAL_COMPRESSION", default="lz4")
# Days a business scheduled for deletion stays locked (and can be restored) before it is purged.
TENANT_DELETION_GRACE_DAYS = env.int("TENANT_DELETION_GRACE_DAYS", default=30)
# Days until database backups that still hold a deleted business roll off (shown to owners).
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=90)
# Failed logins for one address within the window that make a security event.
FAILED_LOGIN_BURST = env.int("FAILED_LOGIN_BURST", default=5)
FAILED_LOGIN_WINDOW_MINUTES = env.int("FAILED_LOGIN_WINDOW_MINUTES", default=15)
# Rows of personal data in one export that make a "large export" security event.
MASS_EXPORT_ROWS = env.int("MASS_EXPORT_ROWS", default=1000)
# The platform's own sub-processors (hosting, e-mail), published on each business's list:
# "Name|purpose|location;Name|purpose|location".
PLATFORM_SUBPROCESSORS = env(
    "PLATFORM_SUBPROCESSORS", default="Platform hosting provider|Servers and database|EU"
)

# --- Messaging providers --------------------------------------------------------------------
# Empty in production (the real Twilio hosts). Tests and benchmarks point the official twilio
# client at a local stub that speaks Twilio's REST API: https://<host>.twilio.com/<path> is then
# requested as <TWILIO_API_BASE_URL>/twilio/<host>/<path>.
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="").rstrip("/")
META_GRAPH_BASE_URL = env("META_GRAPH_BASE_URL", default="https://graph.facebook.com").rstrip("/")
META_GRAPH_VERSION = env("META_GRAPH_VERSION", default="v21.0")
# Seconds before a provider API call gives up (connect + read).
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# Largest webhook body accepted, in bytes (larger ones get 413 and are counted).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
# Per-channel send rate limits live in Redis (a token bucket shared by every worker). "memory"
# keeps them in-process instead (development without Redis).
RATE_LIMIT_REDIS_URL = env("RATE_LIMIT_REDIS_URL", default=REDIS_URL)
# Delivery: attempts before a transiently failing message is marked failed.
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=6)

# --- AI bot ---------------------------------------------------------------------------------
# Any OpenAI-compatible server (the official `openai` SDK). With no key (here or in a
# business's bot profile) the local responder answers extractively from the knowledge base.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="https://api.openai.com/v1").rstrip("/")
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=20.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
# Price per 1,000 tokens, "model=input:output" pairs, comma-separated; models not listed cost
# OPENAI_DEFAULT_PRICE ("input:output").
OPENAI_PRICES = env(
    "OPENAI_PRICES",
    default="gpt-4o-mini=0.00015:0.0006,gpt-4o=0.0025:0.01,gpt-4.1-mini=0.0004:0.0016",
)
OPENAI_DEFAULT_PRICE = env("OPENAI_DEFAULT_PRICE", default="0.001:0.002")
# Tokens a business starts with (its balance is created on first use).
BOT_STARTING_TOKENS = env.int("BOT_STARTING_TOKENS", default=50_000)
# How many of the conversation's latest messages (and knowledge chunks) go into a request.
BOT_CONTEXT_MESSAGES = env.int("BOT_CONTEXT_MESSAGES", default=10)
BOT_CONTEXT_CHUNKS = env.int("BOT_CONTEXT_CHUNKS", default=4)

# --- Accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "tenants:home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_SIGNUP_FORM_CLASS = "tenants.forms.SignupExtraForm"
ACCOUNT_ADAPTER = "tenants.adapters.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Sales OS] "
ACCOUNT_PREVENT_ENUMERATION = True
# Login and password-reset throttling (allauth counts in the cache; Redis in production).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/5m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
}
SOCIALACCOUNT_AUTO_SIGNUP = False  # the business name and the terms box are still asked for
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Sales OS"

# --- E-mail ---------------------------------------------------------------------------------
# consolemail:// in development; smtp+tls://user:password@host:587 in production.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Sales OS <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("pt", "Português"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=not (DEBUG or TESTING))
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
# Largest CSV file a contact import accepts.
CONTACT_IMPORT_MAX_BYTES = env.int("CONTACT_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)

# --- Security (P14) -------------------------------------------------------------------------
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
# How many reverse proxies stand in front of the application: the access log then takes the
# client's address from X-Forwarded-For as the outermost trusted proxy saw it (0 = REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if env.bool("USE_X_FORWARDED_PROTO", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not (DEBUG or TESTING))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Our own scripts and styles only: no third-party code on any page (P4).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF, "https://accounts.google.com"],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- Encryption at rest (P13) ---------------------------------------------------------------
# Comma-separated `key-id:base64-of-32-bytes`, newest first (see salesos/encryption.py).
# Generate a key with: manage.py rotate_encryption_keys --generate-key KEY_ID
_DEV_ENCRYPTION_KEY = "dev:ZGV2ZWxvcG1lbnQtb25seS1rZXktMzItYnl0ZXMhISE="
FIELD_ENCRYPTION_KEYS = env(
    "FIELD_ENCRYPTION_KEYS", default=_DEV_ENCRYPTION_KEY if (DEBUG or TESTING) else ""
)
if not FIELD_ENCRYPTION_KEYS:
    raise environ.ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DEBUG is off.")

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api_auth.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sales OS API",
    "VERSION": "1.0.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Product settings -----------------------------------------------------------------------
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
SIGNUP_OPEN = env.bool("SIGNUP_OPEN", default=True)
