"""Figures for the admin dashboard: volumes, success, waits, errors, spend and capacity."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, QuerySet
from django.utils import timezone

from . import quotas
from .conf import tryon_settings
from .models import TryOn


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` percentile (0–1) by nearest rank; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * (len(ordered) - 1))))
    return ordered[index]


def figures(now: Any = None) -> dict[str, Any]:
    now = now or timezone.now()
    today = quotas.day_start(now)
    week = today - timedelta(days=6)
    jobs_week = TryOn.objects.filter(created_at__gte=week)

    def by_status(qs: QuerySet[TryOn]) -> dict[str, int]:
        return dict(qs.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))

    finished = jobs_week.filter(status__in=("succeeded", "failed"))
    succeeded = finished.filter(status="succeeded").count()
    waits, times = [], []
    for created, submitted, finished_at, status in jobs_week.exclude(submitted_at=None).values_list(
        "created_at", "submitted_at", "finished_at", "status"
    ):
        submitted = cast(datetime, submitted)  # never None: excluded above
        waits.append((submitted - created).total_seconds())
        if status == "succeeded" and finished_at:
            times.append((finished_at - submitted).total_seconds())
    errors = Counter(
        dict(
            jobs_week.filter(status="failed")
            .values_list("error_code")
            .annotate(n=Count("pk"))
            .values_list("error_code", "n")
        )
    )
    images_today = sum(
        TryOn.objects.filter(created_at__gte=today, status="succeeded").values_list("image_count", flat=True)
    )
    spend_today = sum(
        (
            quotas.price_of(model) * n
            for model, n in TryOn.objects.filter(created_at__gte=today, status="succeeded")
            .values_list("model_name")
            .annotate(n=Count("pk"))
            .values_list("model_name", "n")
        ),
        Decimal("0"),
    )
    days = []
    for offset in range(7):
        start = week + timedelta(days=offset)
        day = by_status(TryOn.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1)))
        days.append(
            {
                "date": start.date(),
                "succeeded": day.get("succeeded", 0),
                "failed": day.get("failed", 0),
                "other": sum(n for s, n in day.items() if s not in ("succeeded", "failed")),
            }
        )
    in_flight = TryOn.objects.active().count()
    try:
        from .backends import get_backend

        concurrency = get_backend().capabilities.max_concurrency
    except Exception:  # noqa: BLE001 - a misconfigured backend must not break the dashboard
        concurrency = None
    return {
        "today": by_status(TryOn.objects.filter(created_at__gte=today)),
        "week": by_status(jobs_week),
        "success_rate": succeeded / finished.count() if finished.exists() else None,
        "queue_wait": {"p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95)},
        "generation": {"p50": percentile(times, 0.5), "p95": percentile(times, 0.95)},
        "top_errors": errors.most_common(5),
        "images_today": images_today,
        "spend_today": spend_today,
        "currency": tryon_settings.CURRENCY,
        "budget_images": tryon_settings.DAILY_BUDGET_IMAGES,
        "budget_amount": tryon_settings.DAILY_BUDGET_AMOUNT,
        "budget_used": quotas.spent_today(now),
        "in_flight": in_flight,
        "concurrency": concurrency,
        "days": _bars(days),
    }


def _bars(days: list[dict[str, Any]], height: int = 140, base: int = 150) -> list[dict[str, Any]]:
    """Stacked-bar geometry (succeeded at the bottom, failed, then the rest) for the inline SVG."""
    top = max([d["succeeded"] + d["failed"] + d["other"] for d in days] + [1])
    for index, day in enumerate(days):
        y = base
        day["x"] = 10 + index * 78
        for key in ("succeeded", "failed", "other"):
            h = round(day[key] * height / top)
            y -= h
            day[f"{key}_h"], day[f"{key}_y"] = h, y
    return days
