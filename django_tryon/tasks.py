"""Celery tasks: thin wrappers around ``pipeline`` and ``admission``, keyed by primary key and ticket.

No task sleeps and none depends on its own delivery: what is due, and when, is on the job row.
``acks_late`` gets a task redelivered after a worker dies mid-step; the ticket and the lease make the
redelivery (or a lost message, re-sent by the tick) harmless.
"""

from __future__ import annotations

from celery import shared_task

from . import admission, pipeline, services, webhooks

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(name="django_tryon.advance_tryon", **TASK_OPTIONS)
def advance_tryon(pk: int, ticket: int) -> None:
    """Run step ``ticket`` of job ``pk`` (submit, poll or fetch); the next one is scheduled by the step."""
    pipeline.advance(pk, ticket)


@shared_task(name="django_tryon.prepare_tryon", **TASK_OPTIONS)
def prepare_tryon(pk: int) -> int:
    """Upload a queued job's inputs to the provider while it waits, so its submit is one request."""
    return pipeline.prepare(pk)


@shared_task(name="django_tryon.admit_tryons", **TASK_OPTIONS)
def admit_tryons(route: str | None = None, model: str | None = None) -> int:
    """Admit queued jobs of a route and model while the provider has room (a rate window or a back-off ended)."""
    return admission.admit((route, model) if route is not None and model is not None else None)


@shared_task(name="django_tryon.deliver_webhooks", **TASK_OPTIONS)
def deliver_webhooks(endpoint_pk: int, event: str) -> int:
    """Send the due webhook deliveries of one endpoint and event, in order, one at a time."""
    return webhooks.deliver_due(endpoint_pk, event)


@shared_task(name="django_tryon.tick_tryons", ignore_result=True)
def tick_tryons() -> dict[str, int]:
    """Periodic (Celery beat, every few seconds): the dispatcher's safety net."""
    return pipeline.tick()


@shared_task(name="django_tryon.purge_tryons", ignore_result=True)
def purge_tryons() -> dict[str, int]:
    """Periodic (Celery beat, daily): delete personal images past their retention time."""
    return services.purge()
