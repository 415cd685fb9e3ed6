"""The naive baseline of ``make bench``: one Celery task per job that submits and sleeps between polls.

This is how a typical integration is written (and how django-tryon is *not*): it sends the submit as
soon as a worker is free, re-uploads the inputs on every attempt, retries a 429 after a second, then
sleeps two seconds between polls while holding the worker. Loaded into the bench's workers with
``celery worker -I naive_tasks``; never part of the package.
"""

from __future__ import annotations

import random
import time

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from django_tryon import pipeline
from django_tryon.backends import get_backend
from django_tryon.backends.base import RemoteState, TryOnInput
from django_tryon.exceptions import TryOnRetryableError
from django_tryon.models import TryOn

POLL_EVERY = 2.0


@shared_task(name="naive.run_tryon", ignore_result=True)
def run_tryon(pk: int) -> None:
    job = TryOn.objects.get(pk=pk)
    backend = get_backend(model=job.model_name)
    TryOn.objects.filter(pk=pk).update(status="submitting")
    while True:
        try:
            request = TryOnInput(
                person_image_url=pipeline.input_url(job.person_file, backend),
                top_garment_url=pipeline.input_url(job.top_image, backend) if job.top_image else None,
                resolution=job.resolution,
                restore_face=job.restore_face,
            )
            result = backend.submit(request)
            break
        except TryOnRetryableError:
            time.sleep(1.0 + random.random())
    TryOn.objects.filter(pk=pk).update(
        status="submitted", remote_id=result.remote_id, submitted_at=timezone.now()
    )
    while True:
        time.sleep(POLL_EVERY)
        try:
            state = backend.poll(result.remote_id)
        except TryOnRetryableError:
            continue
        TryOn.objects.filter(pk=pk).update(
            poll_count=F("poll_count") + 1,
            remote_submitted_at=state.submitted_at,
            remote_ended_at=state.ended_at,
        )
        if state.state is RemoteState.SUCCEEDED:
            pipeline.store_result(
                TryOn.objects.get(pk=pk), backend, state.result_url or "", state.image_count
            )
            return
        if state.state not in (RemoteState.PENDING, RemoteState.RUNNING):
            TryOn.objects.filter(pk=pk).update(
                status="failed", error_code=state.error_code or "ProviderError", finished_at=timezone.now()
            )
            return
