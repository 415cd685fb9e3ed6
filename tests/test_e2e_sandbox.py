"""End to end for real: Django, a Celery worker process on Redis, the sandbox process over HTTP fetching
our signed input URLs from a running web server, and results saved in storage."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
import requests
from PIL import Image

from django_tryon import admission, services
from django_tryon.models import TryOn

from .conftest import make_garment
from .sandbox_helpers import sandbox_process
from .test_engine import shared
from .test_worker import celery_app, redis_broker, worker_process  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
KEY = "sk-e2e"


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process("--latency", "0.6", "--api-key", KEY, "--seed", "3") as url:
        yield url


@pytest.fixture
def stack(celery_app, live_server, sandbox):  # noqa: F811 - a pytest fixture imported from another test module
    requests.post(f"{sandbox}/_sandbox/reset", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    tryon = {
        "OPTIONS": {"api_key": KEY, "base_url": f"{sandbox}/api/v1", "timeout": [3, 20]},
        "INPUT_URLS": "signed",  # the sandbox downloads every input from the live server
        "PUBLIC_BASE_URL": live_server.url,
        "FIRST_POLL_DELAY": 0.3,
        "POLL_INTERVAL": 0.3,
        "POLL_DEADLINE": 120,
        "RETRY_BACKOFF_MAX": 2,
    }
    with worker_process(celery_app, tryon, pool="threads", concurrency=4) as worker:
        yield sandbox, worker


def wait_all(jobs, worker, timeout=180) -> list[TryOn]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker process died"
        fresh = [TryOn.objects.get(pk=j.pk) for j in jobs]
        if all(j.is_terminal for j in fresh):
            return fresh
        time.sleep(0.3)
    raise AssertionError([j.status for j in fresh])


def stats(sandbox) -> dict:
    return requests.get(
        f"{sandbox}/_sandbox/stats", headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    ).json()


def arm(sandbox, spec: str) -> None:
    assert (
        requests.post(
            f"{sandbox}/_sandbox/faults",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"spec": spec},
            timeout=5,
        ).status_code
        == 200
    )


def test_twenty_tryons_from_created_to_succeeded(stack, product):
    sandbox, worker = stack
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    top = make_garment(product, "top")
    bottom = make_garment(product, "bottom", color=(30, 30, 120))
    jobs = [
        services.create_tryon(person_image=person, top_garment=top, bottom_garment=bottom if i % 2 else None)
        for i in range(20)
    ]
    done = wait_all(jobs, worker)
    assert [j.status for j in done] == ["succeeded"] * 20, [(j.error_code, j.error_message) for j in done]
    for job in done:
        with job.result_image.open("rb") as fh:
            assert Image.open(io.BytesIO(fh.read())).size == (768, 1024)
        assert (
            job.remote_ended_at >= job.remote_scheduled_at >= job.remote_submitted_at and job.image_count == 1
        )
    seen = stats(sandbox)
    assert seen["accepted"] == 20 and seen["downloads"] >= 50  # person + garments, from our signed URLs
    assert seen["max_concurrency_seen"]["aitryon"] <= 5


@pytest.mark.parametrize(
    "spec, status, code",
    [
        ("task=fail:InvalidPerson*1", "failed", "InvalidPerson"),
        ("task=inspection*1", "failed", "DataInspectionFailed"),
        ("submit=retired*1", "failed", "ModelNotAvailable"),
        ("submit=arrearage*1", "failed", "Arrearage"),
        ("submit=503*2", "succeeded", ""),
        ("submit=nonjson*1", "succeeded", ""),
        ("query=500*2", "succeeded", ""),
        ("submit=429*2", "succeeded", ""),
    ],
)
def test_failure_modes_surface_as_job_errors(stack, product, spec, status, code):
    sandbox, worker = stack
    arm(sandbox, spec)
    person = shared("person", "catvton_men_Simon_1.png").read_bytes()
    job = services.create_tryon(person_image=person, top_garment=make_garment(product, "top"))
    (job,) = wait_all([job], worker)
    assert (job.status, job.error_code) == (status, code), job.error_message
    if status == "failed":
        assert job.error_message and job.provider_error["code"] == code


def test_a_photo_without_a_person_fails_like_the_real_service(stack, product):
    from . import images

    _, worker = stack
    job = services.create_tryon(person_image=images.jpeg(480, 800), top_garment=make_garment(product, "top"))
    (job,) = wait_all([job], worker)
    assert (job.status, job.error_code) == ("failed", "InvalidPerson")


def test_a_sixth_job_waits_in_our_queue_and_can_be_canceled_then_retried(stack, product):
    """The dispatcher keeps the provider at its five tasks: a sixth waits here (cancel costs nothing) and
    starts the moment a slot frees."""
    sandbox, worker = stack
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    top = make_garment(product, "top")
    arm(sandbox, "task=slow:4*5")  # five slow tasks fill the model's five slots
    busy = [services.create_tryon(person_image=person, top_garment=top) for _ in range(5)]
    deadline = time.monotonic() + 30
    while TryOn.objects.filter(pk__in=[j.pk for j in busy], status__in=("submitted", "running")).count() < 5:
        assert time.monotonic() < deadline, "the five slow tasks were not all accepted"
        time.sleep(0.1)
    waiting = services.create_tryon(person_image=person, top_garment=top)
    time.sleep(0.5)
    waiting.refresh_from_db()
    assert waiting.status == "queued" and admission.queue_info(waiting)["queue_position"] == 1
    assert services.cancel(waiting) and waiting.status == "canceled"
    assert services.retry(waiting)
    done = wait_all([*busy, waiting], worker)
    assert all(j.status == "succeeded" for j in done)
    assert done[-1].attempts == 2 and done[-1].history[0]["status"] == "canceled"
    assert done[-1].submitted_at >= max(j.remote_ended_at for j in done[:5]) - timedelta(seconds=1)
    assert stats(sandbox)["max_concurrency_seen"]["aitryon"] <= 5


def test_a_retired_model_fails_over_to_its_successor_in_a_real_worker(
    celery_app,  # noqa: F811 - a pytest fixture imported from another test module
    live_server,
    sandbox,
    product,
):
    """aitryon answers 403 Endpoint.AccessDenied (the sandbox's "retired" fault): the job succeeds on the
    image-editing route, with both attempts recorded, and the next job goes straight there. The
    synchronous generations run on their own queue (SYNC_QUEUE), in a worker of their own."""
    requests.post(f"{sandbox}/_sandbox/reset", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    options = {"api_key": KEY, "base_url": f"{sandbox}/api/v1", "timeout": [3, 20]}
    tryon = {
        "BACKENDS": [
            {
                "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
                "OPTIONS": {**options, "model": "aitryon"},
            },
            {
                "BACKEND": "django_tryon.backends.dashscope_image_edit.DashScopeImageEditBackend",
                "OPTIONS": {**options, "timeout": [3, 60]},
            },
        ],
        "INPUT_URLS": "signed",
        "PUBLIC_BASE_URL": live_server.url,
        "FIRST_POLL_DELAY": 0.3,
        "POLL_INTERVAL": 0.3,
        "POLL_DEADLINE": 120,
        "RETRY_BACKOFF_MAX": 2,
        "SYNC_QUEUE": "tryon_sync",
    }
    arm(sandbox, "submit=retired")
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    with (
        worker_process(
            celery_app, tryon, pool="prefork", concurrency=1, queues="tryon_sync", loglevel="info"
        ) as sync,
        worker_process(celery_app, tryon, pool="threads", concurrency=2) as worker,
    ):
        first = services.create_tryon(person_image=person, top_garment=make_garment(product, "top"))
        (first,) = wait_all([first], worker)
        second = services.create_tryon(
            person_image=person, top_garment=make_garment(product, "top"), resolution=1024
        )
        (second,) = wait_all([second], worker)
        assert sync.poll() is None
    received = re.findall(r"Task django_tryon\.advance_tryon\[[^]]+\] received", sync.output)
    assert len(received) == 2, sync.output  # each generation's step, and nothing else, ran on the sync queue
    assert first.status == "succeeded" and first.route == "dashscope-image-edit:qwen-image-edit-plus", (
        first.error_message
    )
    assert [(h["route"], h["outcome"]) for h in first.history] == [("dashscope:aitryon", "ModelNotAvailable")]
    assert second.status == "succeeded" and second.route == first.route and not second.history
    counts = stats(sandbox)
    assert counts["submits"] == 1 and counts["generations"] == 2  # the refused route was not asked again


@pytest.mark.parametrize("backend", ["fashn", "local"])
def test_the_other_backends_in_a_real_worker(celery_app, live_server, sandbox, product, tmp_path, backend):  # noqa: F811 - a pytest fixture imported from another test module
    """FASHN (over HTTP, against the sandbox's FASHN API) and the offline engine, each through a Celery
    worker process like DashScope's and the image-editing models' above."""
    routes = {
        "fashn": {
            "BACKEND": "django_tryon.backends.fashn.FashnBackend",
            "OPTIONS": {"api_key": "fa-sandbox", "base_url": f"{sandbox}/fashn", "timeout": [3, 20]},
        },
        "local": {
            "BACKEND": "django_tryon.backends.local.LocalBackend",
            "OPTIONS": {"work_dir": str(tmp_path)},
        },
    }
    tryon = {
        "BACKENDS": [routes[backend]],
        "FIRST_POLL_DELAY": 0.3,
        "POLL_INTERVAL": 0.3,
        "POLL_DEADLINE": 120,
    }
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    with worker_process(celery_app, tryon, pool="threads", concurrency=2) as worker:
        jobs = [
            services.create_tryon(person_image=person, top_garment=make_garment(product, "top", color=color))
            for color in ((200, 30, 30), (30, 30, 200))
        ]
        done = wait_all(jobs, worker)
    assert [(job.status, job.backend) for job in done] == [("succeeded", backend)] * 2, [
        j.error_message for j in done
    ]
    for job in done:
        with job.result_image.open("rb") as fh:
            assert Image.open(fh).size[0] > 150
