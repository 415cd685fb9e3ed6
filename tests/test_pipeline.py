"""The pipeline's steps against a mocked provider (``responses``), run here without a worker."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone

from django_tryon import admission, pipeline, services, timing
from django_tryon.models import TryOn

from . import images
from .conftest import BASE, SUBMIT_URL, admit, step

pytestmark = pytest.mark.django_db
SETTINGS = {
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": BASE},
    "PUBLIC_BASE_URL": "https://shop.test",
}


@pytest.fixture(autouse=True)
def _fresh_timing():
    timing.forget()
    yield
    timing.forget()


def new_job(person_bytes, garment, **kwargs) -> TryOn:
    return services.create_tryon(person_image=person_bytes, top_garment=garment, dispatch_now=False, **kwargs)


def accepted_job(person_bytes, top_garment) -> TryOn:
    """A job admitted and submitted to the (mocked) provider."""
    job = admit(new_job(person_bytes, top_garment))
    step(job)
    job.refresh_from_db()
    assert job.status == "submitted"
    return job


def submits(dashscope) -> int:
    return len([c for c in dashscope.rsps.calls if c.request.url == SUBMIT_URL])


# -- the full flow -----------------------------------------------------------------------------------
def test_queued_to_succeeded_with_the_result_in_storage(dashscope, person_bytes, top_garment, bottom_garment):
    result = images.jpeg(480, 800, seed=9)
    dashscope.submit_ok()
    dashscope.task("PENDING")
    dashscope.task("RUNNING")
    dashscope.task("SUCCEEDED")
    dashscope.result(result)
    job = services.create_tryon(
        person_image=person_bytes, top_garment=top_garment, bottom_garment=bottom_garment, dispatch_now=False
    )
    assert admit(job).status == "submitting" and job.key_name == "default" and job.admitted_at
    first = step(job)  # submit
    assert 0.9 < (first - timezone.now()).total_seconds() <= 1.0  # no history yet: probe from 1 s
    nexts = [step(job) for _ in range(3)]
    job.refresh_from_db()
    assert nexts[-1] is None and all(n is not None for n in nexts[:2])
    assert job.status == "succeeded" and job.remote_id == dashscope.task_id
    assert job.request_id.startswith("4909100c") and job.poll_count == 3 and job.image_count == 1
    assert job.result_image.name.startswith("tryon/results/") and job.lease_until is None
    with job.result_image.open("rb") as fh:
        assert fh.read() == result
    assert job.remote_submitted_at.year == 2025 and job.remote_ended_at > job.remote_scheduled_at
    sent = dashscope.submitted_json()
    assert sent["input"]["person_image_url"].startswith("https://shop.test/tryon/files/")
    assert sent["input"]["bottom_garment_url"].startswith("https://shop.test/tryon/files/")


def test_provider_failure_is_recorded(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task(
        "FAILED", code="InvalidPerson", message="The input image has no human body or multi human bodies."
    )
    job = accepted_job(person_bytes, top_garment)
    assert step(job) is None
    job.refresh_from_db()
    assert (job.status, job.error_code, job.resubmits) == (
        "failed",
        "InvalidPerson",
        0,
    )  # final: not resubmitted
    assert job.provider_error["output"]["code"] == "InvalidPerson" and job.finished_at


def test_a_transient_task_failure_is_submitted_once_more(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("FAILED", code="InternalError.Algo", message="inference internal error.")
    job = accepted_job(person_bytes, top_garment)
    step(job)
    job.refresh_from_db()
    assert (
        job.status == "submitting" and job.resubmits == 1 and not job.remote_id
    )  # queued, then admitted again
    assert job.history[-1]["error_code"] == "InternalError.Algo" and "transient" in job.history[-1]["note"]
    step(job)  # the second submit
    step(job)  # fails again: that was the one resubmit
    job.refresh_from_db()
    assert (job.status, job.error_code, job.resubmits, submits(dashscope)) == (
        "failed",
        "InternalError.Algo",
        1,
        2,
    )
    with override_settings(TRYON={**SETTINGS, "TRANSIENT_RESUBMITS": 0}):
        other = accepted_job(person_bytes, top_garment)
        step(other)
        assert TryOn.objects.get(pk=other.pk).status == "failed"


def test_a_key_gone_before_the_submit_fails_the_job_with_a_stable_code(
    dashscope, person_bytes, monkeypatch, top_garment
):
    """The key was removed (or rotated out) after the try-on was accepted: the job fails, nothing is sent."""
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    job = admit(new_job(person_bytes, top_garment))
    with override_settings(TRYON={**SETTINGS, "OPTIONS": {"base_url": BASE}}):
        assert step(job) is None
    job.refresh_from_db()
    assert (job.status, job.error_code, submits(dashscope)) == ("failed", "ConfigurationError", 0)
    assert "TRYON['OPTIONS']['api_key']" in job.error_message and "DASHSCOPE_API_KEY" in job.error_message
    assert "sk-test-secret-key" not in json.dumps(job.provider_error) + job.error_message


def test_final_submit_error_fails_the_job(dashscope, person_bytes, top_garment):
    dashscope.error("POST", SUBMIT_URL, 401, "InvalidApiKey", "Invalid API-key provided.")
    job = admit(new_job(person_bytes, top_garment))
    assert step(job) is None
    job.refresh_from_db()
    assert (job.status, job.error_code, job.submit_sent_at) == ("failed", "InvalidApiKey", None)
    assert job.provider_error == {
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
        "status": 401,
        "request_id": "req-err",
    }


def test_a_provider_429_hands_the_job_back_without_burning_a_retry(dashscope, person_bytes, top_garment):
    dashscope.error("POST", SUBMIT_URL, 429, "Throttling.RateQuota")
    job = admit(new_job(person_bytes, top_garment))
    with override_settings(TRYON={**SETTINGS, "MAX_RETRIES": 1}):
        for _ in range(3):  # more 429s than retries: still waiting, never failed
            step(job)
            job.refresh_from_db()
            assert job.status == "queued" and job.step_retries == 0 and job.next_check_at > timezone.now()
            TryOn.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
            admit(job)
    assert job.status == "submitting" and not job.remote_id


def test_a_5xx_on_submit_hands_back_and_counts(dashscope, person_bytes, top_garment):
    dashscope.error("POST", SUBMIT_URL, 500, "InternalError")
    job = admit(new_job(person_bytes, top_garment))
    with override_settings(TRYON={**SETTINGS, "MAX_RETRIES": 1}):
        step(job)
        job.refresh_from_db()
        assert (job.status, job.step_retries) == ("queued", 1)
        TryOn.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
        step(admit(job))
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "InternalError")


def test_duplicate_messages_send_once(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    job = admit(new_job(person_bytes, top_garment))
    ticket = job.ticket
    pipeline.advance(job.pk, ticket, schedule_next=False)
    assert pipeline.advance(job.pk, ticket, schedule_next=False) is None  # the same message again: a no-op
    assert admit(job).status == "submitted" and submits(dashscope) == 1


def test_a_finished_task_hands_its_slot_to_the_next_job_in_the_same_step(
    dashscope, person_bytes, top_garment, django_capture_on_commit_callbacks
):
    one_slot = {**SETTINGS, "KEY_POOL": [{"name": "only", "api_key": "sk-test", "max_concurrency": 1}]}
    with override_settings(TRYON=one_slot), mock.patch("django_tryon.scheduling._send") as send:
        first = new_job(person_bytes, top_garment)
        waiting = new_job(person_bytes, top_garment, resolution=1024)
        third = new_job(person_bytes, top_garment, resolution=1280)
        dashscope.submit_ok(task_id="t1")
        step(admit(first))
        assert TryOn.objects.get(pk=waiting.pk).status == "queued"  # the one slot is taken
        dashscope.task("SUCCEEDED", task_id="t1")
        dashscope.result()
        dashscope.submit_ok(task_id="t2")
        send.reset_mock()
        with django_capture_on_commit_callbacks(execute=True):
            step(first)  # sees the end: the waiting job is admitted and submitted from this very step
    waiting.refresh_from_db()
    assert TryOn.objects.get(pk=first.pk).status == "succeeded"
    assert (waiting.status, waiting.remote_id, waiting.lease_until) == ("submitted", "t2", None)
    messages = [(call.args[0].name, call.args[1][0]) for call in send.call_args_list]
    # no broker round trip before the submit: the only message for it is its first poll, later on
    assert messages.count(("django_tryon.advance_tryon", waiting.pk)) == 1
    assert (
        send.call_args_list[messages.index(("django_tryon.advance_tryon", waiting.pk))].args[2]
        > timezone.now()
    )
    assert ("django_tryon.prepare_tryon", third.pk) in messages  # the next in line uploads meanwhile


def test_a_job_admitted_for_an_inline_submit_is_leased_to_its_caller(person_bytes, top_garment):
    job = new_job(person_bytes, top_garment)
    with mock.patch("django_tryon.scheduling._send") as send:
        kept = admission.admit_one_here(admission.lane_of(job))
        assert kept is not None and (kept.pk, kept.status) == (job.pk, "submitting")
        assert kept.lease_until > timezone.now()  # claimed already: the caller runs it without a claim
        TryOn.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - timedelta(seconds=10))
        assert pipeline.tick()["resumed"] == 0  # the tick leaves it to its caller meanwhile
    send.assert_not_called()


TWO_SLOTS = {**SETTINGS, "KEY_POOL": [{"name": "only", "api_key": "sk-test", "max_concurrency": 2}]}


def test_only_the_head_of_the_queue_prepares_its_uploads(
    person_bytes, top_garment, django_capture_on_commit_callbacks
):
    with (
        override_settings(TRYON=TWO_SLOTS),
        mock.patch("django_tryon.scheduling._send"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        jobs = [new_job(person_bytes, top_garment) for _ in range(7)]
        assert admission.admit() == 2
        assert admission.admit() == 0  # no room: asking again prepares nobody further down
    prepared = TryOn.objects.filter(status="queued").exclude(uploads={}).order_by("pk")
    assert list(prepared.values_list("pk", flat=True)) == [job.pk for job in jobs[2:4]]


def test_a_create_into_a_full_lane_skips_the_admission_lock(
    person_bytes, top_garment, django_capture_on_commit_callbacks
):
    def create() -> TryOn:
        with django_capture_on_commit_callbacks(execute=True):  # its dispatch runs after its commit
            job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
        job.refresh_from_db()
        return job

    with override_settings(TRYON=TWO_SLOTS), mock.patch("django_tryon.scheduling._send"):
        busy = [create(), create()]
        assert {job.status for job in busy} == {"submitting"}
        with mock.patch("django_tryon.locks.hold") as hold:
            waiting = create()
        assert not [c for c in hold.call_args_list if c.args[0].startswith("django_tryon.admission")]
        assert waiting.status == "queued" and "pending" in waiting.uploads  # next in line: uploading
        TryOn.objects.filter(pk=busy[0].pk).update(remote_ended_at=timezone.now())  # a slot frees
        assert create().status == "queued"
    assert TryOn.objects.get(pk=waiting.pk).status == "submitting"  # the older job first


def test_a_leased_job_is_left_alone(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    job = admit(new_job(person_bytes, top_garment))
    TryOn.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(seconds=30))
    assert step(job) is None and submits(dashscope) == 0
    TryOn.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )  # its worker died
    step(job)
    assert TryOn.objects.get(pk=job.pk).status == "submitted"


def test_deadline_fails_with_timeout_and_cancels_remotely(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.rsps.post(f"{BASE}/tasks/{dashscope.task_id}/cancel", json={"request_id": "r"})
    job = accepted_job(person_bytes, top_garment)
    TryOn.objects.filter(pk=job.pk).update(submitted_at=timezone.now() - timedelta(seconds=601))
    assert step(job) is None
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "Timeout")
    assert any(c.request.url.endswith("/cancel") for c in dashscope.rsps.calls)


def test_poll_never_overshoots_the_deadline(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    job = accepted_job(person_bytes, top_garment)
    TryOn.objects.filter(pk=job.pk).update(submitted_at=timezone.now() - timedelta(seconds=599))
    assert (step(job) - timezone.now()).total_seconds() <= 1.5


def test_unknown_task_fails(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("UNKNOWN")
    job = accepted_job(person_bytes, top_garment)
    step(job)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "Unknown")


def test_result_that_is_not_an_image_fails(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result(b"<html>oops</html>")
    job = accepted_job(person_bytes, top_garment)
    step(job)
    job.refresh_from_db()
    assert (job.status, job.error_code, job.result_image.name) == ("failed", "ResultUnavailable", "")


def test_transient_poll_errors_back_off_then_fail(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.error("GET", f"{BASE}/tasks/{dashscope.task_id}", 500, "InternalError")
    job = accepted_job(person_bytes, top_garment)
    with (
        override_settings(TRYON={**SETTINGS, "MAX_RETRIES": 2}),
        mock.patch("urllib3.util.retry.Retry.sleep"),
    ):
        waits = [step(job) for _ in range(3)]
    job.refresh_from_db()
    assert waits[0] is not None and waits[1] is not None and waits[2] is None
    assert (job.status, job.error_code) == ("failed", "InternalError")


def test_backoff_is_capped_and_honours_retry_after():
    from django_tryon.exceptions import TryOnRetryableError

    with override_settings(TRYON={**SETTINGS, "RETRY_BACKOFF_MAX": 10, "MAX_RETRIES": 50}):
        assert all(5 <= pipeline.retry_delay(20, TryOnRetryableError()) <= 10 for _ in range(20))
        assert pipeline.retry_delay(0, TryOnRetryableError(retry_after=30)) == 30
        assert pipeline.retry_delay(50, TryOnRetryableError()) is None


# -- unanswered submits are reconciled, never blindly resubmitted -----------------------------------
def task_list(dashscope, *tasks: tuple[str, str]) -> None:
    """The provider's task list (the asynchronous-task page): (task_id, model) pairs created just now."""
    now_ms = int(timezone.now().timestamp() * 1000)
    data = [
        {"task_id": tid, "model_name": model, "status": "RUNNING", "gmt_create": now_ms}
        for tid, model in tasks
    ]
    dashscope.rsps.get(
        re.compile(rf"{re.escape(BASE)}/tasks\?.*"),
        json={"request_id": "l", "total": len(data), "total_page": 1, "data": data},
    )


def test_a_timed_out_submit_is_found_in_the_task_list(dashscope, person_bytes, top_garment):
    from requests.exceptions import ReadTimeout

    dashscope.rsps.post(SUBMIT_URL, body=ReadTimeout("no answer"))
    job = admit(new_job(person_bytes, top_garment))
    step(job)
    job.refresh_from_db()
    assert job.status == "submitting" and job.submit_sent_at is not None and job.step_retries == 1
    task_list(dashscope, ("t-ours", "aitryon"))
    step(job)
    job.refresh_from_db()
    assert (job.status, job.remote_id, job.submit_sent_at) == ("submitted", "t-ours", None)
    assert submits(dashscope) == 1  # adopted, not sent again
    params = next(c.request.url for c in dashscope.rsps.calls if "/tasks?" in c.request.url)
    assert "model_name=aitryon" in params and "start_time=" in params and "end_time=" in params


def test_a_submit_that_never_arrived_is_sent_again(dashscope, person_bytes, top_garment):
    job = admit(new_job(person_bytes, top_garment))
    TryOn.objects.filter(pk=job.pk).update(submit_sent_at=timezone.now())  # a worker died around the POST
    task_list(dashscope)  # the provider has nothing
    dashscope.submit_ok()
    step(job)
    assert TryOn.objects.get(pk=job.pk).status == "submitted" and submits(dashscope) == 1


def test_an_ambiguous_match_is_never_adopted(dashscope, person_bytes, top_garment):
    """Two unknown tasks (or two of our jobs waiting for an answer): adopting one could show a shopper
    someone else's picture, so the job is submitted again instead."""
    job = admit(new_job(person_bytes, top_garment))
    TryOn.objects.filter(pk=job.pk).update(submit_sent_at=timezone.now())
    task_list(dashscope, ("t-a", "aitryon"), ("t-b", "aitryon"))
    dashscope.submit_ok("t-new")
    step(job)
    assert TryOn.objects.get(pk=job.pk).remote_id == "t-new"


def test_tasks_other_jobs_own_are_not_adopted(dashscope, person_bytes, top_garment):
    dashscope.submit_ok("t-owned")
    owner = accepted_job(person_bytes, top_garment)
    job = admit(new_job(person_bytes, top_garment, resolution=1024))
    TryOn.objects.filter(pk=job.pk).update(submit_sent_at=timezone.now())
    task_list(dashscope, (owner.remote_id, "aitryon"))
    dashscope.submit_ok("t-mine")
    step(job)
    assert TryOn.objects.get(pk=job.pk).remote_id == "t-mine"


# -- provider uploads are made once per job ---------------------------------------------------------
def test_uploads_are_reused_by_a_resubmit(dashscope, person_bytes, top_garment):
    policy = {
        "data": {
            "policy": "p",
            "signature": "s",
            "upload_dir": "dashscope-instant/x",
            "upload_host": "https://oss.test",
            "oss_access_key_id": "k",
        }
    }
    dashscope.rsps.get(re.compile(rf"{re.escape(BASE)}/uploads.*"), json=policy)
    dashscope.rsps.post("https://oss.test", status=200)
    dashscope.error("POST", SUBMIT_URL, 503, "ModelUnavailable")
    with override_settings(TRYON={**SETTINGS, "PUBLIC_BASE_URL": ""}):
        job = admit(new_job(person_bytes, top_garment))
        step(job)  # two uploads, then a 503: back to the queue
        TryOn.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
        step(admit(job))
    uploads = [c for c in dashscope.rsps.calls if c.request.url == "https://oss.test/"]
    sent = [json.loads(c.request.body)["input"] for c in dashscope.rsps.calls if c.request.url == SUBMIT_URL]
    assert len(uploads) == 2 and len(sent) == 2 and sent[0] == sent[1]
    assert sent[0]["person_image_url"].startswith("oss://dashscope-instant/x/")


# -- the tick ---------------------------------------------------------------------------------------
def test_the_tick_resumes_overdue_jobs_and_admits_queued_ones(
    person_bytes, top_garment, django_capture_on_commit_callbacks
):
    lost = admit(new_job(person_bytes, top_garment))  # admitted, but its message was lost
    TryOn.objects.filter(pk=lost.pk).update(next_check_at=timezone.now() - timedelta(seconds=10))
    leased = admit(new_job(person_bytes, top_garment, resolution=1024))
    TryOn.objects.filter(pk=leased.pk).update(
        next_check_at=timezone.now() - timedelta(seconds=10),
        lease_until=timezone.now() + timedelta(seconds=30),
    )
    waiting = new_job(person_bytes, top_garment, resolution=1280)
    with (
        mock.patch("django_tryon.scheduling._send") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        counts = pipeline.tick()
    assert counts == {"admitted": 1, "resumed": 1, "expired": 0, "webhooks": 0}
    sent = sorted(call.args[1][0] for call in send.call_args_list)
    assert sent == sorted([lost.pk, waiting.pk])  # the leased job's worker is still at it
    assert TryOn.objects.get(pk=lost.pk).ticket == lost.ticket + 1  # the lost message is now stale
    assert pipeline.tick() == {"admitted": 0, "resumed": 0, "expired": 0, "webhooks": 0}


def test_the_tick_fails_jobs_queued_too_long(person_bytes, top_garment):
    job = new_job(person_bytes, top_garment)
    TryOn.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=2), status="queued")
    with (
        override_settings(TRYON={**SETTINGS, "MAX_QUEUED": None}),
        mock.patch("django_tryon.admission.admit", return_value=0),
    ):
        assert pipeline.tick()["expired"] == 1
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "Timeout")


def test_refresh_polls_now(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    job = accepted_job(person_bytes, top_garment)
    services.refresh(job)
    assert job.status == "running" and job.poll_count == 1
