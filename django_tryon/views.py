"""The signed file view: serves stored inputs and results at expiring, unguessable URLs."""

from __future__ import annotations

import mimetypes

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from .conf import tryon_settings
from .storage import file_for_token


@require_GET
def signed_file(request: HttpRequest, token: str) -> FileResponse:
    """Stream the file a signed token names; tampered, expired, deleted or unknown → 404.

    Personal images are never cached (``no-store``): a deleted photo must not live on in a browser cache.
    """
    field_file = file_for_token(token)
    if field_file is None:
        raise Http404("No such file")
    try:
        handle = field_file.storage.open(field_file.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such file") from None
    response = FileResponse(
        handle, content_type=mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    )
    is_garment = type(field_file.instance).__name__ == "Garment"  # product images, not personal data
    response["Cache-Control"] = (
        f"private, max-age={int(tryon_settings.SIGNED_URL_TTL)}" if is_garment else "private, no-store"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response
