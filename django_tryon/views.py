"""The signed file view: serves stored inputs and results at expiring, unguessable URLs."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from .conf import tryon_settings
from .storage import file_for_token


def stream_file(field_file: Any, *, filename: str = "") -> FileResponse | None:
    """A streaming response of a stored file (its type from its name), or None when the file is missing."""
    try:
        handle = field_file.storage.open(field_file.name, "rb")
    except OSError:  # FileNotFoundError included
        return None
    content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    return FileResponse(handle, content_type=content_type, filename=filename)


@require_GET
def signed_file(request: HttpRequest, token: str) -> FileResponse:
    """Stream the file a signed token names; tampered, expired, deleted or unknown → 404.

    Personal images are never cached (``no-store``): a deleted photo must not live on in a browser cache.
    """
    field_file = file_for_token(token)
    response = stream_file(field_file) if field_file is not None else None
    if response is None:
        raise Http404("No such file")
    is_garment = type(field_file.instance).__name__ == "Garment"  # product images, not personal data
    response["Cache-Control"] = (
        f"private, max-age={int(tryon_settings.SIGNED_URL_TTL)}" if is_garment else "private, no-store"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response
