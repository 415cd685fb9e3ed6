"""Settings of the example shop: embedded defaults (SQLite, local files, a file-system Celery broker).

Environment variables: DASHSCOPE_API_KEY, DASHSCOPE_BASE_URL, DASHSCOPE_MODEL, TRYON_PUBLIC_BASE_URL,
SHOP_DEBUG (1 in `make demo`, off otherwise), SHOP_TRYON_BACKEND, SHOP_TRYON_JSON (more TRYON keys),
SHOP_DATABASE_URL (PostgreSQL instead of SQLite), CELERY_BROKER_URL (Redis or RabbitMQ instead of files).
"""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SHOP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-shop-not-for-production")
# Off unless asked for: `make demo` sets SHOP_DEBUG=1 for the local demo; any other start runs without it.
DEBUG = os.environ.get("SHOP_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_tryon",
    "shop",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # English or Simplified Chinese: cookie, then Accept-Language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "example_project.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        "OPTIONS": {"timeout": 20},
    }
}
# A production-like run (make bench, make chaos): SHOP_DATABASE_URL=postgres://user@host:5432/name
_database_url = urlsplit(os.environ.get("SHOP_DATABASE_URL", ""))
if _database_url.scheme in ("postgres", "postgresql"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _database_url.path.lstrip("/"),
            "USER": _database_url.username or "postgres",
            "PASSWORD": _database_url.password or "",
            "HOST": _database_url.hostname or "127.0.0.1",
            "PORT": str(_database_url.port or 5432),
            "CONN_MAX_AGE": 60,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = True
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
STATIC_URL = "/static/"
# Person photos and results are never served from MEDIA_URL: only through django_tryon's signed URLs.
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

# -- django-tryon -------------------------------------------------------------------------------
TRYON_PRODUCT_MODEL = "shop.Product"
# Without a DashScope key the demo talks to the bundled sandbox (a DashScope look-alike that renders
# with the offline engine), started by `manage.py tryon_demo`. DASHSCOPE_BASE_URL overrides either way.
DASHSCOPE_API_KEY = os.environ.get("DASHSCOPE_API_KEY", "")
SANDBOX_PORT = int(os.environ.get("SHOP_SANDBOX_PORT", "8765"))
SHOP_USES_SANDBOX = not DASHSCOPE_API_KEY and not os.environ.get("DASHSCOPE_BASE_URL")
TRYON = {
    "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
    "OPTIONS": {
        "api_key": DASHSCOPE_API_KEY or "sk-sandbox",
        "base_url": os.environ.get("DASHSCOPE_BASE_URL")
        or (f"http://127.0.0.1:{SANDBOX_PORT}/api/v1" if SHOP_USES_SANDBOX else None),
        "model": os.environ.get("DASHSCOPE_MODEL", "aitryon"),
    },
    # Empty: the provider gets the inputs through its own temporary upload (works from a laptop, and
    # with the sandbox). Set it to this site's public https:// address to use signed URLs instead.
    "PUBLIC_BASE_URL": os.environ.get("TRYON_PUBLIC_BASE_URL", ""),
    # The widget's "Add to cart" posts here (the shop's session cart, shop/views.py).
    "ADD_TO_CART_URL": "shop:cart_add",
}
if os.environ.get("SHOP_TRYON_BACKEND") == "local":  # the engine inside the worker, no HTTP at all
    SHOP_USES_SANDBOX = False
    TRYON = {
        "BACKEND": "django_tryon.backends.local.LocalBackend",
        "OPTIONS": {"work_dir": str(VAR_DIR / "tryon-work")},
        "ADD_TO_CART_URL": "shop:cart_add",
    }
# Any other TRYON key, as JSON: SHOP_TRYON_JSON='{"DAILY_LIMIT_PER_SESSION": 1}' make demo
TRYON.update(json.loads(os.environ.get("SHOP_TRYON_JSON") or "{}"))

# -- Celery: a file-system broker, so no Redis or RabbitMQ is needed -----------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "done"),
        "store_processed": False,
        # The exchange table; kombu's default is ./control in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
    }
    if CELERY_BROKER_URL == "filesystem://"
    else {}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each worker process takes one message at a time: a step waiting behind a busy process of one worker
# while another worker is idle would leave a provider slot empty (docs/deployment.rst).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "tryon-tick": {"task": "django_tryon.tick_tryons", "schedule": 2.0},
    "tryon-purge": {"task": "django_tryon.purge_tryons", "schedule": 24 * 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_tryon": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
