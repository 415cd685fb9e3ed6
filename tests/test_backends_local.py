"""LocalBackend: the offline engine through the core pipeline (no HTTP, no provider)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from django_tryon import services
from django_tryon.backends import get_backend
from django_tryon.backends.base import RemoteState, TryOnInput

from . import images
from .conftest import admit, step
from .test_engine import shared

pytestmark = pytest.mark.django_db


@pytest.fixture
def local(tmp_path):
    settings = {"BACKEND": "django_tryon.backends.local.LocalBackend", "OPTIONS": {"work_dir": str(tmp_path)}}
    with override_settings(TRYON=settings):
        yield tmp_path


def run(job):
    admit(job)
    due = step(job)  # rendered during the submit: poll at once
    assert due is not None and (due - timezone.now()).total_seconds() <= 0.06
    assert step(job) is None
    job.refresh_from_db()
    return job


def test_a_job_completes_offline_and_leaves_no_work_files(local):
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    top = shared("top", "idm_cloth_09164_00.jpg").read_bytes()
    job = services.create_tryon(person_image=person, top_image=top, dispatch_now=False)
    assert (job.backend, job.model_name) == ("local", "engine")
    job = run(job)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    with job.result_image.open("rb") as fh:
        from PIL import Image

        assert Image.open(fh).size == (768, 1024)
    assert job.image_count == 1 and job.remote_ended_at >= job.remote_submitted_at
    assert list(local.iterdir()) == []  # inputs and result removed once used


def test_an_unusable_photo_fails_like_the_provider(local):
    job = services.create_tryon(
        person_image=images.jpeg(480, 800), top_image=images.garment_photo(), dispatch_now=False
    )
    job = run(job)
    assert (job.status, job.error_code) == ("failed", "InvalidPerson") and job.error_message
    assert list(local.iterdir()) == []


def test_backend_contract(local):
    backend = get_backend()
    assert backend.capabilities.prefers_upload and backend.capabilities.price_per_image == 0
    assert backend.poll("nope").state is RemoteState.UNKNOWN
    url = backend.upload(images.person_photo(), "p.jpg", "image/jpeg")
    assert url.startswith("local://") and (local / url[len("local://") :]).stat().st_mode & 0o077 == 0
    with pytest.raises(Exception) as info:
        backend.download("local://../etc/passwd")
    assert getattr(info.value, "code", "") == "InvalidURL"
    assert backend.cancel("x") is False
    result = backend.submit(
        TryOnInput(
            person_image_url=url,
            top_garment_url=backend.upload(images.garment_photo(), "t.jpg", "image/jpeg"),
        )
    )
    assert backend.poll(result.remote_id).state is RemoteState.FAILED  # a drawn figure is not a person
