"""The one gate every paid attempt goes through (create, retry, re-run): limits, budgets and queue caps.

Each attempt is a ``TryOnAttempt`` row, written in the same transaction as the job change, under a
database lock, so concurrent requests on any number of processes cannot overspend. Only an attempt
canceled before it was submitted gives its slot back; failing, finishing or deleting a try-on does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from . import locks
from .conf import tryon_settings
from .exceptions import TryOnQuotaExceeded
from .models import TryOn, TryOnAttempt
from .owners import Owner

QUOTA_LOCK = "django_tryon.quota"
#: When a full queue is likely to have room again (seconds); sent as ``Retry-After``.
QUEUE_FULL_RETRY_AFTER = 30


def day_start(now: datetime | None = None) -> datetime:
    """Midnight today in the site's time zone: daily limits and budgets count from here."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def reset_at(now: datetime | None = None) -> datetime:
    """When today's limits reset (the next midnight in the site's time zone)."""
    return day_start(now) + timedelta(days=1)


def price_of(model: str) -> Decimal:
    """The price of one image on ``model``: ``TRYON["PRICES"]`` (your price list) first, else the list
    price a backend of the chain knows for it (``Capabilities.price_per_image``) when it is in
    ``TRYON["CURRENCY"]`` (the budget converts no currencies); 0 when unknown (check W006 says so)."""
    if model in tryon_settings.PRICES:
        return Decimal(str(tryon_settings.PRICES[model]))
    from .backends import routes
    from .exceptions import TryOnConfigurationError

    for entry in routes():
        try:
            capabilities = entry.backend(model=model).capabilities
        except TryOnConfigurationError:  # this route's backend does not speak that model
            continue
        if capabilities.price_per_image and capabilities.currency == tryon_settings.CURRENCY:
            return Decimal(capabilities.price_per_image)
    return Decimal("0")


def counted_attempts(since: datetime) -> QuerySet[TryOnAttempt]:
    """Attempts since ``since`` that count against limits and budgets (not released)."""
    return TryOnAttempt.objects.filter(created_at__gte=since, released_at__isnull=True)


def check(owner: Owner, model: str) -> None:
    """Raise ``TryOnQuotaExceeded`` when one more attempt on ``model`` would break a limit.

    Shoppers (``owner.is_shopper``) are held to their daily limit and the queue caps; every attempt,
    the merchant's own runs included, to the site's daily budget. Without the lock this is only a
    pre-check; :func:`gate` makes it authoritative.
    """
    now = timezone.now()
    attempts = counted_attempts(day_start(now))
    if owner.is_shopper:
        limit = (
            tryon_settings.DAILY_LIMIT_PER_USER
            if owner.user is not None
            else tryon_settings.DAILY_LIMIT_PER_SESSION
        )
        if limit is not None and owner.scope(attempts).count() >= limit:
            raise TryOnQuotaExceeded(
                f"Daily limit of {limit} try-ons reached.", code="quota_exceeded", reset_at=reset_at(now)
            )
        soon = now + timedelta(seconds=QUEUE_FULL_RETRY_AFTER)
        mine = tryon_settings.MAX_QUEUED_PER_OWNER
        if mine is not None and owner.scope(TryOn.objects.unfinished()).count() >= mine:
            raise TryOnQuotaExceeded(
                f"At most {mine} unfinished try-ons at a time.", code="queue_full", reset_at=soon
            )
        site = tryon_settings.MAX_QUEUED
        if site is not None and TryOn.objects.unfinished().count() >= site:
            raise TryOnQuotaExceeded("The try-on queue is full.", code="queue_full", reset_at=soon)
    budget_images, budget_amount = tryon_settings.DAILY_BUDGET_IMAGES, tryon_settings.DAILY_BUDGET_AMOUNT
    if budget_images is not None and attempts.count() >= budget_images:
        raise TryOnQuotaExceeded(
            "The site's daily try-on budget is used up.", code="budget_exceeded", reset_at=reset_at(now)
        )
    if budget_amount is not None:
        spent = attempts.aggregate(total=Sum("price"))["total"] or Decimal("0")
        if spent + price_of(model) > Decimal(str(budget_amount)):
            raise TryOnQuotaExceeded(
                "The site's daily try-on budget is used up.", code="budget_exceeded", reset_at=reset_at(now)
            )


def gate(owner: Owner, model: str) -> None:
    """Inside ``transaction.atomic()``: take the quota lock, then :func:`check` (authoritative).

    Record the attempt with :func:`record` before the transaction ends.
    """
    locks.hold(QUOTA_LOCK)
    check(owner, model)


def record(job: TryOn, owner: Owner) -> TryOnAttempt:
    """Write the ledger row of a paid attempt of ``job``, charged to ``owner`` (nobody: the merchant)."""
    return TryOnAttempt.objects.create(
        job=job,
        **owner.fields(),
        backend=job.backend,
        model_name=job.model_name,
        price=price_of(job.model_name),
    )


def reprice(job: TryOn, model: str) -> None:
    """The job's current attempt moved to another model (a failover): it is charged that model's price."""
    attempt = TryOnAttempt.objects.filter(job=job, released_at__isnull=True).order_by("-pk").first()
    if attempt is not None:
        TryOnAttempt.objects.filter(pk=attempt.pk).update(model_name=model, price=price_of(model))


def release(job: TryOn) -> bool:
    """Give back the slot of the job's current attempt (it was canceled before being submitted)."""
    attempt = TryOnAttempt.objects.filter(job=job, released_at__isnull=True).order_by("-pk").first()
    if attempt is None:
        return False
    return (
        TryOnAttempt.objects.filter(pk=attempt.pk, released_at__isnull=True).update(
            released_at=timezone.now()
        )
        == 1
    )


def spent_today(now: datetime | None = None) -> tuple[int, Decimal]:
    """Attempts counted today and their price (what the site budget sees)."""
    total = counted_attempts(day_start(now)).aggregate(n=Count("pk"), amount=Sum("price"))
    return int(total["n"] or 0), total["amount"] or Decimal("0")
