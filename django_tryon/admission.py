"""Admission control: how many jobs may be with the provider, per key and model, across every worker.

The database decides. Under a named lock per model (``locks.hold``), admission counts the jobs that
hold a provider slot (``TryOn.objects.active()``: admitted, and the provider has not ended them)
and the admissions of the last second, per pool key, and moves the oldest queued jobs to
``submitting`` (first come, first served), spreading them over the keys with the most room. It runs
the moment a slot frees (a job finishes, fails, is canceled or handed back), after every create
(:func:`admit_new`: without the lock when every slot is taken), and from the periodic tick as a
safety net.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from . import locks, routing, timing
from .backends import Route, route, routes
from .conf import tryon_settings
from .models import Status, TryOn
from .scheduling import schedule_admission, schedule_preparation, schedule_step

RATE_WINDOW = timedelta(seconds=1)

#: A lane is what admission counts slots for: (route name, model).
Lane = tuple[str, str]


def lane_of(job: TryOn) -> Lane:
    return (route(job.route).name, job.model_name)


def on_route(name: str) -> Q:
    """Jobs of the route called ``name`` (jobs from before chains carry "" and belong to the first route)."""
    return Q(route=name) | Q(route="") if name == routes()[0].name else Q(route=name)


def admit(lane: Lane | None = None, *, now: datetime | None = None) -> int:
    """Admit queued jobs of ``lane`` (every lane with queued jobs when None); returns how many."""
    lanes = [lane] if lane else _queued_lanes()
    return sum(len(_admit_lane(item, now or timezone.now())) for item in lanes)


def admit_one_here(lane: Lane) -> TryOn | None:
    """Admit like :func:`admit`, but hand the first admitted job back, already claimed (leased), for the
    caller to submit in this process at once instead of through the broker: the slot a finishing job
    freed is taken without a round trip. Any others admitted are scheduled as usual; the uploads of the
    jobs after them are asked for once the caller has submitted (:func:`prepare_next`)."""
    admitted = _admit_lane(lane, timezone.now(), keep_first=True)
    return admitted[0] if admitted else None


def prepare_next(lane: Lane) -> None:
    """Have the next queued jobs of ``lane`` upload their inputs now (see :func:`_prepare_next`)."""
    entry, model, now = route(lane[0]), lane[1], timezone.now()
    _prepare_next(_eligible(entry, model, now), capacity(entry, model), now)


def admit_new(lane: Lane) -> int:
    """After a create or a retry: admit as :func:`admit` does when the lane may have a free slot; when
    every slot is taken, only have the head of the queue prepare its uploads.

    A burst of creates then does not queue up for the admission lock (ahead of the worker that hands a
    freed slot over). Safe without the lock: a job committed before this count is seen by the admission
    of whichever step frees the next slot, and a slot freed before it shows here as room.
    """
    entry, model = route(lane[0]), lane[1]
    busy = _lane_jobs(entry, model).active().count()
    if busy >= capacity(entry, model) and routing.usable(entry):  # (a refused route's queue moves on now)
        prepare_next(lane)
        return 0
    return admit(lane)


def _queued_lanes() -> list[Lane]:
    # order_by(): the model's default ordering would make DISTINCT return one row per job
    pairs = (
        TryOn.objects.filter(status=Status.QUEUED).order_by().values_list("route", "model_name").distinct()
    )
    return sorted({(route(name).name, model) for name, model in pairs})


def _lane_jobs(entry: Route, model: str) -> Any:
    """Every job of a lane (the route ``entry``, ``model``)."""
    return TryOn.objects.filter(on_route(entry.name), model_name=model)


def _eligible(entry: Route, model: str, now: datetime) -> Any:
    """Queued jobs of a lane whose "not before" (a back-off) has passed."""
    return (
        _lane_jobs(entry, model)
        .filter(status=Status.QUEUED)
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
    )


def _admit_lane(lane: Lane, now: datetime, *, keep_first: bool = False) -> list[TryOn]:
    """Admit what fits; returns the admitted jobs (only ``pk`` and ``ticket`` loaded, but the first in full
    with ``keep_first``).

    With ``keep_first`` the first is neither scheduled nor prepared for: it is leased to the caller,
    who submits it at once (:func:`admit_one_here`), and the next jobs' uploads wait for that submit.
    """
    entry, model = route(lane[0]), lane[1]
    usable, on_trial = routing.health(entry, now)
    if not usable:
        moved_to = _fail_over_queue(entry, model, now)
        return _admit_lane(moved_to, now, keep_first=keep_first) if moved_to else []
    admitted: list[TryOn] = []
    with transaction.atomic():
        locks.hold(f"django_tryon.admission:{entry.name}:{model}")
        room, rate_opens_at = _room(entry, model, now, on_trial=on_trial)
        eligible = _eligible(entry, model, now)
        waiting = list(
            eligible.order_by("created_at", "pk").values_list("pk", "uploads")[: sum(room.values())]
        )
        for pk, uploads in waiting:
            prepared = next((u.get("key") for u in (uploads or {}).values() if isinstance(u, dict)), None)
            # the key its inputs were uploaded for, else the key with the most room (jobs spread over the pool)
            key = (
                prepared
                if prepared is not None and room.get(prepared, 0) > 0
                else max(room, key=room.__getitem__)
            )
            kept = keep_first and not admitted  # leased to the caller: the tick leaves it alone meanwhile
            moved = TryOn.objects.transition(
                pk,
                [Status.QUEUED],
                Status.SUBMITTING,
                key_name=key,
                admitted_at=now,
                next_check_at=now,
                lease_until=now + timedelta(seconds=float(tryon_settings.LEASE_SECONDS)) if kept else None,
                ticket=F("ticket") + 1,
                route=entry.name,
            )
            if moved:
                job = TryOn.objects.get(pk=pk) if kept else TryOn.objects.only("pk", "ticket").get(pk=pk)
                if not kept:
                    schedule_step(pk, job.ticket, now, route=entry.name)
                admitted.append(job)
                room[key] -= 1
        if rate_opens_at is not None and eligible.exists():  # only the submit rate holds them back
            schedule_admission((entry.name, model), rate_opens_at)
        if not keep_first:
            _prepare_next(eligible, capacity(entry, model), now)
    return admitted


def _prepare_next(eligible: Any, count: int, now: datetime) -> None:
    """Have the next ``count`` queued jobs upload their inputs now, so their submits are one request each.

    Only the head of the queue: a burst of creates must not fill the workers with uploads ahead of the
    steps of admitted jobs. A job is marked when its preparation is sent, so it is sent once.
    """
    head = eligible.order_by("created_at", "pk").values_list("pk", "uploads")[:count]
    for pk in [pk for pk, uploads in head if not uploads]:
        if TryOn.objects.filter(pk=pk, status=Status.QUEUED, uploads={}).update(
            uploads={"pending": now.isoformat()}
        ):
            schedule_preparation(pk)


def _fail_over_queue(entry: Route, model: str, now: datetime) -> Lane | None:
    """A refused or broken route: its queued jobs move to the next usable route of the chain."""
    moved_to = None
    for job in _lane_jobs(entry, model).filter(status=Status.QUEUED):
        nxt = routing.choose(after=entry.name, garments=routing.garments_of(job))
        if nxt is not None and move_to(job, nxt, reason=routing_reason(entry)):  # else it waits for the route
            moved_to = moved_to or (nxt.name, nxt.model)
    return moved_to


def routing_reason(entry: Route) -> str:
    from .models import TryOnRoute

    state = TryOnRoute.objects.filter(name=entry.name).first()
    return (state.refused_code or "BreakerOpen") if state else "BreakerOpen"


def move_to(job: TryOn, entry: Route, *, reason: str) -> bool:
    """Put a queued or submitting job on another route (its model, price and a history entry with it)."""
    from . import quotas

    backend = entry.backend()
    entry_log = {
        "route": job.route or route(job.route).name,
        "model": job.model_name,
        "outcome": reason,
        "cost": "0",
        "remote_id": job.remote_id,
        "at": timezone.now().isoformat(),
    }
    moved = TryOn.objects.filter(pk=job.pk, status__in=(Status.QUEUED, Status.SUBMITTING)).update(
        status=Status.QUEUED,
        route=entry.name,
        backend=backend.name,
        model_name=backend.model,
        key_name="",
        uploads={},
        remote_id="",
        request_id="",
        submit_sent_at=None,
        next_check_at=None,
        lease_until=None,
        history=[*job.history, entry_log],
        updated_at=timezone.now(),
    )
    if moved:
        quotas.reprice(job, backend.model)
    return bool(moved)


def _room(
    entry: Route, model: str, now: datetime, *, on_trial: bool
) -> tuple[dict[str, int], datetime | None]:
    """Free slots per key (concurrency and the submit-rate window), and when the rate lets more in."""
    slots = entry.keys
    mine = _lane_jobs(entry, model)
    active = dict(mine.active().values_list("key_name").annotate(n=Count("pk")).values_list("key_name", "n"))
    recent: dict[str, list[datetime]] = {}
    for key, at in mine.filter(admitted_at__gt=now - RATE_WINDOW).values_list("key_name", "admitted_at"):
        recent.setdefault(key, []).append(cast(datetime, at))  # never None: admitted_at__gt excludes NULL
    room: dict[str, int] = {}
    wake_at = None
    for slot in slots:
        concurrency, rate = slot.limits(entry.backend(model=model, key=slot.name))
        busy = active.get(slot.name, 0) + (active.get("", 0) if slot is slots[0] else 0)
        admitted_recently = sorted(recent.get(slot.name, []))
        by_rate = max(0, math.floor(rate) - len(admitted_recently))
        room[slot.name] = max(0, min(concurrency - busy, by_rate))
        if by_rate == 0 and concurrency > busy and admitted_recently:
            opens = admitted_recently[0] + RATE_WINDOW
            wake_at = opens if wake_at is None else min(wake_at, opens)
    if on_trial:  # on trial: one job at a time until the provider answers it
        trial = 0 if TryOn.objects.filter(on_route(entry.name)).active().exists() else 1
        room = {
            name: (min(free, trial) if name == max(room, key=room.__getitem__) else 0)
            for name, free in room.items()
        }
    return room, wake_at


def capacity(entry: Route, model: str) -> int:
    """Tasks of ``model`` the whole pool of a route may have with the provider at once."""
    return sum(slot.limits(entry.backend(model=model, key=slot.name))[0] for slot in entry.keys)


def queue_info(job: TryOn) -> dict[str, Any]:
    """Queue position and ETA while queued (from the real queue), elapsed time while with the provider."""
    info: dict[str, Any] = {"queue_position": None, "eta_seconds": None, "elapsed_seconds": None}
    if job.status == Status.QUEUED:
        entry = route(job.route)
        ahead = TryOn.objects.filter(
            on_route(entry.name),
            status=Status.QUEUED,
            model_name=job.model_name,
            created_at__lt=job.created_at,
        ).count()
        try:
            backend = entry.backend(model=job.model_name or None)
            slots = max(1, capacity(entry, job.model_name))
            typical = backend.capabilities.typical_duration
        except Exception:  # noqa: BLE001 - a misconfigured backend must not break the status page
            slots, typical = 5, 20.0
        stats = timing.observed(job.model_name)
        duration = stats.p50 if stats is not None else typical
        info["queue_position"] = ahead + 1
        info["eta_seconds"] = round(duration * (1 + ahead // slots), 1)
    elif job.status == Status.SUBMITTING:
        info["queue_position"] = 0
    elif job.status in (Status.SUBMITTED, Status.RUNNING):
        info["elapsed_seconds"] = round(
            (timezone.now() - (job.submitted_at or job.created_at)).total_seconds(), 1
        )
    return info
