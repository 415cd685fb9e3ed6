"""Celery tasks: thin, keyed by primary key and ticket; scheduling through one module (run eagerly with .apply())."""

from __future__ import annotations

from unittest import mock

import pytest

from django_tryon import pipeline, services, tasks
from django_tryon.models import TryOn

from .conftest import admit

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(person_bytes, top_garment):
    return services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)


def test_tasks_are_named_and_ack_late():
    for task, name in (
        (tasks.advance_tryon, "django_tryon.advance_tryon"),
        (tasks.admit_tryons, "django_tryon.admit_tryons"),
    ):
        assert task.name == name and task.acks_late and task.ignore_result
    assert (
        tasks.tick_tryons.name == "django_tryon.tick_tryons"
        and tasks.purge_tryons.name == "django_tryon.purge_tryons"
    )


def test_a_create_is_admitted_and_its_first_step_sent_after_commit(
    person_bytes, top_garment, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(tasks.advance_tryon, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
        apply_async.assert_not_called()  # nothing leaves before the row is committed
    job.refresh_from_db()
    assert job.status == "submitting"
    apply_async.assert_called_once_with((job.pk, job.ticket))


def test_a_step_schedules_the_next_with_a_countdown(dashscope, job, django_capture_on_commit_callbacks):
    dashscope.submit_ok()
    pipeline_job = admit(job)
    with (
        mock.patch.object(tasks.advance_tryon, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        tasks.advance_tryon.apply((job.pk, pipeline_job.ticket))
    job.refresh_from_db()
    assert job.status == "submitted"
    (args,), kwargs = apply_async.call_args
    assert args == (job.pk, job.ticket) and 0.5 < kwargs["countdown"] <= 1.0  # probing: 1 s without history


def test_a_stale_ticket_does_nothing(dashscope, job):
    admit(job)
    tasks.advance_tryon.apply((job.pk, job.ticket - 1))
    assert TryOn.objects.get(pk=job.pk).status == "submitting" and not dashscope.rsps.calls


def test_an_unexpected_error_fails_the_job_with_a_reason(job):
    admit(job)
    with mock.patch.object(pipeline, "_submit", side_effect=KeyError("bug")), pytest.raises(KeyError):
        tasks.advance_tryon.apply((job.pk, job.ticket), throw=True)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ProcessingError") and "KeyError" in job.error_message
    assert job.lease_until is None


def test_tick_and_admit_tasks_call_the_dispatcher():
    with mock.patch.object(pipeline, "tick", return_value={"admitted": 0}) as tick:
        assert tasks.tick_tryons.apply().get() == {"admitted": 0}
    tick.assert_called_once_with()
    with mock.patch("django_tryon.admission.admit", return_value=2) as admit:
        assert tasks.admit_tryons.apply(("dashscope", "aitryon")).get() == 2
    admit.assert_called_once_with(("dashscope", "aitryon"))


def test_a_broker_outage_never_breaks_the_request(
    person_bytes, top_garment, django_capture_on_commit_callbacks, caplog
):
    from kombu.exceptions import OperationalError

    with (
        mock.patch.object(tasks.advance_tryon, "apply_async", side_effect=OperationalError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
    job.refresh_from_db()
    assert job.status == "submitting" and "the tick will pick the work up" in caplog.text
