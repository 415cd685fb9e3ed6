"""Session authentication that checks CSRF for every unsafe request, anonymous shoppers included.

DRF's ``SessionAuthentication`` checks CSRF only for logged-in users; here anonymous shoppers own jobs
through their session too, so a forged cross-site upload must be refused for them as well.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication


class CsrfSessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        if request.META.get("HTTP_AUTHORIZATION"):
            return None  # token clients (apps) do not use cookies
        self.enforce_csrf(request)
        user = getattr(request._request, "user", None)
        if user is None or not user.is_active or not user.is_authenticated:
            return None
        return (user, None)
