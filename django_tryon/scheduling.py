"""The one place that hands work to Celery: a job's next step, and admission runs.

Messages carry a ``ticket`` (the job row's counter), so a message that arrives late, twice, or after
the tick took the job over does nothing. A broker that cannot be reached is logged, never raised:
the row says what is due, and the tick (``django_tryon.tick_tryons``) sends it again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("django_tryon")


def schedule_step(pk: int, ticket: int, at: datetime | None = None, *, route: str | None = None) -> None:
    """Run step ``ticket`` of job ``pk`` at ``at`` (now when None), once the current transaction commits.

    ``route``: the job's route, so that a synchronous backend's step goes where :func:`step_options` says.
    """
    from .tasks import advance_tryon

    transaction.on_commit(partial(_send, advance_tryon, (pk, ticket), at, step_options(route)))


def is_synchronous(route_name: str | None) -> bool:
    """Whether the backend of ``route_name`` answers a try-on in one long request (no task to poll)."""
    from .backends import route

    try:
        return route(route_name).backend().capabilities.longest_request > 0
    except Exception:  # noqa: BLE001 - a route that cannot be built fails in the step itself, with its reason
        return False


def step_options(route_name: str | None) -> dict[str, Any]:
    """Celery options of a step: a synchronous backend's steps go to ``SYNC_QUEUE`` with a hard time limit
    (its longest request + ``SYNC_TIME_MARGIN``), so a hung call cannot hold a worker for good."""
    from .backends import route
    from .conf import tryon_settings

    if not is_synchronous(route_name):
        return {}
    margin = float(tryon_settings.SYNC_TIME_MARGIN)
    limit = route(route_name).backend().capabilities.longest_request + margin
    options: dict[str, Any] = {"time_limit": limit, "soft_time_limit": limit - margin / 2}
    if tryon_settings.SYNC_QUEUE:
        options["queue"] = tryon_settings.SYNC_QUEUE
    return options


def schedule_admission(lane: tuple[str, str], at: datetime | None = None) -> None:
    """Admit queued jobs of ``lane`` (route, model) at ``at`` (when a submit-rate window or a back-off ends)."""
    from .tasks import admit_tryons

    transaction.on_commit(partial(_send, admit_tryons, tuple(lane), at))


def schedule_preparation(pk: int) -> None:
    """Make the provider uploads of a queued job now, while it waits (``pipeline.prepare``)."""
    from .tasks import prepare_tryon

    transaction.on_commit(partial(_send, prepare_tryon, (pk,), None))


def schedule_webhooks(endpoint_pk: int, event: str, at: datetime | None = None) -> None:
    """Send the due webhook deliveries of an endpoint and event (``webhooks.deliver_due``) at ``at``."""
    from .tasks import deliver_webhooks

    transaction.on_commit(partial(_send, deliver_webhooks, (endpoint_pk, event), at))


def _send(task: Any, args: tuple, at: datetime | None, options: dict[str, Any] | None = None) -> bool:
    countdown = max(0.0, (at - timezone.now()).total_seconds()) if at is not None else 0.0
    options = {**(options or {}), **({"countdown": countdown} if countdown > 0 else {})}
    try:
        task.apply_async(args, **options)
    except Exception:  # kombu/redis/amqp connection errors differ by transport
        logger.exception("could not send %s%r; the tick will pick the work up", task.name, args)
        return False
    return True
