"""Integration: a real Celery worker process on Redis, real HTTP to a DashScope stand-in that downloads
our signed input URLs from a live Django server, and a shared database and storage."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from PIL import Image

from django_tryon import services
from django_tryon.models import TryOn

from .conftest import make_garment, require_service
from .fake_dashscope import FakeDashScope

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
REDIS_URL = os.environ.get("DJANGO_TRYON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def redis_broker():
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture
def celery_app(redis_broker):
    from tests.celery_app import app

    assert app.conf.broker_url  # load the Django settings first (older Celery loads them lazily) ...
    app.conf.broker_url = redis_broker  # ... then point this process at Redis
    app.set_current()
    app.set_default()
    return app


@contextlib.contextmanager
def worker_process(celery_app, tryon: dict, pool: str = "solo", concurrency: int = 1, queues: str = "",
                   loglevel: str = "warning"):
    """A Celery worker process configured like this test process (same database, storage, TRYON).

    Its output is on ``worker.output`` once the block ends."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CELERY_BROKER_URL": REDIS_URL,
        "DJANGO_TRYON_WORKER_DB": connection.settings_dict["NAME"],
        "DJANGO_TRYON_TEST_MEDIA": str(settings.MEDIA_ROOT),
        "DJANGO_TRYON_TEST_TRYON_JSON": json.dumps(tryon),
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", f"--pool={pool}", f"--concurrency={concurrency}",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", loglevel,
         *(["-Q", queues] if queues else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        with override_settings(TRYON={**settings.TRYON, **tryon}):
            yield worker
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0].decode(errors="replace")
        worker.output = output
        print(output)  # shown by pytest when a test fails


@pytest.fixture
def stack(celery_app, live_server):
    """The DashScope stand-in over HTTP, downloading our signed URLs from a live server, and a worker."""
    with FakeDashScope(throttle_first=1) as fake:
        tryon = {
            "OPTIONS": {"api_key": fake.api_key, "base_url": f"{fake.url}/api/v1", "timeout": [2, 10]},
            "PUBLIC_BASE_URL": live_server.url,
            "FIRST_POLL_DELAY": 0.2,
            "POLL_INTERVAL": 0.3,
            "POLL_DEADLINE": 60,
        }
        with worker_process(celery_app, tryon) as worker:
            yield fake, worker


def wait_for(job: TryOn, statuses: set[str], worker: subprocess.Popen, timeout: float = 60) -> TryOn:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker process died (its output is printed below)"
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job stuck in {job.status!r}")


def test_a_real_worker_takes_a_job_from_queued_to_succeeded(stack, person_bytes, product):
    fake, worker = stack
    top = make_garment(product, "top")
    job = services.create_tryon(person_image=person_bytes, top_garment=top)
    assert TryOn.objects.get(pk=job.pk).status in ("queued", "submitting")
    job = wait_for(job, {"succeeded", "failed"}, worker)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    # The first submit got a 429: the worker retried with backoff; the provider saw two submits, one task.
    assert fake.submits == 2 and len(fake.tasks) == 1 and job.remote_id in fake.tasks
    with job.result_image.open("rb") as fh:
        stored = fh.read()
    assert stored == fake.results[job.remote_id]
    assert Image.open(io.BytesIO(stored)).size == Image.open(io.BytesIO(person_bytes)).size
    assert job.poll_count >= 1 and job.finished_at and job.remote_submitted_at


def test_a_provider_failure_reaches_the_job_with_its_code(stack, person_bytes, product):
    fake, worker = stack
    fake.fail_next = ("InvalidPerson", "The input image has no human body or multi human bodies.")
    job = services.create_tryon(person_image=person_bytes, top_garment=make_garment(product, "top"))
    job = wait_for(job, {"succeeded", "failed"}, worker)
    assert (job.status, job.error_code) == ("failed", "InvalidPerson")
    assert "human body" in job.error_message and not job.result_image


def test_a_real_worker_renders_offline_with_the_local_backend(celery_app, tmp_path, product):
    from .test_engine import shared

    person = shared("person", "catvton_men_Yifeng_0.png").read_bytes()
    tryon = {"BACKEND": "django_tryon.backends.local.LocalBackend", "OPTIONS": {"work_dir": str(tmp_path)}}
    with worker_process(celery_app, tryon) as worker:
        job = services.create_tryon(person_image=person, top_garment=make_garment(product, "top"))
        job = wait_for(job, {"succeeded", "failed"}, worker)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.backend == "local" and job.result_image and list(tmp_path.iterdir()) == []
