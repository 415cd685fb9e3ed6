"""Session authentication for the try-on API.

CSRF is not this class's job: ``TryOnAPIMixin.initial`` checks it for every unsafe request that no
token authenticated (signed-in users, anonymous shoppers, HTTP Basic behind a staging password, any
``Authorization`` header no authenticator accepted). DRF's ``SessionAuthentication`` checks CSRF only
for logged-in users, and an earlier version of this class skipped it whenever any ``Authorization``
header was present; neither is safe when anonymous shoppers own paid jobs through their session.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication


class CsrfSessionAuthentication(SessionAuthentication):
    """The signed-in user of the session (CSRF enforced by the try-on views for all session requests)."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if user is None or not user.is_active or not user.is_authenticated:
            return None
        return (user, None)
