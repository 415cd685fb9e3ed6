"""When to look at a provider task: adaptive polling from the durations observed per model.

The first poll comes near the early end of the last 20 tasks (their 25th percentile) and then short
steps of a sixth of their spread (10th to 90th percentile), so a typical task is seen about three
times whatever its length. Until a model has enough history the schedule probes (1, 1.5, 2.25 …
seconds: each step half the time waited, never past the backend's typical duration) so a fast
look-alike and a slow provider are both found quickly. The figures come from the provider's own clock (its submit and end times).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .conf import tryon_settings

#: Recent successful tasks per model that the statistics use, and how many are needed.
WINDOW = 20
MIN_SAMPLES = 5
#: Seconds an in-process copy of the statistics is reused (every poll asks for them).
CACHE_SECONDS = 10.0

_cache: dict[str, tuple[float, Durations | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Durations:
    """Percentiles (seconds) of recent provider task durations of one model."""

    p10: float
    p25: float
    p50: float
    p90: float
    samples: int


def percentile(ordered: list[float], share: float) -> float:
    """Linear-interpolated percentile of an ascending list (``share`` in 0–1)."""
    if len(ordered) == 1:
        return ordered[0]
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def observed(model: str) -> Durations | None:
    """Statistics of the last ``WINDOW`` successful tasks of ``model``, or None with too few of them."""
    now = time.monotonic()
    cached = _cache.get(model)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    from .models import Status, TryOn

    rows = (
        TryOn.objects.filter(
            model_name=model,
            status=Status.SUCCEEDED,
            remote_submitted_at__isnull=False,
            remote_ended_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("remote_submitted_at", "remote_ended_at")[:WINDOW]
    )
    durations = sorted(max(0.0, (end - start).total_seconds()) for start, end in rows if start and end)
    stats = None
    if len(durations) >= MIN_SAMPLES:
        p10, p25, p50, p90 = (percentile(durations, q) for q in (0.10, 0.25, 0.50, 0.90))
        stats = Durations(p10, p25, p50, p90, samples=len(durations))
    with _lock:
        _cache[model] = (now, stats)
    return stats


def forget() -> None:
    """Drop the in-process statistics (tests; a model whose speed changed)."""
    with _lock:
        _cache.clear()


def first_check(model: str, typical: float) -> float:
    """Seconds after the provider accepted a task before its first poll."""
    if tryon_settings.FIRST_POLL_DELAY is not None:
        return float(tryon_settings.FIRST_POLL_DELAY)
    stats = observed(model)
    if stats is None:
        return min(1.0, typical)
    return max(float(tryon_settings.MIN_POLL_INTERVAL), stats.p25)


def next_check(model: str, typical: float, elapsed: float) -> float:
    """Seconds until the next poll of a task that was still running ``elapsed`` seconds after submission."""
    ceiling = float(tryon_settings.POLL_INTERVAL)
    floor = min(float(tryon_settings.MIN_POLL_INTERVAL), ceiling)
    stats = observed(model) if tryon_settings.FIRST_POLL_DELAY is None else None
    if stats is None:
        # Probing: half the time waited so far (1, 1.5, 2.25 … s: a late answer is seen within half
        # its time) without stepping over the typical duration, never more than POLL_INTERVAL at a time.
        step = min(max(elapsed * 0.5, 0.5), typical - elapsed) if elapsed < typical else ceiling
        return max(floor, min(step, ceiling))
    step = max(floor, stats.p50 * 0.02, (stats.p90 - stats.p10) / 6)  # a tight history never means hammering
    if elapsed < stats.p25:  # a task that started before the history existed: wait for the usual first look
        return min(ceiling, max(step, stats.p25 - elapsed))
    if elapsed > stats.p90:  # later than usual (a queue at the provider?): back off with the lateness
        step = max(step, (elapsed - stats.p90) / 2)
    return min(ceiling, step)
