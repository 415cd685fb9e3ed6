"""The pipeline through ``services`` against a mocked provider."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from django_tryon import pipeline, services
from django_tryon.backends.dashscope import DashScopeBackend
from django_tryon.exceptions import TryOnConfigurationError, TryOnValidationError
from django_tryon.models import Garment, TryOn

from . import images
from .conftest import admit, make_garment, step

pytestmark = pytest.mark.django_db


def files_on_disk() -> set[str]:
    root = default_storage.location
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def test_create_stores_inputs_under_random_names(
    person_bytes, top_garment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.create_tryon(person_image=person_bytes, top_garment=top_garment)
    assert job.status == "queued" and len(callbacks) == 1
    assert job.person_image.name.startswith("tryon/persons/") and job.top_image.name.startswith("tryon/sent/")
    assert "client" not in job.top_image.name and not job.bottom_image
    assert (job.backend, job.model_name, job.resolution, job.restore_face) == (
        "dashscope",
        "aitryon",
        -1,
        True,
    )
    assert job.product == top_garment.product and job.attempts == 1


def test_product_uses_its_active_garments(person_bytes, product):
    make_garment(product, "top", active=False)
    top = make_garment(product, "top")
    bottom = make_garment(product, "bottom")
    job = services.create_tryon(person_image=person_bytes, product=product, dispatch_now=False)
    assert (job.top_garment, job.bottom_garment) == (top, bottom)


def test_one_piece_goes_alone_in_the_top_slot(person_bytes, product):
    dress = make_garment(product, "one_piece")
    bottom = make_garment(product, "bottom")
    job = services.create_tryon(person_image=person_bytes, top_garment=dress, dispatch_now=False)
    assert job.top_image and not job.bottom_image
    with pytest.raises(TryOnValidationError) as info:
        services.create_tryon(person_image=person_bytes, top_garment=dress, bottom_garment=bottom)
    assert info.value.code == "InvalidGarment"


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({}, "InvalidGarment"),
        ({"resolution": 720}, "InvalidParameter"),
        ({"restore_face": "yes"}, "InvalidParameter"),
    ],
)
def test_bad_requests_store_nothing(person_bytes, top_garment, kwargs, code):
    before = files_on_disk()
    if kwargs:
        kwargs["top_garment"] = top_garment
    with pytest.raises(TryOnValidationError) as info:
        services.create_tryon(person_image=person_bytes, **kwargs)
    assert info.value.code == code
    assert files_on_disk() == before and TryOn.objects.count() == 0


def test_bottom_garment_in_top_slot_is_refused(person_bytes, bottom_garment):
    with pytest.raises(TryOnValidationError, match="cannot be sent as the top"):
        services.create_tryon(person_image=person_bytes, top_garment=bottom_garment)


def test_bad_person_image_stores_nothing(top_garment):
    before = files_on_disk()
    with pytest.raises(TryOnValidationError) as info:
        services.create_tryon(person_image=images.jpeg(100, 400), top_garment=top_garment)
    assert info.value.code == "InvalidInputLength" and info.value.field == "person_image"
    assert files_on_disk() == before


def test_a_failed_database_write_removes_the_files(person_bytes, top_garment):
    before = files_on_disk()
    with mock.patch.object(TryOn, "save", side_effect=RuntimeError("db down")), pytest.raises(RuntimeError):
        services.create_tryon(person_image=person_bytes, top_garment=top_garment)
    assert files_on_disk() == before


def test_garment_images_are_validated_on_save(product):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(TryOnValidationError):
        Garment.objects.create(product=product, image=SimpleUploadedFile("g.jpg", b"not an image" * 1000))
    webp = images.encode(images.noise_image(300, 300), "WEBP", quality=90)
    garment = Garment.objects.create(product=product, image=SimpleUploadedFile("g.webp", webp))
    assert garment.image.name.endswith(".jpg")


# -- cancel, retry, delete ------------------------------------------------------------------------
def accepted_job(person_bytes, top_garment) -> TryOn:
    """A job admitted and submitted to the (mocked) provider."""
    job = admit(services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False))
    step(job)
    job.refresh_from_db()
    return job


def test_cancel_queued_job_without_the_provider(person_bytes, top_garment):
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    assert services.cancel(job) and job.status == "canceled" and job.error_code == "Canceled"
    assert admit(job).status == "canceled"


def test_cancel_submitted_job_at_the_provider(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.rsps.post(
        f"https://dashscope.test/api/v1/tasks/{dashscope.task_id}/cancel", json={"request_id": "r"}
    )
    job = accepted_job(person_bytes, top_garment)
    assert services.cancel(job) and job.status == "canceled"


def test_cancel_while_submitting_cancels_the_remote_task(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    cancel_url = f"https://dashscope.test/api/v1/tasks/{dashscope.task_id}/cancel"
    dashscope.rsps.post(cancel_url, json={"request_id": "r"})
    job = admit(services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False))
    real_submit = DashScopeBackend.submit

    def cancel_meanwhile(self, request):  # the shopper cancels while the POST is out
        result = real_submit(self, request)
        assert services.cancel(TryOn.objects.get(pk=job.pk))
        return result

    with mock.patch.object(DashScopeBackend, "submit", cancel_meanwhile):
        step(job)
    assert TryOn.objects.get(pk=job.pk).status == "canceled"
    assert any(c.request.url == cancel_url for c in dashscope.rsps.calls)


def test_running_job_cannot_be_canceled(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    job = accepted_job(person_bytes, top_garment)
    step(job)
    job.refresh_from_db()
    assert job.status == "running" and not services.cancel(job)


def test_retry_keeps_history_and_is_admitted(
    dashscope, person_bytes, top_garment, django_capture_on_commit_callbacks
):
    dashscope.submit_ok()
    dashscope.task("FAILED", code="InvalidPerson", message="no person")
    job = accepted_job(person_bytes, top_garment)
    step(job)
    job.refresh_from_db()
    with (
        mock.patch("django_tryon.scheduling._send") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.retry(job)
    job.refresh_from_db()
    assert job.status == "submitting" and job.attempts == 2 and not job.remote_id and not job.error_code
    assert (
        job.history[0]["remote_id"] == dashscope.task_id and job.history[0]["error_code"] == "InvalidPerson"
    )
    assert send.call_args.args[1] == (job.pk, job.ticket)
    assert not services.retry(job)  # only failed or canceled jobs are retried


def test_delete_removes_every_file(dashscope, person_bytes, top_garment, bottom_garment):
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    job = admit(
        services.create_tryon(
            person_image=person_bytes,
            top_garment=top_garment,
            bottom_garment=bottom_garment,
            dispatch_now=False,
        )
    )
    step(job)
    step(job)
    job.refresh_from_db()
    names = [job.person_image.name, job.top_image.name, job.bottom_image.name, job.result_image.name]
    assert all(default_storage.exists(n) for n in names)
    services.delete(job)
    assert not any(default_storage.exists(n) for n in names) and not TryOn.objects.exists()
    assert top_garment.image and default_storage.exists(top_garment.image.name)


# -- input URLs ----------------------------------------------------------------------------------
def test_input_url_prefers_the_storage_url_when_the_storage_presigns(person_bytes, top_garment):
    """The storage's own settings decide (storage.presigns_urls), not what its URL happens to contain."""
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    backend = mock.Mock()
    backend.capabilities.prefers_upload = False
    presigned = "https://b.s3.amazonaws.com/x.jpg?X-Amz-Signature=abc"
    with mock.patch("django_tryon.pipeline.storage_absolute_url", return_value=presigned):
        with mock.patch("django_tryon.pipeline.presigns_urls", return_value=True):
            assert pipeline.input_url(job.person_image, backend) == presigned
        # a FileSystemStorage behind a CDN whose URL looks signed is still no presigning storage
        assert pipeline.input_url(job.person_image, backend).startswith("https://shop.test/tryon/files/")
    with (
        override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "INPUT_URLS": "storage"}),
        mock.patch("django_tryon.pipeline.storage_absolute_url", return_value="https://cdn.shop.test/x.jpg"),
    ):
        assert (
            pipeline.input_url(job.person_image, backend) == "https://cdn.shop.test/x.jpg"
        )  # the shop's word


def test_input_url_falls_back_to_provider_upload(person_bytes, top_garment):
    job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    backend = mock.Mock()
    backend.capabilities.supports_upload = True
    backend.capabilities.prefers_upload = False
    backend.upload.return_value = "oss://dashscope-instant/x/p.jpg"
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "PUBLIC_BASE_URL": ""}):
        assert pipeline.input_url(job.person_image, backend) == "oss://dashscope-instant/x/p.jpg"
    content, _, content_type = backend.upload.call_args.args
    assert content == person_bytes and content_type == "image/jpeg"
    backend.capabilities.supports_upload = False
    with (
        override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "PUBLIC_BASE_URL": ""}),
        pytest.raises(TryOnConfigurationError, match="PUBLIC_BASE_URL"),
    ):
        pipeline.input_url(job.person_image, backend)


def test_owner_key_is_a_hash_of_the_session_key():
    from django_tryon.owners import owner_key_for_session

    key = owner_key_for_session("abc123")
    assert len(key) == 64 and "abc123" not in key and owner_key_for_session("") == ""


def test_personal_limits_apply_to_shoppers_not_to_the_merchants_own_runs(person_bytes, top_garment):
    from django_tryon.exceptions import TryOnQuotaExceeded

    settings = {
        "OPTIONS": {"api_key": "k", "base_url": "https://dashscope.test/api/v1"},
        "DAILY_LIMIT_PER_SESSION": 1,
    }
    with override_settings(TRYON=settings):
        for resolution in (-1, 1024):  # no owner: tryon_run, the admin
            services.create_tryon(
                person_image=person_bytes, top_garment=top_garment, resolution=resolution, dispatch_now=False
            )
        services.create_tryon(
            person_image=person_bytes, top_garment=top_garment, owner_key="k1", dispatch_now=False
        )
        with pytest.raises(TryOnQuotaExceeded):
            services.create_tryon(
                person_image=person_bytes,
                top_garment=top_garment,
                owner_key="k1",
                resolution=1024,
                dispatch_now=False,
            )


def test_retention_purge(person_bytes, top_garment):
    from django_tryon.models import PersonPhoto

    old_job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    fresh_job = services.create_tryon(
        person_image=person_bytes, top_garment=top_garment, resolution=1024, dispatch_now=False
    )
    running = services.create_tryon(
        person_image=person_bytes, top_garment=top_garment, resolution=1280, dispatch_now=False
    )
    long_ago = timezone.now() - timedelta(days=31)
    TryOn.objects.filter(pk__in=[old_job.pk, fresh_job.pk]).update(status="succeeded")
    TryOn.objects.filter(pk__in=[old_job.pk, running.pk]).update(created_at=long_ago)
    TryOn.objects.filter(pk=running.pk).update(status="running")
    photo = services.save_photo(image=person_bytes, owner_key="k", consent=True)
    PersonPhoto.objects.filter(pk=photo.pk).update(created_at=timezone.now() - timedelta(days=91))
    kept_photo = services.save_photo(image=person_bytes, owner_key="k2", consent=True)
    names = [old_job.person_image.name, old_job.top_image.name, photo.image.name]
    assert services.purge() == {"tryons": 1, "images": 2, "photos": 1}
    assert not any(default_storage.exists(n) for n in names)
    old_job.refresh_from_db()
    assert old_job.status == "succeeded" and not old_job.person_image  # the record stays for the figures
    assert TryOn.objects.get(pk=fresh_job.pk).person_image and TryOn.objects.get(pk=running.pk).person_image
    assert list(PersonPhoto.objects.all()) == [kept_photo]
    assert services.purge() == {"tryons": 0, "images": 0, "photos": 0}
    out = io.StringIO()
    call_command("tryon_purge", stdout=out)
    assert out.getvalue().strip() == "tryons: 0, images: 0, photos: 0"
