"""System checks. Each message names the exact setting to fix.

- django_tryon.E001: the backend cannot be built (unknown option, bad import).
- django_tryon.E002: TRYON_PRODUCT_MODEL names no installed model (a missing or malformed value stops
  django.setup() itself, with the same advice: models.get_product_model_string()).
- django_tryon.E003: an invalid value in TRYON.
- django_tryon.E004: a route or pool key has no API key (``check --deploy`` only: a build step that runs
  ``migrate`` or ``collectstatic`` without secrets must not fail; a try-on without a key is refused at once).
- django_tryon.W001: the provider may be unable to download input images.
- django_tryon.W002: DEBUG_API_REQUESTS is on without DEBUG.
- django_tryon.W003: unknown keys in TRYON (typos).
- django_tryon.W004: the configured model is past its announced retirement date.
- django_tryon.W005: anonymous shoppers may use the API but no daily money budget caps the spend.
- django_tryon.W006: a money budget is set but the configured model has no price (it would cost 0).
- django_tryon.W007: the try-on storage serves its files publicly (signed URLs would not protect them).
- django_tryon.W008: every route of the failover chain is a retired model (nothing to fail over to).
- django_tryon.W009: WEBHOOK_ALLOW_PRIVATE is on without DEBUG (webhooks may call internal addresses).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from django.conf import settings
from django.core import checks

from .conf import INPUT_URL_STRATEGIES, PERSON_CHECK_MODES, tryon_settings
from .exceptions import TryOnConfigurationError

#: Models the vendor announced for retirement (its model-retirement page, docs/backends/dashscope.rst), and the date.
RETIRED_MODELS = {
    m: date(2026, 10, 10) for m in ("aitryon", "aitryon-plus", "aitryon-refiner", "aitryon-parsing-v1")
}
DASHSCOPE_HOSTS = ("dashscope.aliyuncs.com", "maas.aliyuncs.com", "dashscope-intl.aliyuncs.com")
VENDOR_TIMEZONE = timezone(timedelta(hours=8))  # the retirement dates are the vendor's (Beijing) days


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    tryon_settings.reload()
    from .models import TryOn, get_product_model

    try:
        get_product_model()
    except TryOnConfigurationError as err:  # a value that is set but names no installed model
        errors.append(checks.Error(str(err), id="django_tryon.E002"))
    unknown = tryon_settings.unknown_keys()
    if unknown:
        errors.append(
            checks.Warning(
                f"Unknown key(s) in TRYON: {', '.join(unknown)}.",
                hint="See docs/settings.rst for the keys django-tryon reads.",
                id="django_tryon.W003",
            )
        )
    if tryon_settings.INPUT_URLS not in INPUT_URL_STRATEGIES:
        errors.append(
            checks.Error(
                f"TRYON['INPUT_URLS'] = {tryon_settings.INPUT_URLS!r} is not valid.",
                hint=f"Use one of {', '.join(INPUT_URL_STRATEGIES)}.",
                id="django_tryon.E003",
            )
        )
    if tryon_settings.PERSON_CHECK not in PERSON_CHECK_MODES:
        errors.append(
            checks.Error(
                f"TRYON['PERSON_CHECK'] = {tryon_settings.PERSON_CHECK!r} is not valid.",
                hint=f"Use one of {', '.join(repr(m) for m in PERSON_CHECK_MODES)}.",
                id="django_tryon.E003",
            )
        )
    if tryon_settings.DEFAULT_RESOLUTION not in TryOn.Resolution.values:
        errors.append(
            checks.Error(
                f"TRYON['DEFAULT_RESOLUTION'] = {tryon_settings.DEFAULT_RESOLUTION!r} is not valid.",
                hint="Use -1 (same as the person photo), 1024 or 1280.",
                id="django_tryon.E003",
            )
        )
    try:
        from .backends import routes

        backend = routes()[0].backend()  # the first route: BACKEND/OPTIONS, or the first of BACKENDS
    except TryOnConfigurationError as err:
        errors.append(
            checks.Error(
                str(err),
                hint="Fix TRYON['BACKEND'] / TRYON['OPTIONS'] (or TRYON['BACKENDS']).",
                id="django_tryon.E001",
            )
        )
        backend = None
    if backend is not None:
        errors.extend(_check_backend(backend))
    errors.extend(_check_spending(backend))
    errors.extend(_check_public_storage())
    if backend is not None:
        errors.extend(_check_chain())
    if tryon_settings.DEBUG_API_REQUESTS and not settings.DEBUG:
        errors.append(
            checks.Warning(
                "TRYON['DEBUG_API_REQUESTS'] is on while DEBUG is off: provider requests are logged in production.",
                hint="Set TRYON['DEBUG_API_REQUESTS'] = False.",
                id="django_tryon.W002",
            )
        )
    if tryon_settings.WEBHOOK_ALLOW_PRIVATE and not settings.DEBUG:
        errors.append(
            checks.Warning(
                "TRYON['WEBHOOK_ALLOW_PRIVATE'] is on while DEBUG is off: webhook endpoints may point at "
                "loopback, private and link-local addresses (the server's own network) and use plain http.",
                hint="Set TRYON['WEBHOOK_ALLOW_PRIVATE'] = False outside development and tests.",
                id="django_tryon.W009",
            )
        )
    return errors


@checks.register(deploy=True)
def check_credentials(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every key of every route has its credentials (``manage.py check --deploy``)."""
    from .backends import routes

    try:
        chain = routes()
    except TryOnConfigurationError:  # reported as E001 by the check every command runs
        return []
    errors: list[checks.CheckMessage] = []
    for entry in chain:
        for slot in entry.keys:
            try:
                backend = entry.backend(key=slot.name)
            except TryOnConfigurationError:  # E001
                continue
            try:
                backend.check_credentials()
            except TryOnConfigurationError as err:
                where = f"route {entry.name!r}" + (f", key {slot.name!r}" if len(entry.keys) > 1 else "")
                errors.append(
                    checks.Error(
                        f"{where}: {err}",
                        hint="Try-ons are refused until the key is set.",
                        id="django_tryon.E004",
                    )
                )
    return errors


def _check_backend(backend: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    strategy = tryon_settings.INPUT_URLS
    if strategy == "signed" and not tryon_settings.PUBLIC_BASE_URL:
        messages.append(
            checks.Warning(
                "TRYON['INPUT_URLS'] is 'signed' but TRYON['PUBLIC_BASE_URL'] is empty.",
                hint="Set TRYON['PUBLIC_BASE_URL'] to the https:// address the provider can reach.",
                id="django_tryon.W001",
            )
        )
    elif strategy == "upload" and not backend.capabilities.supports_upload:
        messages.append(
            checks.Warning(
                f"TRYON['INPUT_URLS'] is 'upload' but {type(backend).__name__} has no upload.",
                hint="Set TRYON['PUBLIC_BASE_URL'] and TRYON['INPUT_URLS'] = 'auto'.",
                id="django_tryon.W001",
            )
        )
    if _retired(backend):
        retired_on = RETIRED_MODELS[backend.model]
        messages.append(
            checks.Warning(
                f"DashScope announced the retirement of model {backend.model!r} on {retired_on:%Y-%m-%d}; "
                "calls may be refused (403 Endpoint.AccessDenied).",
                hint="Set TRYON['OPTIONS']['model'] to a model your account can still use.",
                id="django_tryon.W004",
            )
        )
    return messages


def _check_spending(backend: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    budget = tryon_settings.DAILY_BUDGET_AMOUNT
    if tryon_settings.ALLOW_ANONYMOUS and budget is None:
        messages.append(
            checks.Warning(
                "Anonymous shoppers may start paid try-ons (TRYON['ALLOW_ANONYMOUS']) but no daily money budget "
                "caps what they can cost (TRYON['DAILY_BUDGET_AMOUNT'] is None).",
                hint="Set TRYON['DAILY_BUDGET_AMOUNT'] to the most a day of try-ons may cost, or "
                "TRYON['ALLOW_ANONYMOUS'] = False. See docs/settings.rst, worst-case daily spend.",
                id="django_tryon.W005",
            )
        )
    from .backends import routes
    from .quotas import price_of

    try:
        backends = [entry.backend() for entry in routes()]
    except TryOnConfigurationError:  # reported as E001
        backends = [backend] if backend is not None else []
    unpriced = {b.model for b in backends if b.model and b.name != "local" and not price_of(b.model)}
    for model in sorted(unpriced) if budget is not None else ():
        messages.append(
            checks.Warning(
                f"No price is known for model {model!r} (TRYON['PRICES'] or the backend's list price): the daily "
                "money budget counts it as free.",
                hint=f"Add {model!r} with its price per image in TRYON['CURRENCY'] to TRYON['PRICES'].",
                id="django_tryon.W006",
            )
        )
    return messages


def _check_public_storage() -> list[checks.CheckMessage]:
    """Warn when anyone who learns a file's URL can fetch it without the app's signed, expiring link."""
    from .storage import get_tryon_storage, presigns_urls

    try:
        storage = get_tryon_storage()
    except Exception:  # noqa: BLE001 - a broken STORAGES alias is Django's own check's business
        return []
    reasons = []
    if hasattr(storage, "querystring_auth") and not presigns_urls(storage):
        reasons.append(
            "its URLs are not signed (querystring_auth is off, or a custom_domain has no cloudfront_signer)"
        )
    acl = getattr(storage, "default_acl", None)  # S3-like storages only
    if str(acl or "").startswith("public-read"):
        reasons.append(f"it uploads with the ACL {acl!r}")
    if _served_by_django(storage):
        reasons.append(
            f"this site serves its files at {getattr(storage, 'base_url', '')!r} (django.views.static.serve)"
        )
    if not reasons:
        return []
    return [
        checks.Warning(
            f"The try-on storage {tryon_settings.STORAGE!r} serves shoppers' photos publicly: {'; '.join(reasons)}.",
            hint="Use a private storage for TRYON['STORAGE'] (a private bucket with signed URLs, or a "
            "FileSystemStorage outside MEDIA_ROOT that no web server serves). See docs/security.rst.",
            id="django_tryon.W007",
        )
    ]


def _served_by_django(storage: Any) -> bool:
    from urllib.parse import urlsplit

    from django.urls import resolve
    from django.views.static import serve

    try:
        match = resolve(urlsplit(storage.url("tryon/persons/probe.jpg")).path)
    except Exception:  # noqa: BLE001 - Resolver404, or a storage without URLs: not served here
        return False
    return match.func is serve


def _check_chain() -> list[checks.CheckMessage]:
    from .backends import routes

    try:
        chain = [(entry.name, entry.backend()) for entry in routes()]
    except TryOnConfigurationError as err:  # a later route cannot be built
        return [checks.Error(str(err), hint="Fix TRYON['BACKENDS'].", id="django_tryon.E001")]
    retired = [name for name, backend in chain if _retired(backend)]
    if chain and len(retired) == len(chain):
        return [
            checks.Warning(
                f"Every route of the try-on chain is a retired model ({', '.join(retired)}): when the provider refuses "
                "it, there is nothing to fail over to.",
                hint="Add a route to TRYON['BACKENDS'], e.g. django_tryon.backends.dashscope_image_edit."
                "DashScopeImageEditBackend (qwen-image-edit-plus). See docs/settings.rst, BACKENDS.",
                id="django_tryon.W008",
            )
        ]
    return []


def _retired(backend: Any) -> bool:
    retired_on = RETIRED_MODELS.get(backend.model)
    base_url = getattr(backend, "base_url", "")
    return bool(
        retired_on
        and datetime.now(VENDOR_TIMEZONE).date() >= retired_on
        and any(host in base_url for host in DASHSCOPE_HOSTS)
    )
