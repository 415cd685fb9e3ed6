"""Settings for the test suite. SQLite by default; PostgreSQL when DJANGO_TRYON_TEST_DB=postgres (CI)."""

import json
import os
import tempfile
import uuid

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
USE_I18N = True
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["*"]
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
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("DJANGO_TRYON_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DJANGO_TRYON_WORKER_DB") or os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": os.environ.get("DJANGO_TRYON_TEST_DB_NAME", "test_django_tryon")},
        }
    }
else:
    # A file, not :memory:, so a Celery worker process can share the test database.
    _db_dir = os.environ.get("DJANGO_TRYON_TEST_DB_DIR") or tempfile.gettempdir()
    _db_name = os.environ.get("DJANGO_TRYON_WORKER_DB") or os.path.join(
        _db_dir, f"django_tryon_tests_{os.getpid()}.sqlite3"
    )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_name,
            "TEST": {"NAME": _db_name},
            "OPTIONS": {"timeout": 30},
        }
    }

# Files go to a real directory (shared with worker processes in the integration tests).
MEDIA_ROOT = os.environ.get("DJANGO_TRYON_TEST_MEDIA") or tempfile.mkdtemp(prefix="django_tryon_media_")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "secondary": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}

TRYON_PRODUCT_MODEL = "testapp.Product"
TRYON = {
    "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}

# The integration tests hand their TRYON settings to the worker process through the environment.
TRYON.update(json.loads(os.environ.get("DJANGO_TRYON_TEST_TRYON_JSON", "{}")))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
# Every test run on the machine (CI's, a developer's, another checkout's) shares Redis and RabbitMQ: this run
# and the worker processes it starts (they inherit the variable) have queues and Redis keys of their own.
_test_run = os.environ.setdefault("DJANGO_TRYON_TEST_RUN", uuid.uuid4().hex[:12])
CELERY_TASK_DEFAULT_QUEUE = f"tryon-tests-{_test_run}"
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"tryon-tests-{_test_run}:"}  # Redis (AMQP ignores it)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
LOGGING_CONFIG = None
