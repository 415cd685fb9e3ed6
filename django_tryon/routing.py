"""The failover chain at run time: which route a job goes to, refusals, and a circuit breaker per route.

A route that answers a final refusal of itself (the model retired, not purchased or not found; the
account in arrears or out of credits; a key refused) is marked *refused*: jobs go to the next route,
and a single job probes it again after ``REFUSAL_RECHECK`` seconds (a merchant may buy the model). A
route with ``BREAKER_THRESHOLD`` outages in a row (5xx, timeouts, connection errors) has its breaker
opened for ``BREAKER_COOLDOWN`` seconds; then it half-opens: one job may try, a success closes it.
State lives in ``TryOnRoute`` rows, so every worker and host agrees.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from .backends import Route, route, routes
from .conf import tryon_settings
from .models import TryOnRoute

logger = logging.getLogger("django_tryon")

#: Error codes that refuse the route itself, not the request: the next route may well work.
REFUSALS = frozenset(
    {
        "ModelNotAvailable",
        "InvalidApiKey",
        "Arrearage",
        "CommodityNotPurchased",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
        "OutOfCredits",
    }
)
#: Seconds after which one job probes a refused route again.
REFUSAL_RECHECK = 600


def is_refusal(code: str) -> bool:
    return code in REFUSALS


def _state(name: str) -> TryOnRoute:
    state, _ = TryOnRoute.objects.get_or_create(name=name)
    return state


def usable(entry: Route, now: datetime | None = None) -> bool:
    """Whether new work may go to ``entry``: not refused (or due a recheck), breaker not open."""
    return health(entry, now)[0]


def health(entry: Route, now: datetime | None = None) -> tuple[bool, bool]:
    """(:func:`usable`, on trial) of ``entry``, from one read of its state. On trial: a refusal due its
    recheck, or a breaker past its cool-down that no success has closed yet (half-open); admission then
    lets one job at a time through."""
    now = now or timezone.now()
    state = TryOnRoute.objects.filter(name=entry.name).first()
    if state is None:
        return True, False
    if state.refused_since and now - state.refused_since < timedelta(seconds=REFUSAL_RECHECK):
        return False, True
    refused = state.refused_since is not None
    if state.open_until and state.open_until > now:
        return False, refused
    return True, refused or state.open_until is not None


def choose(after: str | None = None, *, garments: int = 1) -> Route | None:
    """The first usable route (after the one called ``after``) that takes ``garments`` at once, or None."""
    chain = routes()
    start = (
        next((i + 1 for i, entry in enumerate(chain) if entry.name == after), 0) if after is not None else 0
    )
    now = timezone.now()
    return next((entry for entry in chain[start:] if takes(entry, garments) and usable(entry, now)), None)


def takes(entry: Route, garments: int) -> bool:
    return entry.backend().capabilities.max_garments >= garments


def first(*, garments: int = 1) -> Route:
    """The route for a new job: the first usable one that takes its garments, else the first that takes them
    (its refusal then explains the failure), else the chain's first."""
    chain = routes()
    return choose(garments=garments) or next((e for e in chain if takes(e, garments)), chain[0])


def garments_of(job: Any) -> int:
    return int(bool(job.top_image)) + int(bool(job.bottom_image))


def refuse(name: str, code: str, message: str) -> None:
    """The provider refused this route (final): jobs go elsewhere; the admin shows a banner."""
    _state(name)
    TryOnRoute.objects.filter(name=name).update(
        refused_since=timezone.now(), refused_code=code[:64], refused_message=message[:2000]
    )
    logger.error("route %s refused by the provider: %s %s", name, code, message)


def outage(name: str) -> bool:
    """Count an outage; returns True when it opened the breaker."""
    _state(name)
    TryOnRoute.objects.filter(name=name).update(failures=F("failures") + 1)
    state = TryOnRoute.objects.get(name=name)
    if state.failures >= int(tryon_settings.BREAKER_THRESHOLD) and not (
        state.open_until and state.open_until > timezone.now()
    ):
        until = timezone.now() + timedelta(seconds=float(tryon_settings.BREAKER_COOLDOWN))
        TryOnRoute.objects.filter(name=name).update(open_until=until)
        logger.warning(
            "route %s: breaker open until %s after %d outages", name, until.isoformat(), state.failures
        )
        return True
    return False


def success(name: str) -> None:
    """The route worked: close its breaker and forget any refusal."""
    TryOnRoute.objects.filter(name=name).exclude(failures=0, open_until=None, refused_since=None).update(
        failures=0, open_until=None, refused_since=None, refused_code="", refused_message=""
    )


def is_open(name: str) -> bool:
    return not usable(route(name))


def refused() -> list[TryOnRoute]:
    """Routes of the current chain the provider refuses (for the admin's banner)."""
    names = [entry.name for entry in routes()]
    return list(
        TryOnRoute.objects.filter(name__in=names, refused_since__isnull=False).order_by("refused_since")
    )
