"""Settings for django-tryon, read lazily from ``settings.TRYON`` through one object."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .exceptions import TryOnConfigurationError

DOCS_URL = "https://django-tryon.readthedocs.io/en/latest/settings.html"

#: Every key of ``settings.TRYON`` with its default. ``docs/settings.rst`` documents each one.
DEFAULTS: dict[str, Any] = {
    # Dotted path of the backend class, and the keyword options its constructor accepts.
    "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
    "OPTIONS": {},
    # The failover chain: a list of {"NAME", "BACKEND", "OPTIONS", "KEY_POOL"}; a job moves to the next
    # entry when one refuses the model (retired, not purchased, out of credits) or its breaker is open.
    # Empty: one entry from BACKEND, OPTIONS and KEY_POOL.
    "BACKENDS": [],
    # Circuit breaker per chain entry: this many outages in a row open it for BREAKER_COOLDOWN seconds.
    "BREAKER_THRESHOLD": 5,
    "BREAKER_COOLDOWN": 60,
    # Alias in settings.STORAGES for every file the app writes (person photos, garment snapshots, results).
    "STORAGE": "default",
    # How the provider gets the input images: "auto", "storage", "signed" or "upload".
    "INPUT_URLS": "auto",
    # Absolute base URL the provider can reach, for signed input URLs served by this app.
    "PUBLIC_BASE_URL": "",
    # Lifetime (seconds) of signed input and result URLs served by this app.
    "SIGNED_URL_TTL": 600,
    # Default try-on parameters (the provider's meaning).
    "DEFAULT_RESOLUTION": -1,
    "RESTORE_FACE": True,
    # The person photo is checked once, where it comes in, before anything is paid (needs the engine
    # extra; skipped without it): "refuse" a photo the check finds unusable (400 InvalidPerson),
    # "warn" (the job or photo is created and carries warnings) or "off".
    "PERSON_CHECK": "warn",
    # A second pass by the provider's refiner (DashScope aitryon-refiner) when a job does not say; it
    # needs the shopper's gender and resolution -1 with restore_face.
    "REFINE": False,
    # Polling adapts to the durations observed per model (docs/lifecycle.rst): the first poll near the
    # early end of recent jobs, then short steps between MIN_POLL_INTERVAL and POLL_INTERVAL seconds,
    # until POLL_DEADLINE seconds after submission (then the job fails with code "Timeout").
    "POLL_INTERVAL": 3,
    "MIN_POLL_INTERVAL": 0.05,
    # Seconds before the first poll; None = adaptive (observed durations, else the backend's typical one).
    "FIRST_POLL_DELAY": None,
    "POLL_DEADLINE": 600,
    # Retryable errors (5xx, timeouts): how many in a row per step, and the backoff ceiling in seconds.
    # A provider 429 sends the job back to the queue without counting.
    "MAX_RETRIES": 6,
    "RETRY_BACKOFF_MAX": 300,
    # A provider task that FAILED with a transient code (InternalError.Algo, ...) is submitted again this often.
    "TRANSIENT_RESUBMITS": 1,
    # Several provider keys (accounts or regions): each entry overrides OPTIONS (e.g. api_key, base_url)
    # and may set "name", "max_concurrency" and "submit_rate". Empty: one key, from OPTIONS.
    "KEY_POOL": [],
    # The dispatcher: how long a worker may hold a job for one step (longer than the backend's HTTP
    # timeouts), and how late a step may be before the tick (django_tryon.tick_tryons) takes it over.
    "LEASE_SECONDS": 45,
    "TICK_GRACE": 3,
    # Synchronous backends (one long request per try-on, e.g. the image-editing models): their steps go to
    # this Celery queue (None: the default queue), with a hard time limit of the backend's longest request
    # plus SYNC_TIME_MARGIN seconds (a soft one SYNC_TIME_MARGIN / 2 earlier: the step is retried).
    "SYNC_QUEUE": None,
    "SYNC_TIME_MARGIN": 30,
    # A job still queued this many seconds after it was created fails with code "Timeout".
    "QUEUE_DEADLINE": 3600,
    # Log every request and response to the provider (Authorization redacted). Development only.
    "DEBUG_API_REQUESTS": False,
    # REST API: may shoppers who are not logged in use it (owned by their session)?
    "ALLOW_ANONYMOUS": True,
    # Token first: only a token lifts CSRF; every other request is checked (see docs/security.rst).
    "API_AUTHENTICATION_CLASSES": (
        "rest_framework.authentication.TokenAuthentication",
        "django_tryon.api.authentication.CsrfSessionAuthentication",
    ),
    "API_PAGE_SIZE": 20,
    # Cost control: try-ons per day per logged-in shopper and per anonymous session (None = no limit),
    # and a site-wide daily budget in images and in money (PRICES per model, in CURRENCY).
    # Every paid attempt (create, retry, re-run) counts, failed ones too; only a cancel before submission
    # gives the slot back. The default money budget caps what anonymous traffic can cost in a day.
    "DAILY_LIMIT_PER_USER": 20,
    "DAILY_LIMIT_PER_SESSION": 5,
    "DAILY_BUDGET_IMAGES": None,
    "DAILY_BUDGET_AMOUNT": "50.00",
    # Unfinished try-ons at a time per shopper, and site-wide (None = no cap); over it: 429 queue_full.
    "MAX_QUEUED_PER_OWNER": 3,
    "MAX_QUEUED": 100,
    # Saved photos kept per shopper (the oldest is replaced); None = no cap.
    "MAX_PHOTOS_PER_OWNER": 5,
    # Per-address throttles of anonymous creates and photo uploads (DRF rate strings, all must hold),
    # and how many reverse proxies in front of the site append to X-Forwarded-For (0: use REMOTE_ADDR).
    "THROTTLE_RATES": {
        "create": ("6/min", "40/day"),
        "upload": ("6/min", "40/day"),
        "funnel": ("30/min", "600/day"),  # the funnel analytics endpoint (docs/analytics.rst)
    },
    "NUM_PROXIES": 0,
    "PRICES": {},
    "CURRENCY": "CNY",
    # The same photo + garments + parameters within this many seconds returns the existing job.
    "DEDUP_TTL": 3600,
    # Personal data retention: images of finished try-ons and saved photos older than this many days are
    # deleted by the purge (Celery beat task django_tryon.purge_tryons, or manage.py tryon_purge). None: keep.
    "RETENTION_DAYS": 30,
    "PHOTO_RETENTION_DAYS": 90,
    # -- Webhooks (docs/webhooks.rst) --
    # Allow webhook URLs on loopback, private, link-local and other internal addresses, and plain http://
    # (development and tests only: an endpoint URL is typed in by whoever has admin access).
    "WEBHOOK_ALLOW_PRIVATE": False,
    # Seconds to connect to a receiver, and to wait for each read of its answer.
    "WEBHOOK_CONNECT_TIMEOUT": 5,
    "WEBHOOK_READ_TIMEOUT": 10,
    # A failed delivery is retried after WEBHOOK_RETRY_DELAY seconds, doubling each time up to
    # WEBHOOK_RETRY_MAX_DELAY, until WEBHOOK_RETRY_WINDOW seconds after the event (24 h).
    "WEBHOOK_RETRY_DELAY": 30,
    "WEBHOOK_RETRY_MAX_DELAY": 3600,
    "WEBHOOK_RETRY_WINDOW": 86400,
    # -- Funnel analytics (issue 15, point 4; docs/analytics.rst) --
    # Count the shopping funnel per product and day. False: nothing is counted, the endpoint answers 404.
    "FUNNEL": True,
    # Most events one request of tryon-funnel.js may carry (more: 400).
    "FUNNEL_MAX_EVENTS": 50,
    # Most events counted from one address per day, whatever the sessions (None: no cap).
    "FUNNEL_DAILY_EVENTS_PER_ADDRESS": 1000,
    # -- Act on the result (issue 15): the widget's "Add to cart" and "Share" -------------------------------
    # Where "Add to cart" POSTs (product, garment, tryon; with the CSRF token): a path, a URL or a URL name.
    # None: the widget only fires the tryon:add-to-cart event for the shop's own script.
    "ADD_TO_CART_URL": None,
    # Seconds a share link of a result picture lives (then 410 Gone); the shopper can revoke it sooner.
    "SHARE_TTL": 7 * 24 * 3600,
}

IMPORT_STRINGS = ("BACKEND", "API_AUTHENTICATION_CLASSES")
REMOVED_SETTINGS: dict[str, str] = {}
INPUT_URL_STRATEGIES = ("auto", "storage", "signed", "upload")
PERSON_CHECK_MODES = ("refuse", "warn", "off")


class TryOnSettings:
    """Attribute access to ``settings.TRYON`` with defaults; reloaded when the setting changes."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._user: dict[str, Any] | None = None
        #: Bumped by every reload: caches built from the settings (backends) compare it.
        self.generation = 0

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user is None:
            self._user = dict(getattr(settings, "TRYON", None) or {})
            for key in self._user:
                if key in REMOVED_SETTINGS:
                    raise TryOnConfigurationError(
                        f"TRYON[{key!r}] was removed: {REMOVED_SETTINGS[key]} See {DOCS_URL}"
                    )
        return self._user

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid django-tryon setting: {name!r}")
        if name in self._cache:
            return self._cache[name]
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in IMPORT_STRINGS:
            value = _import(name, value)
        self._cache[name] = value
        return value

    def unknown_keys(self) -> list[str]:
        """Keys of ``settings.TRYON`` this version does not know (reported by a system check)."""
        return sorted(set(self.user_settings) - set(DEFAULTS))

    def reload(self) -> None:
        self._cache.clear()
        self._user = None
        self.generation += 1


def _import(name: str, value: Any) -> Any:
    """Resolve a dotted path, or each of a list of them."""
    if isinstance(value, (list, tuple)):
        return [_import(name, item) for item in value]
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as err:
        raise TryOnConfigurationError(f"TRYON[{name!r}] = {value!r} could not be imported: {err}") from err


tryon_settings = TryOnSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TRYON", "TRYON_PRODUCT_MODEL"):
        tryon_settings.reload()


setting_changed.connect(_reload)
