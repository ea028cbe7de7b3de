"""Settings for the whole site, read from the environment only (see .env.example)."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from arbsite.roles import ROLE_PERMISSIONS

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_SECRET = "django-insecure-local-development-only"
# Seals the demo's stand-in keys for the simulated venues under DJANGO_DEBUG; published, so never
# a real key's (base64 of "local development only, not safe").
INSECURE_CREDENTIALS_KEY = "bG9jYWwgZGV2ZWxvcG1lbnQgb25seSwgbm90IHNhZmU="


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or default


def conn_max_age() -> int:
    return int(os.environ.get("DATABASE_CONN_MAX_AGE", "60"))


def database_from_url(url: str) -> dict:
    """Parse DATABASE_URL; PostgreSQL is the one database supported."""
    try:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age(), conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if config.get("ENGINE", "") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_URL must be postgres://..., not {url.split(':', 1)[0]!r}"
        )
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host/NAME)")
    return config


def embedded_database() -> dict:
    """The PostgreSQL server the project runs itself in var/ (arbsite.embedded_postgres)."""
    from arbsite import embedded_postgres

    return {
        "ENGINE": "arbsite.embedded_postgres",
        "NAME": embedded_postgres.DATABASE,
        "USER": embedded_postgres.SUPERUSER,
        "HOST": str(embedded_postgres.SOCKET_DIR),
        "PORT": str(embedded_postgres.PORT),
        "CONN_MAX_AGE": conn_max_age(),
        "CONN_HEALTH_CHECKS": True,
    }


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = INSECURE_SECRET
if not DEBUG and (not SECRET_KEY or SECRET_KEY == INSECURE_SECRET or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a long random value (50+ characters) when DJANGO_DEBUG "
        "is off; for local development set DJANGO_DEBUG=1."
    )

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "arbsite",
    "markets",
    "risk",
    "trading",
    "portfolio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "arbsite.sessions.idle_timeout",
    "django_otp.middleware.OTPMiddleware",
    "arbsite.twofactor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "arbsite.urls"
ASGI_APPLICATION = "arbsite.asgi.application"
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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Without DATABASE_URL, an embedded PostgreSQL that the first connection starts.
DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else embedded_database()
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # redis-py's plain pool raises "Too many connections" at its 100th command in flight in one
    # process; the blocking pool makes a burst wait (up to 20 s) for a free connection instead.
    REDIS_CACHE = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "pool_class": "redis.BlockingConnectionPool",
            "max_connections": 50,
            "timeout": 20,
            # A Redis that does not answer fails a read in seconds (the pages then say the cache
            # is unavailable) instead of holding a request until the client gives up.
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
    }
    CACHES = {
        "default": REDIS_CACHE,
        # The engine's published books, read by workers (paper fills, checks) and pages.
        "books": REDIS_CACHE,
    }
    # Up to 50 connections per process; a burst of WebSocket handshakes queues for them.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "arbsite.channel_layer.BlockingRedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "max_connections": 50, "timeout": 20}],
                "capacity": 200,
                "expiry": 10,
            },
        }
    }
else:
    # The database cache is shared by the engine and web processes on the embedded default.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "arbsite_cache",
        },
        # Engine, pages and eager tasks share one process on the embedded default.
        "books": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Embedded default: an in-process broker (tasks run eagerly); the host only silences kombu's
# "No hostname was supplied" warning, which `make run` printed at its first task.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A login's failures are cleared once it is complete, the code step included (arbsite.twofactor):
# axes' own reset at the password would let wrong codes start again from zero at every login.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Roles whose members log in with a second factor (an authenticator app's TOTP code, or a
# recovery code), enrolled at their first login; superusers always.
OTP_REQUIRED_ROLES = env_list("OTP_REQUIRED_ROLES", ["Trader", "Risk manager", "Administrator"])
if unknown_roles := set(OTP_REQUIRED_ROLES) - set(ROLE_PERMISSIONS):
    raise ImproperlyConfigured(
        f"OTP_REQUIRED_ROLES names no such role: {', '.join(sorted(unknown_roles))} "
        f"(the roles are {', '.join(ROLE_PERMISSIONS)})"
    )
OTP_TOTP_ISSUER = "Arbitrage desk"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# A login lasts a working day from its first request, and ends sooner after an idle spell
# without a request (arbsite.sessions); both in seconds.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(10 * 3600)))
SESSION_IDLE_TIMEOUT_S = int(os.environ.get("SESSION_IDLE_TIMEOUT_S", str(30 * 60)))
# How often an open live socket re-checks its login (logout, age, idle, role), at its next push.
SOCKET_RECHECK_S = float(os.environ.get("SOCKET_RECHECK_S", "30"))
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"

from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    # An injected <base> could point every relative URL elsewhere; no page embeds plugins.
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Built exports; served only through the permission-checked download view, never as /media/.
MEDIA_ROOT = BASE_DIR / "var" / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Apprise URLs that receive alerts (kill switch, limit hit, one-legged trade, feed down).
ALERT_URLS = env_list("ALERT_URLS", [])
# Simulated order latency of the paper venue.
PAPER_FILL_LATENCY_MS = float(os.environ.get("PAPER_FILL_LATENCY_MS", "0"))
# Fernet key that encrypts exchange API credentials at rest; required only to store or use them.
CREDENTIALS_KEY = os.environ.get("CREDENTIALS_KEY", "")
if not CREDENTIALS_KEY and DEBUG:
    CREDENTIALS_KEY = INSECURE_CREDENTIALS_KEY
if not DEBUG and CREDENTIALS_KEY == INSECURE_CREDENTIALS_KEY:
    raise ImproperlyConfigured(
        "CREDENTIALS_KEY is the published development key; make one with Fernet.generate_key()."
    )

# Live accounts' balances are compared with their venues this often (beat), and automatic live
# execution runs only while every venue's last comparison is younger than the maximum age.
RECONCILE_EVERY_S = float(os.environ.get("RECONCILE_EVERY_S", "60"))
RECONCILIATION_MAX_AGE_S = float(os.environ.get("RECONCILIATION_MAX_AGE_S", "300"))

# Closed opportunities never taken are deleted this many days after they opened (rolled up first).
RETENTION_DAYS = int(os.environ.get("RETENTION_DAYS", "90"))

# The database scheduler (django-celery-beat) copies this entry into its PeriodicTask table at
# start-up; the report jobs are PeriodicTasks created by trading's migration 0004.
CELERY_BEAT_SCHEDULE = {
    # Finish or fail trades a killed worker left half-done.
    "recover-trades": {"task": "trading.tasks.recover_trades", "schedule": 60.0},
    # The account's fee tier at each live venue (tiers move with 30-day volume).
    "sync-venue-fees": {"task": "markets.tasks.sync_venue_fees", "schedule": 3600.0},
    # Each live account's holdings at its venue against its ledger.
    "reconcile-balances": {
        "task": "trading.tasks.reconcile_balances",
        "schedule": RECONCILE_EVERY_S,
    },
}

# How old the engine's heartbeat may be before /healthz reports the engine down.
ENGINE_HEARTBEAT_MAX_AGE_S = float(os.environ.get("ENGINE_HEARTBEAT_MAX_AGE_S", "30"))
# Bearer token for scraping /metrics: the web's, and the engine's own port when it is set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Address the engine's own /metrics port listens on (run_arbitrage): loopback unless a scraper
# on another host needs it, e.g. 0.0.0.0 in a container (then set METRICS_TOKEN too).
ENGINE_METRICS_ADDR = os.environ.get("ENGINE_METRICS_ADDR", "127.0.0.1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "markets.simulator": {"level": "WARNING"},
    },
}
