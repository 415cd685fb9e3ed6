"""The public side of a share link: a page with OpenGraph tags, and the shared picture itself.

Both check the link on every request (``sharing.resolve``): unknown → 404, revoked, expired or purged →
410 Gone. They show the result picture and the product's name only, never the person photo or any
other field of the try-on, and send no storage name (the picture goes out as ``try-on.<ext>``).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import sharing
from .models import ShareLink
from .views import stream_file

#: Seconds a browser or CDN may keep the page and the picture: a revoked link ends within this time
#: even behind a cache (the server itself refuses at once).
SHARE_CACHE_SECONDS = 60


def _cache_headers(response: HttpResponseBase, link: Any) -> HttpResponseBase:
    remaining = int((link.expires_at - timezone.now()).total_seconds())
    response["Cache-Control"] = f"public, max-age={max(0, min(SHARE_CACHE_SECONDS, remaining))}"
    response["X-Robots-Tag"] = "noindex"  # a picture of a person: shared by hand, not found by search
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _gone(request: HttpRequest) -> HttpResponse:
    response = render(request, "django_tryon/share_gone.html", status=410)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def _known_link(token: str) -> ShareLink | None:
    """The live link of ``token``; None when it was revoked or expired (410); Http404 when unknown."""
    state, link = sharing.resolve(token)
    if state is sharing.LinkState.UNKNOWN or link is None:
        raise Http404("No such link")
    return None if state is sharing.LinkState.GONE else link


@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponseBase:
    """The shared picture on a page of its own, with OpenGraph and Twitter card tags for link previews."""
    link = _known_link(token)
    if link is None:
        return _gone(request)
    product = link.job.product
    product_url = ""
    if product is not None and hasattr(product, "get_absolute_url"):
        product_url = request.build_absolute_uri(product.get_absolute_url())
    context = {
        "product_name": str(product) if product is not None else "",
        "product_url": product_url,
        "image_url": request.build_absolute_uri(sharing.image_path(link)),
        "page_url": request.build_absolute_uri(sharing.page_path(link)),
        "site_name": request.get_host(),
    }
    return _cache_headers(render(request, "django_tryon/share.html", context), link)


@require_GET
def share_image(request: HttpRequest, token: str) -> HttpResponseBase:
    """The result picture of a live link (the image of ``og:image``), cached briefly."""
    link = _known_link(token)
    if link is None:
        return _gone(request)
    result = link.job.result_image
    name = result.name or ""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else "jpg"
    response = stream_file(result, filename=f"try-on.{extension}")
    if response is None:  # the file went missing under the row: nothing to show, for good
        return _gone(request)
    return _cache_headers(response, link)
