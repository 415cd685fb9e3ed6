"""The second pass (DashScope's aitryon-refiner): asked for per job or by TRYON["REFINE"], paid from the
site budget, and never worse than the first picture."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from django_tryon import services
from django_tryon.exceptions import TryOnValidationError
from django_tryon.models import TryOn, TryOnAttempt

from . import images
from .conftest import BASE, SUBMIT_URL, admit, make_garment, step

pytestmark = pytest.mark.django_db
SETTINGS = {
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": BASE},
    "PUBLIC_BASE_URL": "https://shop.test",
    "PRICES": {"aitryon-refiner": "0.30"},
}
REFINED = "http://dashscope-result-hz.oss-cn-hangzhou.aliyuncs.com/refined.jpg?Expires=1&Signature=y"


@pytest.fixture(autouse=True)
def _settings():
    with override_settings(TRYON=SETTINGS):
        yield


def refine_job(person_bytes, top_garment, **kwargs) -> TryOn:
    return services.create_tryon(
        person_image=person_bytes,
        top_garment=top_garment,
        refine=True,
        gender="woman",
        dispatch_now=False,
        **kwargs,
    )


def test_the_second_pass_takes_the_first_picture_and_the_same_inputs(dashscope, person_bytes, top_garment):
    coarse, refined = images.jpeg(480, 800, seed=21), images.jpeg(480, 800, seed=22)
    dashscope.submit_ok("t-tryon")
    dashscope.task("SUCCEEDED", task_id="t-tryon")
    dashscope.result(coarse)
    job = admit(refine_job(person_bytes, top_garment))
    step(job)  # submit the try-on
    step(job)  # its picture is in: the second pass is queued and admitted
    job.refresh_from_db()
    assert (job.status, job.stage, job.model_name) == ("submitting", "refine", "aitryon-refiner")
    assert job.coarse_image and not job.result_image and job.history[-1]["note"] == "first pass; refining"
    dashscope.submit_ok("t-refine")
    dashscope.task("SUCCEEDED", task_id="t-refine", image_url=REFINED)
    dashscope.rsps.get(re.compile(r".*/refined\.jpg.*"), body=refined, content_type="image/jpeg")
    step(job)  # submit the refiner
    sent = dashscope.submitted_json(1)
    assert sent["model"] == "aitryon-refiner" and sent["parameters"] == {"gender": "woman"}
    assert set(sent["input"]) == {"person_image_url", "top_garment_url", "coarse_image_url"}
    assert all(
        url.startswith("https://shop.test/tryon/files/") for url in sent["input"].values()
    )  # signed, ours
    step(job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.stage == "refine"
    with job.result_image.open("rb") as fh:
        assert fh.read() == refined
    with job.coarse_image.open("rb") as fh:
        assert fh.read() == coarse  # kept beside it for review
    prices = sorted(str(p) for p in TryOnAttempt.objects.values_list("price", flat=True))
    assert prices == ["0.2000", "0.3000"]  # the refiner is a paid attempt of its own


def test_a_failed_second_pass_keeps_the_first_picture(dashscope, person_bytes, top_garment):
    coarse = images.jpeg(480, 800, seed=23)
    dashscope.submit_ok("t-tryon")
    dashscope.task("SUCCEEDED", task_id="t-tryon")
    dashscope.result(coarse)
    job = admit(refine_job(person_bytes, top_garment))
    step(job)
    step(job)
    dashscope.error(
        "POST",
        SUBMIT_URL,
        400,
        "InvalidParameter",
        "The size of person image and coarse_image are not the same.",
    )
    step(job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.error_code == ""
    with job.result_image.open("rb") as fh:
        assert fh.read() == coarse
    assert (
        job.history[-1]["note"] == "second pass failed"
        and job.history[-1]["error_code"] == "InvalidParameter"
    )


def test_without_budget_the_first_picture_is_the_result(dashscope, person_bytes, top_garment):
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    with override_settings(TRYON={**SETTINGS, "DAILY_BUDGET_IMAGES": 1}):
        job = admit(refine_job(person_bytes, top_garment))
        step(job)
        step(job)
    job.refresh_from_db()
    assert (
        job.status == "succeeded" and job.result_image and job.history[-1]["error_code"] == "budget_exceeded"
    )


@pytest.mark.parametrize(
    "kwargs, field", [({"gender": ""}, "gender"), ({"gender": "woman", "resolution": 1024}, "refine")]
)
def test_the_second_pass_needs_gender_and_the_original_size(person_bytes, top_garment, kwargs, field):
    with pytest.raises(TryOnValidationError) as info:
        services.create_tryon(person_image=person_bytes, top_garment=top_garment, refine=True, **kwargs)
    assert info.value.field == field


def test_the_rest_api_takes_refine_and_gender(top_garment, client):
    from unittest import mock

    from django.core.files.uploadedfile import SimpleUploadedFile

    with mock.patch("django_tryon.scheduling._send"):
        response = client.post(
            "/tryon/api/tryons/",
            {
                "person_image": SimpleUploadedFile("me.jpg", images.person_photo(), "image/jpeg"),
                "consent": "true",
                "product": top_garment.product.pk,
                "refine": "true",
                "gender": "man",
            },
        )
    assert (
        response.status_code == 202
        and response.json()["refine"] is True
        and response.json()["stage"] == "tryon"
    )
    assert TryOn.objects.get().gender == "man"


def test_the_second_pass_against_the_sandbox(product):
    """Real HTTP: the sandbox's refiner takes the engine's first picture (same size as the photo)."""
    from .conftest import make_garment
    from .sandbox_helpers import sandbox_process
    from .test_engine import shared

    with sandbox_process("--latency", "0.4", "--api-key", "sk-refine") as sandbox:
        settings = {
            "OPTIONS": {"api_key": "sk-refine", "base_url": f"{sandbox}/api/v1"},
            "PUBLIC_BASE_URL": "",
            "POLL_INTERVAL": 0.2,
        }
        with override_settings(TRYON=settings):
            job = services.create_tryon(
                person_image=shared("person", "fitdit_model_1.jpg").read_bytes(),
                top_garment=make_garment(product, "top"),
                refine=True,
                gender="woman",
                dispatch_now=False,
            )
            services.run_now(job, max_wait=60)  # the try-on, then the second pass
    job.refresh_from_db()
    assert (job.status, job.stage, job.model_name) == ("succeeded", "refine", "aitryon-refiner"), job.history
    assert job.coarse_image and job.result_image and job.coarse_image.name != job.result_image.name


# -- keep my own clothes -------------------------------------------------------------------------------
def test_keep_own_clothes_cuts_them_from_the_photo_once_per_saved_photo(product, dashscope):
    """A top only: the shopper's own trousers go in the bottom slot (the engine's parsing here: the mocked
    provider has no parsing model answer, so the engine takes over)."""
    from django_tryon.models import PersonPhoto

    from .conftest import make_garment
    from .test_engine import shared

    photo = services.save_photo(
        image=shared("person", "fitdit_model_1.jpg").read_bytes(), owner_key="me", consent=True
    )
    dashscope.error(
        "POST", f"{BASE}/services/vision/image-process/process", 403, "Endpoint.AccessDenied"
    )  # retired
    dashscope.submit_ok()
    job = admit(
        services.create_tryon(
            person_photo=photo,
            top_garment=make_garment(product, "top"),
            keep_own=True,
            owner_key="me",
            dispatch_now=False,
        )
    )
    assert job.keep_own and not job.bottom_image
    step(job)
    job.refresh_from_db()
    sent = dashscope.submitted_json()["input"]
    assert job.bottom_image and "bottom_garment_url" in sent and job.history[-1]["note"] == "own clothes kept"
    assert (
        job.keep_own
    )  # the shopper's choice stays on the record (and in the API); the history says what came of it
    photo.refresh_from_db()
    cached = photo.own_clothes["lower"]
    again = admit(
        services.create_tryon(
            person_photo=photo,
            top_garment=make_garment(product, "top", color=(0, 0, 200)),
            keep_own=True,
            owner_key="me",
            dispatch_now=False,
        )
    )
    dashscope.submit_ok("t-2")
    step(again)
    assert PersonPhoto.objects.get(pk=photo.pk).own_clothes["lower"] == cached  # parsed once
    services.delete_photo(photo)
    from django.core.files.storage import default_storage

    assert not default_storage.exists(cached)


def test_keep_own_needs_a_single_garment(product, person_bytes):
    from .conftest import make_garment

    both = services.create_tryon(
        person_image=person_bytes,
        top_garment=make_garment(product, "top"),
        bottom_garment=make_garment(product, "bottom"),
        keep_own=True,
        dispatch_now=False,
    )
    dress = services.create_tryon(
        person_image=person_bytes,
        top_garment=make_garment(product, "one_piece"),
        keep_own=True,
        dispatch_now=False,
    )
    assert not both.keep_own and not dress.keep_own


def test_the_sandbox_parsing_model_finds_the_trousers():
    from django_tryon.backends.dashscope import PARSER, DashScopeBackend

    from .sandbox_helpers import sandbox_process
    from .test_engine import shared

    with sandbox_process("--api-key", "sk-parse") as sandbox:
        parser = DashScopeBackend(
            api_key="sk-parse", base_url=f"{sandbox}/api/v1", model=PARSER, debug_api_requests=False
        )
        url = parser.upload(shared("person", "fitdit_model_1.jpg").read_bytes(), "p.jpg", "image/jpeg")
        crop = parser.parse_clothes(url, "lower")
    import io

    from PIL import Image

    assert crop and Image.open(io.BytesIO(crop)).size[1] > 150


# -- refining a finished picture afterwards (the admin's action) -------------------------------------
def finished_job(dashscope, person_bytes, top_garment, picture: bytes) -> TryOn:
    dashscope.submit_ok("t-first")
    dashscope.task("SUCCEEDED", task_id="t-first")
    dashscope.result(picture)
    job = admit(
        services.create_tryon(
            person_image=person_bytes, top_garment=top_garment, owner_key="shopper", dispatch_now=False
        )
    )
    step(job)  # submit
    step(job)  # poll: done, stored
    job.refresh_from_db()
    assert job.status == "succeeded"
    return job


def test_a_finished_picture_can_be_refined_afterwards(dashscope, person_bytes, top_garment):
    picture, refined = images.jpeg(480, 800, seed=31), images.jpeg(480, 800, seed=32)
    job = finished_job(dashscope, person_bytes, top_garment, picture)
    with pytest.raises(TryOnValidationError):
        services.refine_result(job, gender="")
    new = admit(services.refine_result(job, gender="man"))
    assert (new.status, new.stage, new.model_name, new.owner_key) == (
        "submitting",
        "refine",
        "aitryon-refiner",
        "shopper",
    )
    dashscope.submit_ok("t-refine")
    dashscope.task("SUCCEEDED", task_id="t-refine", image_url=REFINED)
    dashscope.rsps.get(re.compile(r".*/refined\.jpg.*"), body=refined, content_type="image/jpeg")
    step(new)
    sent = dashscope.submitted_json(1)
    assert sent["model"] == "aitryon-refiner" and sent["parameters"] == {"gender": "man"}
    assert set(sent["input"]) == {"person_image_url", "top_garment_url", "coarse_image_url"}
    step(new)
    new.refresh_from_db()
    assert new.status == "succeeded" and new.history[0]["source"] == str(job.public_id)
    with new.result_image.open("rb") as fh:
        assert fh.read() == refined
    with new.coarse_image.open("rb") as fh:
        assert fh.read() == picture  # a copy: deleting either job leaves the other whole
    assert new.coarse_image.name != job.result_image.name
    attempt = TryOnAttempt.objects.get(job=new)
    assert (str(attempt.price), attempt.owner_key) == ("0.3000", "")  # the merchant's, from the site budget
    with pytest.raises(TryOnValidationError):
        services.refine_result(new, gender="man")  # already refined


def test_the_admin_asks_woman_or_man_then_refines(
    dashscope, person_bytes, top_garment, client, django_user_model
):
    from unittest import mock

    job = finished_job(dashscope, person_bytes, top_garment, images.jpeg(480, 800, seed=33))
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    url = "/admin/django_tryon/tryon/"
    with mock.patch("django_tryon.scheduling._send"):
        page = client.post(url, {"action": "refine_selected", "_selected_action": [job.pk]})
        assert page.status_code == 200 and f'name="gender-{job.pk}"' in page.content.decode()
        assert TryOn.objects.count() == 1  # nothing started before the answer
        done = client.post(
            url,
            {
                "action": "refine_selected",
                "_selected_action": [job.pk],
                "apply": "1",
                f"gender-{job.pk}": "woman",
            },
            follow=True,
        )
    assert "1 picture is being refined." in done.content.decode()
    new = TryOn.objects.exclude(pk=job.pk).get()
    assert (new.stage, new.gender, new.refine) == ("refine", "woman", True)


def test_the_site_default_refines_only_where_it_can(person_bytes, top_garment):
    """TRYON["REFINE"] does not turn a request without a gender (or at another size) into a 400."""
    with override_settings(TRYON={**SETTINGS, "REFINE": True}):
        plain = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
        sized = services.create_tryon(
            person_image=person_bytes,
            top_garment=top_garment,
            gender="man",
            resolution=1024,
            dispatch_now=False,
        )
        refined = services.create_tryon(
            person_image=person_bytes, top_garment=top_garment, gender="man", dispatch_now=False
        )
        explicit = services.create_tryon(
            person_image=person_bytes,
            top_garment=top_garment,
            refine=False,
            gender="woman",
            dispatch_now=False,
        )
        trousers = services.create_tryon(
            person_image=person_bytes,
            bottom_garment=make_garment(top_garment.product, "bottom"),
            gender="man",
            dispatch_now=False,
        )
        with pytest.raises(TryOnValidationError) as info:  # asked for explicitly: said plainly
            services.create_tryon(
                person_image=person_bytes,
                bottom_garment=make_garment(top_garment.product, "bottom"),
                refine=True,
                gender="man",
                dispatch_now=False,
            )
    assert [job.refine for job in (plain, sized, refined, explicit, trousers)] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert info.value.field == "refine"  # the refiner needs a top (or a one-piece)
