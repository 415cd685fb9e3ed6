"""The one place that hands work to Celery: a job's next step, and admission runs.

Messages carry a ``ticket`` (the job row's counter), so a message that arrives late, twice, or after
the tick took the job over does nothing. A broker that cannot be reached is logged, never raised:
the row says what is due, and the tick (``django_tryon.tick_tryons``) sends it again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("django_tryon")


def schedule_step(pk: int, ticket: int, at: datetime | None = None) -> None:
    """Run step ``ticket`` of job ``pk`` at ``at`` (now when None), once the current transaction commits."""
    from .tasks import advance_tryon

    transaction.on_commit(partial(_send, advance_tryon, (pk, ticket), at))


def schedule_admission(lane: tuple[str, str], at: datetime | None = None) -> None:
    """Admit queued jobs of ``lane`` (route, model) at ``at`` (when a submit-rate window or a back-off ends)."""
    from .tasks import admit_tryons

    transaction.on_commit(partial(_send, admit_tryons, tuple(lane), at))


def schedule_preparation(pk: int) -> None:
    """Make the provider uploads of a queued job now, while it waits (``pipeline.prepare``)."""
    from .tasks import prepare_tryon

    transaction.on_commit(partial(_send, prepare_tryon, (pk,), None))


def _send(task, args: tuple, at: datetime | None) -> bool:
    countdown = max(0.0, (at - timezone.now()).total_seconds()) if at is not None else 0.0
    try:
        task.apply_async(args, countdown=countdown) if countdown > 0 else task.apply_async(args)
    except Exception:  # kombu/redis/amqp connection errors differ by transport
        logger.exception("could not send %s%r; the tick will pick the work up", task.name, args)
        return False
    return True
