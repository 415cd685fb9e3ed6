"""Celery tasks: thin wrappers that call ``services`` by primary key and schedule the next step.

No task sleeps: polling reschedules itself with a countdown. ``acks_late`` means a worker that dies
mid-task gets the task redelivered; the guarded transitions make the redelivery harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import services
from .exceptions import TryOnError, TryOnRetryableError

logger = logging.getLogger("django_tryon.tasks")

TASK_OPTIONS = {"bind": True, "acks_late": True, "ignore_result": True, "max_retries": None}


@shared_task(name="django_tryon.submit_tryon", **TASK_OPTIONS)
def submit_tryon(self, pk: int) -> None:
    try:
        countdown = services.submit(pk)
    except TryOnRetryableError as err:
        _retry_or_fail(self, pk, err)
        return
    except Exception as err:
        _fail_unexpected(pk, err)
        raise
    if countdown is not None:
        poll_tryon.apply_async((pk,), countdown=countdown)


@shared_task(name="django_tryon.poll_tryon", **TASK_OPTIONS)
def poll_tryon(self, pk: int) -> None:
    try:
        countdown = services.poll(pk)
    except TryOnRetryableError as err:
        _retry_or_fail(self, pk, err)
        return
    except Exception as err:
        _fail_unexpected(pk, err)
        raise
    if countdown is not None:
        poll_tryon.apply_async((pk,), countdown=countdown)


@shared_task(name="django_tryon.sweep_tryons", ignore_result=True)
def sweep_tryons(stale_after: float | None = None) -> dict[str, int]:
    """Periodic (Celery beat): recover jobs whose task was lost."""
    return services.sweep(stale_after=stale_after)


@shared_task(name="django_tryon.purge_tryons", ignore_result=True)
def purge_tryons() -> dict[str, int]:
    """Periodic (Celery beat, daily): delete personal images past their retention time."""
    return services.purge()


def _retry_or_fail(task, pk: int, err: TryOnRetryableError) -> None:
    delay = services.retry_delay(task.request.retries, err)
    if delay is None:
        services.fail(pk, err)
        return
    services.touch(pk)  # a job waiting for its retry is not stale
    raise task.retry(countdown=delay, exc=err)


def _fail_unexpected(pk: int, err: Exception) -> None:
    """A bug or an unexpected error: fail the job with a reason instead of leaving it stuck."""
    logger.exception("try-on task for job %s crashed", pk)
    services.fail(pk, TryOnError(f"Unexpected error while processing: {type(err).__name__}", code="ProcessingError"))
