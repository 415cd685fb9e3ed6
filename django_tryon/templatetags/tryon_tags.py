"""The shopper-facing widget: ``{% tryon_button product %}`` and ``{% tryon_assets %}``.

``{% load tryon_tags %}{% tryon_button product %}`` renders a "Try it on" button when the product has an
active garment. The first button of a page also renders the widget's CSS/JS links (unless
``{% tryon_assets %}`` already did) and the one dialog that all buttons of the page share.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language

register = template.Library()

ASSETS_KEY = "django_tryon.assets"
DIALOG_KEY = "django_tryon.dialog"
DIALOG_ID = "tryon-dialog"


def _page_flags(context: template.Context) -> dict[str, Any]:
    """A dict that lives for the whole render of the page, shared by ``{% include %}``d templates.

    ``render_context`` gets a new level for every template rendered (includes too); its bottom level
    belongs to the page's render, so a flag set there is seen once per page.
    """
    return context.render_context.dicts[0]


def _once(context: template.Context, key: str) -> bool:
    """True the first time ``key`` is asked for during this page's render."""
    flags = _page_flags(context)
    if flags.get(key):
        return False
    flags[key] = True
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
        '<link rel="stylesheet" href="{}">{}<script src="{}" defer></script>',
        static("django_tryon/tryon.css"),
        catalog,
        static("django_tryon/tryon.js"),
    )


@register.simple_tag(takes_context=True)
def tryon_assets(context: template.Context) -> SafeString:
    """The widget's stylesheet and scripts (the JS catalog, then ``tryon.js``), once per page.

    Optional: put it in ``<head>``; otherwise the first ``{% tryon_button %}`` of the page adds them.
    """
    return _assets_html() if _once(context, ASSETS_KEY) else SafeString("")


@register.inclusion_tag("django_tryon/button.html", takes_context=True)
def tryon_button(context: template.Context, product: Any, css_class: str = "") -> dict[str, Any]:
    """A "Try it on" button for ``product``, or nothing when it has no active garment."""
    if not has_active_garment(product):
        return {"show": False}
    request = context.get("request")
    return {
        "show": True,
        "product": product,
        "css_class": css_class,
        "dialog_id": DIALOG_ID,
        "assets": tryon_assets(context),
        "include_dialog": _once(context, DIALOG_KEY),
        # Sets the CSRF cookie on this response; the token also goes into the dialog for tryon.js.
        "csrf_token": get_token(request) if request is not None else context.get("csrf_token"),
        "api_root": api_root(),
        "language": get_language() or "en",
        "refine_available": refine_available(),
    }


def refine_available() -> bool:
    """Whether the first route of the chain has a second pass to offer (DashScope's refiner)."""
    try:
        from ..backends import routes

        return bool(routes()[0].backend().capabilities.refiner_model)
    except Exception:  # noqa: BLE001 - a misconfigured backend must not break a product page
        return False
