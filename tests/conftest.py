"""Shared fixtures: images, products, garments and a mocked DashScope (``responses``)."""

from __future__ import annotations

import json
import os
import re
import socket
import sys

import pytest
import responses as responses_lib
from django.utils import translation

from django_tryon.conf import tryon_settings

from . import images

BASE = "https://dashscope.test/api/v1"

SUBMIT_URL = f"{BASE}/services/aigc/image2image/image-synthesis"
RESULT_URL = (
    "http://dashscope-result-hz.oss-cn-hangzhou.aliyuncs.com/tryon.jpg?Expires=1751352000&Signature=x"
)

#: The ``engine`` extra installs mediapipe only below Python 3.13 (pyproject.toml: its wheels stop at 3.12):
#: on 3.13 the offline engine, the local backend and the sandbox's rendering are not available.
needs_engine = pytest.mark.skipif(
    sys.version_info >= (3, 13), reason="the engine extra needs Python < 3.13 (mediapipe)"
)


@pytest.fixture(autouse=True)
def _fresh_settings():
    from django.core.cache import cache

    tryon_settings.reload()
    cache.clear()  # per-address throttle counts
    yield
    tryon_settings.reload()
    # A request through LocaleMiddleware (HTTP_ACCEPT_LANGUAGE="zh-hans") leaves its language active in
    # this thread; the next test would start in Chinese.
    translation.deactivate()
    # The funnel's per-thread "inside a request" count: a streaming response a test never closed (a file
    # download) leaves it raised, and the next test's counts would wait for a request that never ends.
    from django_tryon import funnel

    funnel._local.requests = 0


@pytest.fixture
def person_bytes() -> bytes:
    return images.person_photo()


@pytest.fixture
def product(db):
    from tests.testapp.models import Product

    return Product.objects.create(name="Red tee")


def make_garment(product, kind="top", color=(200, 40, 40), active=True):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from django_tryon.models import Garment

    upload = SimpleUploadedFile(
        "client name.jpg", images.garment_photo(color, kind="bottom" if kind == "bottom" else "top")
    )
    return Garment.objects.create(product=product, image=upload, kind=kind, is_active=active)


@pytest.fixture
def top_garment(product):
    return make_garment(product, "top")


@pytest.fixture
def bottom_garment(product):
    return make_garment(product, "bottom", color=(30, 30, 120))


class MockDashScope:
    """``responses`` routes with the JSON shapes of DashScope's OutfitAnyone and asynchronous-task pages."""

    def __init__(self, rsps: responses_lib.RequestsMock) -> None:
        self.rsps = rsps
        self.task_id = "0385dc79-5ff8-4d82-bcb6-5e2f7e3d4a11"

    def submit_ok(self, task_id: str | None = None) -> None:
        self.rsps.post(
            SUBMIT_URL,
            json={
                "output": {"task_id": task_id or self.task_id, "task_status": "PENDING"},
                "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx",
            },
        )

    def error(self, method: str, url: str, status: int, code: str, message: str = "msg") -> None:
        self.rsps.add(
            method, url, status=status, json={"request_id": "req-err", "code": code, "message": message}
        )

    def task(self, status: str, task_id: str | None = None, **output) -> None:
        task_id = task_id or self.task_id
        body = {
            "request_id": "98d46cd0-xxxx",
            "output": {"task_id": task_id, "task_status": status, **output},
        }
        if status == "SUCCEEDED":
            body["output"].setdefault("image_url", RESULT_URL)
            body["output"].setdefault("submit_time", "2025-06-30 14:37:53.838")
            body["output"].setdefault("scheduled_time", "2025-06-30 14:37:53.858")
            body["output"].setdefault("end_time", "2025-06-30 14:38:11.472")
            body["usage"] = {"image_count": 1}
        self.rsps.get(f"{BASE}/tasks/{task_id}", json=body)

    def result(self, content: bytes | None = None) -> None:
        self.rsps.get(
            re.compile(r"http://dashscope-result-hz\.oss-cn-hangzhou\.aliyuncs\.com/tryon\.jpg.*"),
            body=content if content is not None else images.jpeg(480, 800, seed=3),
            content_type="image/jpeg",
        )

    def submitted_json(self, index: int = 0) -> dict:
        calls = [c for c in self.rsps.calls if c.request.url == SUBMIT_URL]
        return json.loads(calls[index].request.body)


@pytest.fixture
def dashscope():
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield MockDashScope(rsps)


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_program(name: str) -> None:
    """Skip locally when a program is not installed; under CI=true its absence is a failure."""
    import shutil

    if shutil.which(name):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required under CI")
    pytest.skip(f"{name} is not installed (required under CI=true)")


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a server is missing; under CI=true a missing server is a failure."""
    if service_available(host, port):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} at {host}:{port} is required under CI")
    pytest.skip(f"{name} not running at {host}:{port} (required under CI=true)")


def admit(job):
    """Let the dispatcher admit ``job`` (and any other queued job of its route and model); returns it fresh."""
    from django_tryon import admission

    admission.admit(admission.lane_of(job))
    job.refresh_from_db()
    return job


def step(job):
    """Run ``job``'s due step here (no worker); returns when its next step is due."""
    from django_tryon import pipeline

    job.refresh_from_db()
    return pipeline.advance(job.pk, job.ticket, schedule_next=False)
