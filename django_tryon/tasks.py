"""Celery tasks: thin wrappers that call ``services`` by primary key and schedule the next step.

No task sleeps: polling reschedules itself with a countdown. ``acks_late`` means a worker that dies
mid-task gets the task redelivered; the guarded transitions make the redelivery harmless.
"""

from __future__ import annotations

from celery import shared_task

from . import services
from .exceptions import TryOnRetryableError

TASK_OPTIONS = {"bind": True, "acks_late": True, "ignore_result": True, "max_retries": None}


@shared_task(name="django_tryon.submit_tryon", **TASK_OPTIONS)
def submit_tryon(self, pk: int) -> None:
    try:
        countdown = services.submit(pk)
    except TryOnRetryableError as err:
        _retry_or_fail(self, pk, err)
        return
    if countdown is not None:
        poll_tryon.apply_async((pk,), countdown=countdown)


@shared_task(name="django_tryon.poll_tryon", **TASK_OPTIONS)
def poll_tryon(self, pk: int) -> None:
    try:
        countdown = services.poll(pk)
    except TryOnRetryableError as err:
        _retry_or_fail(self, pk, err)
        return
    if countdown is not None:
        poll_tryon.apply_async((pk,), countdown=countdown)


@shared_task(name="django_tryon.sweep_tryons", ignore_result=True)
def sweep_tryons(stale_after: float = 300) -> dict[str, int]:
    """Periodic (Celery beat): recover jobs whose task was lost."""
    return services.sweep(stale_after=stale_after)


def _retry_or_fail(task, pk: int, err: TryOnRetryableError) -> None:
    delay = services.retry_delay(task.request.retries, err)
    if delay is None:
        services.fail(pk, err)
        return
    raise task.retry(countdown=delay, exc=err)
