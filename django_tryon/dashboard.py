"""Figures for the admin dashboard: volumes, success, waits, errors, spend, capacity and the funnel."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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


# -- Funnel analytics (issue 15, point 4) -------------------------------------------------------------
#: The date ranges the dashboard offers (days, the first is the default).
FUNNEL_RANGES = (7, 30)
FUNNEL_LABELS = {
    "shown": _("Button shown"),
    "opened": _("Dialog opened"),
    "photo_accepted": _("Photo accepted"),
    "succeeded": _("Try-on succeeded"),
    "downloaded_or_shared": _("Downloaded or shared"),
    "added_to_cart": _("Added to cart"),
    "purchased": _("Purchased"),
}
#: Columns of the CSV export (stable English names, for spreadsheets and scripts).
CSV_COLUMNS = (
    "product_id",
    "product",
    "shown",
    "opened",
    "tryons",
    "succeeded",
    "success_rate",
    "downloaded_or_shared",
    "added_to_cart",
    "add_to_cart_rate",
    "purchased",
    "spend",
    "currency",
)


def funnel_days(value: Any) -> int:
    """The date range asked for (``?days=30``), one of ``FUNNEL_RANGES`` (else the first)."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return FUNNEL_RANGES[0]
    return days if days in FUNNEL_RANGES else FUNNEL_RANGES[0]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def funnel_figures(days: int = 7, now: Any = None) -> dict[str, Any]:
    """The funnel of the last ``days`` days (today included) and its per-product table.

    Three queries whatever the number of products: the counts by product and step, the spend of the
    attempt ledger by product, and the products' names.
    """
    from .funnel import STEPS
    from .models import FunnelDay, TryOnAttempt, get_product_model

    last = timezone.localdate(now)
    first = last - timedelta(days=days - 1)
    counts: dict[Any, Counter[str]] = {}
    for product_id, step, n in (
        FunnelDay.objects.filter(date__gte=first, date__lte=last)
        .values_list("product_id", "step")
        .annotate(n=Sum("count"))
        .values_list("product_id", "step", "n")
        .order_by()
    ):
        counts.setdefault(product_id, Counter())[step] += int(n or 0)
    since = quotas.day_start(now) - timedelta(days=days - 1)
    spend = {
        product_id: Decimal(amount or 0).quantize(Decimal("0.0001"))
        for product_id, amount in TryOnAttempt.objects.filter(
            created_at__gte=since, released_at__isnull=True, job__product__isnull=False
        )
        .values_list("job__product_id")
        .annotate(amount=Sum("price"))
        .values_list("job__product_id", "amount")
        .order_by()
    }
    ids = set(counts) | set(spend)
    names = get_product_model()._default_manager.in_bulk(list(ids)) if ids else {}
    totals: Counter[str] = Counter()
    for per_step in counts.values():
        totals.update(per_step)
    steps, previous = [], None
    top = max([totals[s] for s in STEPS] + [1])
    for index, step in enumerate(STEPS):
        n = totals[step]
        steps.append(
            {
                "step": step,
                "label": FUNNEL_LABELS[step],
                "count": n,
                "conversion": None if previous is None else _rate(n, previous),
                "y": 8 + index * 30,
                "width": round(n * 360 / top),
            }
        )
        previous = n
    rows: list[dict[str, Any]] = []
    for product_id in ids:
        c = counts.get(product_id, Counter())
        rows.append(
            {
                "product_id": product_id,
                "product": str(names[product_id]) if product_id in names else f"#{product_id}",
                "shown": c["shown"],
                "opened": c["opened"],
                "tryons": c["photo_accepted"],
                "succeeded": c["succeeded"],
                "success_rate": _rate(c["succeeded"], c["photo_accepted"]),
                "downloaded_or_shared": c["downloaded_or_shared"],
                "added_to_cart": c["added_to_cart"],
                "add_to_cart_rate": _rate(c["added_to_cart"], c["succeeded"]),
                "purchased": c["purchased"],
                "spend": spend.get(product_id, Decimal("0")),
            }
        )
    rows.sort(key=lambda row: (-row["tryons"], -row["shown"], row["product"]))
    return {
        "days": days,
        "ranges": FUNNEL_RANGES,
        "first": first,
        "last": last,
        "steps": steps,
        "height": 8 + len(STEPS) * 30,
        "products": rows,
        "spend": sum((row["spend"] for row in rows), Decimal("0")),
        "currency": tryon_settings.CURRENCY,
    }


def _csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (=, +, -, @, tab, CR first: quoted with ')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def funnel_csv(figures: dict[str, Any]) -> str:
    """The per-product table as CSV text: a header row, then one row per product (UTF-8 with a BOM)."""
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheets read the file as UTF-8 (product names in Chinese)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in figures["products"]:
        values = {**row, "currency": figures["currency"]}
        values["spend"] = f"{row['spend']:.2f}"
        for key in ("success_rate", "add_to_cart_rate"):
            values[key] = "" if row[key] is None else f"{row[key]:.4f}"
        writer.writerow([_csv_safe(values[column]) for column in CSV_COLUMNS])
    return out.getvalue()
