"""The shopper-facing widget: ``{% tryon_button product %}``, ``{% tryon_assets %}``, ``{% tryon_dialog %}``.

``{% load tryon_tags %}{% tryon_button product %}`` renders a "Try it on" button when the product has an
active garment. The first button of a page also renders the widget's CSS/JS links (unless
``{% tryon_assets %}`` already did) and the one dialog that all buttons of the page share, with the
server's error messages (``django_tryon.messages``) in the page's language for the widget to show.
``{% tryon_dialog %}`` renders that dialog (and the assets) without a button, for a shop that opens it
from its own UI with ``window.djangoTryon.open(productId)``.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from ..conf import tryon_settings
from ..messages import catalogue

register = template.Library()
logger = logging.getLogger(__name__)

ASSETS = "assets"
DIALOG = "dialog"
DIALOG_ID = "tryon-dialog"
#: Where a page's record of what it already has is kept (an attribute of the request, a key of render_context).
RENDERED_KEY = "_django_tryon_rendered"


def _rendered(context: template.Context) -> set[str]:
    """What this page already has (``ASSETS``, ``DIALOG``).

    A page is one response, so the record lives on the request when the context has one (Django's
    ``request`` context processor, on in new projects): buttons in ``{% include %}``d templates, and in
    several templates rendered for one response, share it. Without a request it lives in
    ``context.render_context``, Django's state for the template being rendered (once per template).
    """
    request = context.get("request")
    if request is None:
        rendered: set[str] | None = context.render_context.get(RENDERED_KEY)
        if rendered is None:
            rendered = context.render_context[RENDERED_KEY] = set()
        return rendered
    rendered = getattr(request, RENDERED_KEY, None)
    if rendered is None:
        rendered = set()
        setattr(request, RENDERED_KEY, rendered)
    return rendered


def _once(context: template.Context, key: str) -> bool:
    """True the first time ``key`` is asked for on this page."""
    rendered = _rendered(context)
    if key in rendered:
        return False
    rendered.add(key)
    return True


def _reverse_or_empty(name: str, **kwargs: Any) -> str:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return ""


def api_root() -> str:
    """Where the REST API is mounted, e.g. ``/tryon/api/`` (derived from the app's URLconf)."""
    tryons = _reverse_or_empty("django_tryon:tryon-list")
    if tryons:
        return tryons[: -len("tryons/")]
    files = _reverse_or_empty("django_tryon:file", token="-")
    return files[: -len("files/-/")] + "api/" if files else "/tryon/api/"


def has_active_garment(product: Any) -> bool:
    """Whether ``product`` has a garment offered for try-on (uses ``prefetch_related`` when present)."""
    if product is None or getattr(product, "pk", None) is None:
        return False
    prefetched = getattr(product, "_prefetched_objects_cache", {})
    if "tryon_garments" in prefetched:
        return any(garment.is_active for garment in prefetched["tryon_garments"])
    return product.tryon_garments.filter(is_active=True).exists()


def _assets_html() -> SafeString:
    jsi18n = _reverse_or_empty("django_tryon:jsi18n")
    catalog = format_html('<script src="{}" defer></script>', jsi18n) if jsi18n else ""
    return format_html(
        '<link rel="stylesheet" href="{}">{}<script src="{}" defer></script>{}',
        static("django_tryon/tryon.css"),
        catalog,
        static("django_tryon/tryon.js"),
        _funnel_html(),
    )


def _funnel_html() -> SafeString:
    """The funnel analytics script (docs/analytics.rst), unless ``TRYON["FUNNEL"]`` is off."""
    endpoint = _reverse_or_empty("django_tryon:funnel") if tryon_settings.FUNNEL else ""
    if not endpoint:
        return SafeString("")
    return format_html(
        '<script src="{}" data-tryon-funnel="{}" defer></script>',
        static("django_tryon/tryon-funnel.js"),
        endpoint,
    )


@register.simple_tag(takes_context=True)
def tryon_assets(context: template.Context) -> SafeString:
    """The widget's stylesheet and scripts (the JS catalog, then ``tryon.js``), once per page.

    Optional: put it in ``<head>``; otherwise the first ``{% tryon_button %}`` of the page adds them.
    """
    return _assets_html() if _once(context, ASSETS) else SafeString("")


def add_to_cart_url() -> str:
    """Where "Add to cart" posts: ``TRYON["ADD_TO_CART_URL"]`` as a path or URL, or a URL name reversed.

    "" when unset; a name that does not reverse is logged and left out (a product page must not break).
    """
    value = tryon_settings.ADD_TO_CART_URL
    if not value:
        return ""
    value = str(value)
    if value.startswith(("/", "http://", "https://")):
        return value
    try:
        return reverse(value)
    except NoReverseMatch:
        logger.warning("TRYON['ADD_TO_CART_URL'] = %r is neither a path, a URL nor a URL name", value)
        return ""


def _dialog_context(context: template.Context) -> dict[str, Any]:
    """What ``django_tryon/dialog.html`` needs; sets the CSRF cookie on this response."""
    request = context.get("request")
    language = get_language() or "en"
    return {
        "dialog_id": DIALOG_ID,
        "csrf_token": get_token(request) if request is not None else context.get("csrf_token"),
        "api_root": api_root(),
        "language": language,
        "messages": catalogue(language),
        "refine_available": refine_available(),
        "cart_url": add_to_cart_url(),
    }


@register.inclusion_tag("django_tryon/button.html", takes_context=True)
def tryon_button(context: template.Context, product: Any, css_class: str = "") -> dict[str, Any]:
    """A "Try it on" button for ``product``, or nothing when it has no active garment."""
    if not has_active_garment(product):
        return {"show": False}
    request = context.get("request")
    include_dialog = _once(context, DIALOG)
    values: dict[str, Any] = {
        "show": True,
        "product": product,
        "css_class": css_class,
        "dialog_id": DIALOG_ID,
        "assets": tryon_assets(context),
        "include_dialog": include_dialog,
        # Sets the CSRF cookie on this response; the token also goes into the dialog for tryon.js.
        "csrf_token": get_token(request) if request is not None else context.get("csrf_token"),
    }
    if include_dialog:
        values.update(_dialog_context(context))
    return values


@register.simple_tag(takes_context=True)
def tryon_dialog(context: template.Context) -> SafeString:
    """The widget's dialog (and its assets, unless the page has them), once per page, without a button.

    For a shop with its own UI: put it in ``<body>`` and call ``window.djangoTryon.open(productId)``.
    Renders nothing when a ``{% tryon_button %}`` earlier on the page already rendered the dialog.
    """
    assets = tryon_assets(context)
    if not _once(context, DIALOG):
        return assets
    html = render_to_string("django_tryon/dialog.html", _dialog_context(context))
    return SafeString(assets + html)


def refine_available() -> bool:
    """Whether the first route of the chain has a second pass to offer (DashScope's refiner)."""
    try:
        from ..backends import routes

        return bool(routes()[0].backend().capabilities.refiner_model)
    except Exception:  # noqa: BLE001 - a misconfigured backend must not break a product page
        return False
