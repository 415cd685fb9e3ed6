"""Per-address throttles for anonymous creates and photo uploads (``TRYON["THROTTLE_RATES"]``).

Built on DRF's ``SimpleRateThrottle`` (counts in Django's default cache: use a shared cache such as
Redis when the site runs several processes). The client address is ``REMOTE_ADDR`` unless
``TRYON["NUM_PROXIES"]`` trusted proxies append to ``X-Forwarded-For``: a header a client sets
itself is never believed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from ..conf import tryon_settings


def client_address(request: Any) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry ``NUM_PROXIES`` from the end of X-Forwarded-For."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = int(tryon_settings.NUM_PROXIES or 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


class AddressRateThrottle(SimpleRateThrottle):
    """One rate (``"6/min"``) of one scope (``"create"``, ``"upload"``) for anonymous clients, by address."""

    def __init__(self, scope: str, rate: str) -> None:
        self.scope = scope
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)

    def allow_request(self, request: Any, view: Any) -> bool:
        """As DRF's, but ``view`` may be None: outside DRF (``throttle_wait``) there is no view, and none is needed."""
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return None  # signed-in shoppers have their own daily limit
        return f"django_tryon:throttle:{self.scope}:{self.rate}:{client_address(request)}"


def throttles_for(scope: str) -> list[AddressRateThrottle]:
    """The throttles of ``scope`` from ``TRYON["THROTTLE_RATES"]`` (a rate string or a list of them)."""
    rates = (tryon_settings.THROTTLE_RATES or {}).get(scope) or ()
    if isinstance(rates, str):
        rates = (rates,)
    return [AddressRateThrottle(scope, rate) for rate in rates]


def throttle_wait(request: Any, scope: str) -> float | None:
    """Seconds to wait when ``request`` is over a rate of ``scope`` (for views outside DRF), else None.

    Every throttle of the scope is consulted, so an accepted request counts against all of them.
    """
    waits = [
        throttle.wait() or 1.0
        for throttle in throttles_for(scope)
        if not throttle.allow_request(request, None)
    ]
    return max(waits) if waits else None
