"""DashScopeImageEditBackend (the Qwen image-editing successors of aitryon): the wire format with
``responses``, then the sandbox's synchronous endpoint over real HTTP, the vendor's SDK as its client, and
a job through the pipeline."""

from __future__ import annotations

import io
import json

import pytest
import requests
from django.test import override_settings
from PIL import Image

from django_tryon import services
from django_tryon.backends.base import RemoteState, TryOnInput
from django_tryon.backends.dashscope_image_edit import (
    GENERATION_PATH,
    INSTRUCTIONS,
    DashScopeImageEditBackend,
    data_uri,
    instruction,
    output_size,
)
from django_tryon.exceptions import TryOnConfigurationError, TryOnModelUnavailable, TryOnProviderRejected

from . import images
from .conftest import BASE, admit, make_garment, step
from .sandbox_helpers import sandbox_process

URL = f"{BASE}{GENERATION_PATH}"
RESULT = "https://dashscope-result.oss.test/edit.png?Expires=1&Signature=x"


def backend(**options) -> DashScopeImageEditBackend:
    return DashScopeImageEditBackend(api_key="sk-test-secret-key", base_url=BASE, **options)


def answer(url: str = RESULT) -> dict:
    return {
        "request_id": "req-1",
        "usage": {"image_count": 1, "width": 576, "height": 1024},
        "output": {
            "choices": [
                {"finish_reason": "stop", "message": {"role": "assistant", "content": [{"image": url}]}}
            ]
        },
    }


def person_uri(width: int = 480, height: int = 800) -> str:
    return data_uri(images.person_photo(width, height), "image/jpeg")


# -- the instruction and the request -------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("slots", [("top",), ("bottom",), ("one_piece",), ("top", "bottom")])
def test_every_garment_combination_has_a_careful_instruction(language, slots):
    text, negative = instruction(slots, language)
    keep = {
        "en": ("face", "pose", "background", "colour", "pattern"),
        "zh": ("脸", "姿势", "背景", "颜色", "图案"),
    }
    assert all(word in text for word in keep[language]) and negative
    if slots in (("top",), ("bottom",)):  # what is not replaced stays as it is
        assert INSTRUCTIONS[language]["keep_lower" if slots == ("top",) else "keep_upper"] in text


def test_the_request_follows_the_documented_shape(dashscope):
    dashscope.rsps.post(URL, json=answer())
    edit = backend(language="en", seed=7)
    person, top = person_uri(), data_uri(images.garment_photo(), "image/jpeg")
    result = edit.submit(TryOnInput(person_image_url=person, top_garment_url=top, resolution=1024))
    sent = json.loads(dashscope.rsps.calls[0].request.body)
    content = sent["input"]["messages"][0]["content"]
    assert sent["model"] == "qwen-image-edit-plus" and sent["input"]["messages"][0]["role"] == "user"
    assert (
        content[0] == {"image": person}
        and content[1] == {"image": top}
        and "Image 2 is a top" in content[2]["text"]
    )
    assert sent["parameters"] == {
        "n": 1,
        "watermark": False,
        "prompt_extend": False,
        "size": "576*1024",
        "seed": 7,
        "negative_prompt": INSTRUCTIONS["en"]["negative"],
    }
    headers = dashscope.rsps.calls[0].request.headers
    assert headers["Authorization"] == "Bearer sk-test-secret-key" and "X-DashScope-Async" not in headers
    assert result.finished.state is RemoteState.SUCCEEDED and result.finished.result_url == RESULT
    assert result.request_id == "req-1" and result.finished.image_count == 1


def test_size_keeps_the_person_photos_aspect_within_the_models_range():
    assert output_size(None, 1280) == (720, 1280)
    assert output_size(images.person_photo(480, 800), -1) == (512, 853)  # raised to 512 px
    assert output_size(images.jpeg(3000, 4000), -1) == (1536, 2048)  # lowered to 2048 px
    assert output_size(images.jpeg(1000, 1500), -1) == (1000, 1500)


def test_inputs_are_data_uris_never_uploads():
    edit = backend()
    assert (
        edit.capabilities.prefers_upload
        and edit.upload(b"abc", "p.jpg", "image/jpeg") == "data:image/jpeg;base64,YWJj"
    )
    assert edit.capabilities.longest_request == 120.0  # the step's lease covers one generation


@pytest.mark.parametrize(
    "status, code, error",
    [
        (403, "Endpoint.AccessDenied", TryOnModelUnavailable),
        (400, "DataInspectionFailed", TryOnProviderRejected),
    ],
)
def test_errors_map_into_the_same_tree(dashscope, status, code, error):
    dashscope.error("POST", URL, status, code)
    with pytest.raises(error) as info:
        backend().submit(TryOnInput(person_image_url=person_uri(), top_garment_url=person_uri()))
    assert info.value.code in (code, "ModelNotAvailable")


def test_only_the_image_editing_models():
    with pytest.raises(TryOnConfigurationError, match="image-editing"):
        backend(model="aitryon")
    assert backend(model="qwen-image-2.0").model == "qwen-image-2.0"


# -- the sandbox over real HTTP ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process("--latency", "0.2", "--api-key", "sk-edit", "--seed", "5") as url:
        yield url


def test_our_backend_against_the_sandbox_draws_the_garment_on_the_person(sandbox):
    from .test_engine import shared

    edit = DashScopeImageEditBackend(
        api_key="sk-edit", base_url=f"{sandbox}/api/v1", debug_api_requests=False
    )
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    top = shared("top", "idm_cloth_09164_00.jpg").read_bytes()
    result = edit.submit(
        TryOnInput(
            person_image_url=edit.upload(person, "p.jpg", "image/jpeg"),
            top_garment_url=edit.upload(top, "t.jpg", "image/jpeg"),
            resolution=1024,
        )
    )
    picture = Image.open(io.BytesIO(edit.download(result.finished.result_url)))
    assert picture.size == (576, 1024) and picture.format == "PNG"
    assert (
        Image.open(io.BytesIO(person)).convert("RGB").resize((576, 1024)).tobytes()
        != picture.convert("RGB").tobytes()
    )


def test_the_vendors_sdk_is_a_client_of_the_sandbox(sandbox):
    import dashscope
    from dashscope import MultiModalConversation

    from .test_engine import shared

    person = data_uri(shared("person", "fitdit_model_1.jpg").read_bytes(), "image/jpeg")

    dashscope.base_http_api_url = f"{sandbox}/api/v1"
    try:
        answer = MultiModalConversation.call(
            api_key="sk-edit",
            model="qwen-image-edit-plus",
            n=1,
            watermark=False,
            size="576*1024",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"image": person},
                        {"image": data_uri(images.garment_photo(), "image/jpeg")},
                        {"text": instruction(("top",), "zh")[0]},
                    ],
                }
            ],
        )
    finally:
        dashscope.base_http_api_url = "https://dashscope.aliyuncs.com/api/v1"
    assert answer.status_code == 200, answer
    url = answer.output.choices[0].message.content[0]["image"]
    assert requests.get(url, timeout=10).status_code == 200


def test_the_sandbox_checks_requests_like_the_service(sandbox):
    headers = {"Authorization": "Bearer sk-edit"}

    def post(body: dict) -> requests.Response:
        return requests.post(f"{sandbox}/api/v1{GENERATION_PATH}", json=body, headers=headers, timeout=10)

    assert (
        post({"model": "aitryon", "input": {}}).json()["message"] == "Model not exist."
    )  # code InvalidParameter
    assert (
        post({"model": "qwen-image-edit-plus", "input": {"messages": []}}).json()["code"]
        == "InvalidParameter"
    )
    four = [{"image": person_uri()}] * 4 + [{"text": "x"}]
    assert (
        post(
            {"model": "qwen-image-edit-plus", "input": {"messages": [{"role": "user", "content": four}]}}
        ).status_code
        == 400
    )
    tiny = [{"image": data_uri(images.jpeg(100, 100), "image/jpeg")}, {"text": "x"}]
    refused = post(
        {"model": "qwen-image-edit-plus", "input": {"messages": [{"role": "user", "content": tiny}]}}
    )
    assert refused.json()["code"] == "InvalidInputLength"
    assert (
        requests.post(f"{sandbox}/api/v1{GENERATION_PATH}", json={}, timeout=10).json()["message"]
        == "No API-key provided."
    )


# -- a job through the pipeline --------------------------------------------------------------------
@pytest.mark.django_db
def test_a_job_on_the_successor_model_is_stored_in_one_step(sandbox, product):
    from .test_engine import shared

    settings = {
        "BACKEND": "django_tryon.backends.dashscope_image_edit.DashScopeImageEditBackend",
        "OPTIONS": {"api_key": "sk-edit", "base_url": f"{sandbox}/api/v1"},
    }
    with override_settings(TRYON=settings):
        job = admit(
            services.create_tryon(
                person_image=shared("person", "fitdit_model_1.jpg").read_bytes(),
                top_garment=make_garment(product, "top"),
                dispatch_now=False,
            )
        )
        assert step(job) is None  # submitted, finished and stored in one step: nothing left to poll
    job.refresh_from_db()
    assert (job.status, job.backend, job.model_name, job.poll_count) == (
        "succeeded",
        "dashscope-image-edit",
        "qwen-image-edit-plus",
        0,
    )
    assert job.remote_ended_at is not None and job.result_image.name.endswith(".png")
    assert not job.uploads and job.image_count == 1  # data URIs: nothing uploaded, nothing to reuse


# -- synchronous steps: their own queue and a hard time limit ----------------------------------------
EDIT_ROUTE = {
    "BACKEND": "django_tryon.backends.dashscope_image_edit.DashScopeImageEditBackend",
    "OPTIONS": {"api_key": "sk-edit", "base_url": BASE, "timeout": [3, 40]},
}


def test_synchronous_steps_go_to_their_queue_with_a_hard_time_limit():
    from django_tryon.scheduling import step_options

    dashscope_route = {
        "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
        "OPTIONS": {"api_key": "sk-x", "base_url": BASE},
    }
    with override_settings(
        TRYON={"BACKENDS": [dashscope_route, EDIT_ROUTE], "SYNC_QUEUE": "tryon_sync", "SYNC_TIME_MARGIN": 20}
    ):
        assert step_options("dashscope:aitryon") == {}  # an async task's steps are short: the default queue
        assert step_options("dashscope-image-edit:qwen-image-edit-plus") == {
            "queue": "tryon_sync",
            "time_limit": 60.0,
            "soft_time_limit": 50.0,
        }  # the read timeout (40 s) + 20
    with override_settings(TRYON={"BACKENDS": [EDIT_ROUTE]}):  # no SYNC_QUEUE: the limit alone
        assert step_options("dashscope-image-edit") == {"time_limit": 70.0, "soft_time_limit": 55.0}


@pytest.mark.django_db
def test_the_scheduled_step_of_a_synchronous_job_carries_the_options(
    product, monkeypatch, django_capture_on_commit_callbacks
):
    from django_tryon import tasks

    sent = []
    monkeypatch.setattr(
        tasks.advance_tryon, "apply_async", lambda args, **options: sent.append((args, options))
    )
    with (
        override_settings(TRYON={"BACKENDS": [EDIT_ROUTE], "SYNC_QUEUE": "tryon_sync"}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job = services.create_tryon(
            person_image=images.person_photo(), top_garment=make_garment(product, "top")
        )
    job.refresh_from_db()
    assert job.status == "submitting"
    assert sent == [
        ((job.pk, job.ticket), {"queue": "tryon_sync", "time_limit": 70.0, "soft_time_limit": 55.0})
    ]


@pytest.mark.django_db
def test_a_call_past_its_soft_time_limit_is_retried_not_lost(product, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    def hang(self, request):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(DashScopeImageEditBackend, "submit", hang)
    with override_settings(TRYON={"BACKENDS": [EDIT_ROUTE]}):
        job = admit(
            services.create_tryon(
                person_image=images.person_photo(),
                top_garment=make_garment(product, "top"),
                dispatch_now=False,
            )
        )
        assert step(job) is not None  # a next try is due
    job.refresh_from_db()
    assert (job.status, job.step_retries, job.lease_until) == ("submitting", 1, None)
