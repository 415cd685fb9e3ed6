"""Integration: a real Celery worker process on Redis and on RabbitMQ, real HTTP to a DashScope stand-in that
downloads our signed input URLs from a live Django server, and a shared database and storage."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.test import override_settings
from PIL import Image

from django_tryon import services
from django_tryon.models import TryOn

from .conftest import make_garment, needs_engine, require_service
from .fake_dashscope import FakeDashScope

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
REDIS_URL = os.environ.get("DJANGO_TRYON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("DJANGO_TRYON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parent.parent


def require_broker(name: str, url: str) -> None:
    parts = urlsplit(url)
    port = parts.port or {"redis": 6379, "amqp": 5672}[parts.scheme]
    require_service(name, parts.hostname or "127.0.0.1", port)


@pytest.fixture(scope="module")
def redis_broker():
    """Redis (required under CI=true); this run's keys (tests/settings.py) are deleted before and after."""
    require_broker("Redis", REDIS_URL)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]

    def delete_this_runs_keys() -> None:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)

    delete_this_runs_keys()
    yield REDIS_URL
    delete_this_runs_keys()


@pytest.fixture(scope="module")
def amqp_broker():
    """RabbitMQ (required under CI=true); this run's queue and exchange (tests/settings.py) are deleted
    after."""
    require_broker("RabbitMQ", AMQP_URL)
    yield AMQP_URL
    from kombu import Connection

    with Connection(AMQP_URL) as conn:
        conn.default_channel.queue_delete(settings.CELERY_TASK_DEFAULT_QUEUE)
        conn.default_channel.exchange_delete(settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.fixture
def broker(request) -> str:
    """The URL of Redis, or of the broker a test names with
    ``@pytest.mark.parametrize("broker", [...], indirect=True)``."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'redis')}_broker")


_apps: dict[str, Celery] = {}


def app_on(broker_url: str) -> Celery:
    """A Celery app configured like the worker's (tests/celery_app.py) that sends to ``broker_url``, made
    current (shared tasks send through the current app). One app per broker: an app keeps its connections."""
    if broker_url not in _apps:
        # The worker's CELERY_* settings with CELERY_BROKER_URL replaced: Celery 5.3 ignores a broker given
        # as app.conf.broker_url = ... or Celery(broker=...) when the settings also name one.
        config = {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}
        app = _apps[broker_url] = Celery("django_tryon_tests", set_as_current=False)
        config["CELERY_BROKER_URL"] = broker_url
        app.config_from_object(SimpleNamespace(**config), namespace="CELERY")
    app = _apps[broker_url]
    app.set_current()
    app.set_default()
    return app


@pytest.fixture
def celery_app(redis_broker):
    return app_on(redis_broker)


_worker_numbers = itertools.count(1)


@contextlib.contextmanager
def worker_process(
    celery_app,
    tryon: dict,
    pool: str = "solo",
    concurrency: int = 1,
    queues: str = "",
    loglevel: str = "warning",
):
    """A Celery worker process configured like this test process (same database, storage, TRYON).

    Its output is on ``worker.output`` once the block ends."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "DJANGO_TRYON_WORKER_DB": connection.settings_dict["NAME"],
        "DJANGO_TRYON_TEST_MEDIA": str(settings.MEDIA_ROOT),
        "DJANGO_TRYON_TEST_TRYON_JSON": json.dumps(tryon),
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            loglevel,
            # A node name of its own: on RabbitMQ a worker's remote-control queue (<name>.celery.pidbox) is
            # exclusive, and a second "celery@<host>" on the broker (another test run, a demo) cannot start.
            "-n",
            f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{next(_worker_numbers)}@%h",
            *(["-Q", queues] if queues else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
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
def stack(broker, live_server):
    """The DashScope stand-in over HTTP, downloading our signed URLs from a live server, and a worker."""
    with FakeDashScope(throttle_first=1) as fake:
        tryon = {
            "OPTIONS": {"api_key": fake.api_key, "base_url": f"{fake.url}/api/v1", "timeout": [2, 10]},
            "PUBLIC_BASE_URL": live_server.url,
            "FIRST_POLL_DELAY": 0.2,
            "POLL_INTERVAL": 0.3,
            "POLL_DEADLINE": 60,
        }
        with worker_process(app_on(broker), tryon) as worker:
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


@pytest.mark.parametrize("broker", ["redis", pytest.param("amqp", marks=pytest.mark.rabbitmq)], indirect=True)
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


@needs_engine
def test_a_real_worker_renders_offline_with_the_local_backend(celery_app, tmp_path, product):
    from .test_engine import shared

    person = shared("person", "catvton_men_Yifeng_0.png").read_bytes()
    tryon = {"BACKEND": "django_tryon.backends.local.LocalBackend", "OPTIONS": {"work_dir": str(tmp_path)}}
    with worker_process(celery_app, tryon) as worker:
        job = services.create_tryon(person_image=person, top_garment=make_garment(product, "top"))
        job = wait_for(job, {"succeeded", "failed"}, worker)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.backend == "local" and job.result_image and list(tmp_path.iterdir()) == []
