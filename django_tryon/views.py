"""The signed file view: serves stored inputs and results at expiring, unguessable URLs."""

from __future__ import annotations

import mimetypes

from django.core import signing
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from .conf import tryon_settings
from .storage import get_tryon_storage, unsign_name


@require_GET
def signed_file(request: HttpRequest, token: str) -> FileResponse:
    """Stream a file named inside a signed token; tampered, expired or unknown → 404."""
    try:
        name = unsign_name(token)
    except signing.BadSignature:
        raise Http404("No such file") from None
    if not name.startswith("tryon/") or ".." in name:
        raise Http404("No such file")
    storage = get_tryon_storage()
    try:
        handle = storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such file") from None
    response = FileResponse(handle, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
    response["Cache-Control"] = f"private, max-age={int(tryon_settings.SIGNED_URL_TTL)}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response
