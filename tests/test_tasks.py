"""Celery tasks: scheduling, retry with backoff, giving up, duplicate delivery (run eagerly with .apply())."""

from __future__ import annotations

from unittest import mock

import pytest
from celery.exceptions import Retry
from django.test import override_settings

from django_tryon import services, tasks
from django_tryon.exceptions import TryOnRetryableError
from django_tryon.models import TryOn

from .conftest import SUBMIT_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(person_bytes, top_garment):
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    services.dispatch(job.pk)
    return job


def test_tasks_are_named_and_ack_late():
    for task, name in ((tasks.submit_tryon, "django_tryon.submit_tryon"), (tasks.poll_tryon, "django_tryon.poll_tryon")):
        assert task.name == name and task.acks_late and task.ignore_result


def test_dispatch_enqueues_submit_after_commit(person_bytes, top_garment, django_capture_on_commit_callbacks):
    with mock.patch.object(tasks.submit_tryon, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
            delay.assert_not_called()  # nothing leaves before the row is committed
    delay.assert_called_once_with(job.pk)
    assert TryOn.objects.get(pk=job.pk).status == "submitting"


def test_submit_schedules_the_first_poll_near_the_typical_duration(dashscope, job):
    dashscope.submit_ok()
    with mock.patch.object(tasks.poll_tryon, "apply_async") as apply_async:
        tasks.submit_tryon.apply((job.pk,))
    apply_async.assert_called_once_with((job.pk,), countdown=15.0)
    assert TryOn.objects.get(pk=job.pk).status == "submitted"


def test_plus_model_waits_longer_before_the_first_poll(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, model="aitryon-plus", dispatch_now=False)
    services.dispatch(job.pk)
    with mock.patch.object(tasks.poll_tryon, "apply_async") as apply_async:
        tasks.submit_tryon.apply((job.pk,))
    assert apply_async.call_args.kwargs["countdown"] == 45.0
    assert dashscope.submitted_json()["model"] == "aitryon-plus"


def test_poll_reschedules_itself_without_sleeping(dashscope, job):
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    services.submit(job.pk)
    with mock.patch.object(tasks.poll_tryon, "apply_async") as apply_async, mock.patch("time.sleep") as sleep:
        tasks.poll_tryon.apply((job.pk,))
    apply_async.assert_called_once_with((job.pk,), countdown=3.0)
    sleep.assert_not_called()


def test_retryable_error_retries_with_exponential_backoff_and_jitter(dashscope, job):
    dashscope.error("POST", SUBMIT_URL, 503, "ModelServingError")
    countdowns = []
    for retries in range(4):
        with mock.patch.object(tasks.submit_tryon, "retry", side_effect=Retry()) as retry:
            request = {"retries": retries}
            with pytest.raises(Retry):
                tasks.submit_tryon.apply((job.pk,), throw=True, **request)
        countdowns.append(retry.call_args.kwargs["countdown"])
        assert isinstance(retry.call_args.kwargs["exc"], TryOnRetryableError)
    for n, countdown in enumerate(countdowns):
        assert 2 ** (n + 1) / 2 <= countdown <= 2 ** (n + 1)
    assert TryOn.objects.get(pk=job.pk).status == "submitting"


def test_backoff_is_capped_and_honours_retry_after():
    err = TryOnRetryableError("busy", retry_after=30)
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "RETRY_BACKOFF_MAX": 10, "MAX_RETRIES": 20}):
        assert all(services.retry_delay(n, TryOnRetryableError("x")) <= 10 for n in range(15))
        assert services.retry_delay(0, err) >= 30
    jitter = {round(services.retry_delay(3, TryOnRetryableError("x")), 6) for _ in range(20)}
    assert len(jitter) > 1


def test_gives_up_after_max_retries(dashscope, job):
    dashscope.error("POST", SUBMIT_URL, 429, "Throttling")
    with override_settings(TRYON={"OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
                                  "PUBLIC_BASE_URL": "https://shop.test", "MAX_RETRIES": 2}):
        tasks.submit_tryon.apply((job.pk,), retries=2)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "Throttling")


def test_poll_retries_transient_errors(dashscope, job):
    dashscope.submit_ok()
    services.submit(job.pk)
    dashscope.error("GET", f"https://dashscope.test/api/v1/tasks/{dashscope.task_id}", 500, "InternalError")
    with mock.patch.object(tasks.poll_tryon, "retry", side_effect=Retry()) as retry, pytest.raises(Retry):
        tasks.poll_tryon.apply((job.pk,), throw=True)
    assert retry.call_args.kwargs["countdown"] > 0
    assert TryOn.objects.get(pk=job.pk).status == "submitted"


def test_duplicate_delivery_changes_nothing(dashscope, job):
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    with mock.patch.object(tasks.poll_tryon, "apply_async"):
        tasks.submit_tryon.apply((job.pk,))
        tasks.submit_tryon.apply((job.pk,))
        tasks.poll_tryon.apply((job.pk,))
        finished = TryOn.objects.get(pk=job.pk)
        tasks.poll_tryon.apply((job.pk,))
    again = TryOn.objects.get(pk=job.pk)
    assert again.status == "succeeded" and again.updated_at == finished.updated_at
    assert again.result_image.name == finished.result_image.name
    assert len([c for c in dashscope.rsps.calls if c.request.url == SUBMIT_URL]) == 1


def test_sweep_task_calls_the_service():
    with mock.patch.object(services, "sweep", return_value={"dispatched": 0}) as sweep:
        assert tasks.sweep_tryons.apply(kwargs={"stale_after": 60}).get() == {"dispatched": 0}
    sweep.assert_called_once_with(stale_after=60)


def test_an_unexpected_error_fails_the_job_with_a_reason(job):
    with mock.patch.object(services, "submit", side_effect=KeyError("bug")), pytest.raises(KeyError):
        tasks.submit_tryon.apply((job.pk,), throw=True)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ProcessingError") and "KeyError" in job.error_message


def test_a_job_waiting_for_its_retry_is_not_swept(dashscope, job):
    from datetime import timedelta

    from django.utils import timezone

    dashscope.error("POST", SUBMIT_URL, 503, "ModelServingError")
    TryOn.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with mock.patch.object(tasks.submit_tryon, "retry", side_effect=Retry()), pytest.raises(Retry):
        tasks.submit_tryon.apply((job.pk,), throw=True)
    with mock.patch.object(tasks.submit_tryon, "delay") as delay:
        assert services.sweep()["resubmitted"] == 0
    delay.assert_not_called()


def test_a_broker_outage_never_breaks_the_request(person_bytes, top_garment, django_capture_on_commit_callbacks, caplog):
    from kombu.exceptions import OperationalError

    with mock.patch.object(tasks.submit_tryon, "delay", side_effect=OperationalError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
    job.refresh_from_db()
    assert job.status == "submitting" and "the sweep will retry" in caplog.text
