"""Who owns a job or a saved photo: a signed-in user, or an anonymous browser session (by a hash of its key).

One place for ownership, used by the services, the REST API and shop views alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet


def owner_key_for_session(session_key: str | None) -> str:
    """The value stored in ``owner_key`` for an anonymous session (a hash, never the key itself)."""
    return hashlib.sha256(f"django_tryon:{session_key}".encode()).hexdigest() if session_key else ""


@dataclass(frozen=True)
class Owner:
    """A shopper: ``user`` when signed in, else ``key`` (see :func:`owner_key_for_session`).

    ``Owner()`` is nobody: the merchant's own runs (admin, commands) or a visitor without a session,
    who owns nothing.
    """

    user: Any = None
    key: str = ""

    @classmethod
    def of(cls, user: Any = None, owner_key: str = "") -> Owner:
        if user is not None and getattr(user, "is_authenticated", False):
            return cls(user=user)
        return cls(key=owner_key or "")

    @property
    def is_shopper(self) -> bool:
        return self.user is not None or bool(self.key)

    def fields(self) -> dict[str, Any]:
        """Model field values for a new row owned by this owner."""
        return {"user": self.user, "owner_key": "" if self.user is not None else self.key}

    def scope(self, queryset: QuerySet) -> QuerySet:
        """The rows of ``queryset`` (jobs, photos, attempts) that belong to this owner; none for nobody."""
        if self.user is not None:
            return queryset.filter(user=self.user)
        if self.key:
            return queryset.filter(user__isnull=True, owner_key=self.key)
        return queryset.none()


def request_owner(request: Any, *, create_session: bool = True) -> Owner:
    """The owner behind a request: the signed-in user, else the browser session.

    Only an unsafe request (a POST that creates something) gives an anonymous visitor a session; a
    cookie-less read never writes a session row and owns nothing. ``create_session=False``: no request
    does (the funnel's beacons, a shop's order code), and a visitor without a session owns nothing.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Owner(user=user)
    session = getattr(request, "session", None)
    if session is None:
        return Owner()
    if not session.session_key:
        if not create_session or request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return Owner()
        session["django_tryon"] = True  # a modified session gets its cookie
        session.save()
    return Owner(key=owner_key_for_session(session.session_key))
