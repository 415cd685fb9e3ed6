"""One error envelope for every 4xx: ``{"error": {"code", "message", "field"}}``, in the shopper's language."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..exceptions import (
    TryOnConfigurationError,
    TryOnError,
    TryOnPersonRefused,
    TryOnQuotaExceeded,
    TryOnValidationError,
)
from ..messages import MESSAGES, active_language, message_for

DRF_CODES: dict[type[exceptions.APIException], tuple[str, int]] = {
    exceptions.NotAuthenticated: ("authentication_required", status.HTTP_401_UNAUTHORIZED),
    exceptions.AuthenticationFailed: ("authentication_required", status.HTTP_401_UNAUTHORIZED),
    exceptions.PermissionDenied: ("permission_denied", status.HTTP_403_FORBIDDEN),
    exceptions.NotFound: ("not_found", status.HTTP_404_NOT_FOUND),
    exceptions.MethodNotAllowed: ("method_not_allowed", status.HTTP_405_METHOD_NOT_ALLOWED),
}


def envelope(
    code: str, message: str = "", field: str | None = None, status_code: int = 400, **extra: Any
) -> Response:
    """The error response; ``message`` is replaced by the catalogue's Chinese text for Chinese requests."""
    language = active_language()
    text = message_for(code, language, message) if (language != "en" or not message) else message
    body = {"error": {"code": code, "message": text, "field": field, **extra}}
    return Response(body, status=status_code)


@csrf_exempt  # answers nothing but 404, for every method
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The envelope's 404 for a URL under ``api/`` that matches no route (a malformed id, an unknown path)."""
    message = message_for("not_found", active_language())
    response = JsonResponse({"error": {"code": "not_found", "message": message, "field": None}}, status=404)
    response["Cache-Control"] = "private, no-store"
    return response


def _first_error(detail: Any, field: str | None = None) -> tuple[str | None, Any]:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        return _first_error(value, None if key == "non_field_errors" else key)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], field)
    return field, detail


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler for the try-on views (not installed site-wide)."""
    if isinstance(exc, TryOnQuotaExceeded):
        response = envelope(
            exc.code,
            exc.message,
            None,
            status.HTTP_429_TOO_MANY_REQUESTS,
            reset_at=exc.reset_at.isoformat() if exc.reset_at else None,
        )
        if exc.reset_at is not None:
            response["Retry-After"] = str(max(1, math.ceil((exc.reset_at - timezone.now()).total_seconds())))
        return response
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 1))  # DRF sets .wait; drf-stubs omit it
        response = envelope(
            "rate_limited",
            "",
            None,
            status.HTTP_429_TOO_MANY_REQUESTS,
            reset_at=(timezone.now() + timedelta(seconds=wait)).isoformat(),
        )
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, TryOnPersonRefused):  # the person check's own message, in the request's language
        reasons = [str(reason) for reason in exc.reasons]
        body = {
            "code": exc.code,
            "message": exc.messages()[active_language()],
            "field": getattr(exc, "field", None),
            "verdict": exc.verdict,
            "reasons": reasons,
            "details": exc.details,
        }
        return Response({"error": body}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TryOnValidationError):
        return envelope(exc.code, exc.message, getattr(exc, "field", None))
    if isinstance(exc, TryOnConfigurationError):
        return envelope("service_unavailable", "", None, status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, TryOnError):
        return envelope(exc.code, exc.message, None, status.HTTP_502_BAD_GATEWAY)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        field, detail = _first_error(exc.detail)
        code = getattr(detail, "code", "") or "InvalidParameter"
        code = code if code in MESSAGES else "InvalidParameter"
        # A referenced product or saved photo that does not exist (or is not yours) is a 404, as any other.
        return envelope(code, str(detail), field, status.HTTP_404_NOT_FOUND if code == "not_found" else 400)
    for kind, (code, status_code) in DRF_CODES.items():
        if isinstance(exc, kind):
            response = envelope(code, str(exc.detail), None, status_code)
            if kind in (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
                # DRF's view has set these: 401 with the challenge of the first authenticator, or 403 without one.
                response.status_code = exc.status_code
                challenge = getattr(exc, "auth_header", None)  # set by DRF's APIView.permission_denied
                if challenge:
                    response["WWW-Authenticate"] = challenge
            return response
    if isinstance(exc, exceptions.APIException):
        return envelope("InvalidParameter", str(exc.detail), None, exc.status_code)
    return None
