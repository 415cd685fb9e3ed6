"""FashnBackend: FASHN's wire format with ``responses``, then the sandbox's FASHN-compatible API over
real HTTP with FASHN's own SDK as a client, a job through the pipeline, and a FASHN outage that opens the
breaker and sends jobs to the next route."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from django.test import override_settings
from PIL import Image

from django_tryon import routing, services
from django_tryon.backends.base import RemoteState, TryOnInput
from django_tryon.backends.dashscope_image_edit import data_uri
from django_tryon.backends.fashn import FashnBackend
from django_tryon.exceptions import TryOnProviderRejected, TryOnRetryableError, TryOnValidationError

from .conftest import make_garment
from .sandbox_helpers import sandbox_process

API = "https://api.fashn.test"


def fashn(**options) -> FashnBackend:
    return FashnBackend(api_key="fa-test", base_url=API, **options)


def request(**kwargs) -> TryOnInput:
    return TryOnInput(person_image_url=data_uri(b"p", "image/jpeg"), **kwargs)


# -- the wire format ---------------------------------------------------------------------------------
def test_run_sends_one_garment_with_its_category(dashscope):
    dashscope.rsps.post(f"{API}/v1/run", json={"id": "pred-1", "error": None})
    result = fashn(mode="quality", seed=3).submit(
        request(top_garment_url="data:image/jpeg;base64,dA==", top_is_one_piece=True)
    )
    sent = json.loads(dashscope.rsps.calls[0].request.body)
    assert result.remote_id == "pred-1" and sent["model_name"] == "tryon-v1.6"
    assert (
        sent["inputs"]["category"] == "one-pieces"
        and sent["inputs"]["mode"] == "quality"
        and sent["inputs"]["seed"] == 3
    )
    assert sent["inputs"]["garment_photo_type"] == "flat-lay" and "moderation_level" not in sent["inputs"]
    assert dashscope.rsps.calls[0].request.headers["Authorization"] == "Bearer fa-test"


def test_a_top_and_a_bottom_need_another_route():
    with pytest.raises(TryOnValidationError):
        fashn().submit(request(top_garment_url="data:x;base64,eA==", bottom_garment_url="data:x;base64,eA=="))
    assert fashn().capabilities.max_garments == 1 and fashn().capabilities.prefers_upload


@pytest.mark.parametrize(
    "status, output, error, state, code",
    [
        ("in_queue", None, None, RemoteState.PENDING, ""),
        ("processing", None, None, RemoteState.RUNNING, ""),
        ("completed", ["https://cdn.fashn.test/o.png"], None, RemoteState.SUCCEEDED, ""),
        ("failed", None, {"name": "PoseError", "message": "no pose"}, RemoteState.FAILED, "InvalidPerson"),
        (
            "failed",
            None,
            {"name": "ContentModerationError", "message": "x"},
            RemoteState.FAILED,
            "DataInspectionFailed",
        ),
        ("failed", None, {"name": "PipelineError", "message": "x"}, RemoteState.FAILED, "InternalError"),
        ("time_out", None, None, RemoteState.FAILED, "Timeout"),
    ],
)
def test_statuses_and_runtime_errors(dashscope, status, output, error, state, code):
    dashscope.rsps.get(
        f"{API}/v1/status/p", json={"id": "p", "status": status, "output": output, "error": error}
    )
    polled = fashn().poll("p")
    assert (polled.state, polled.error_code) == (state, code)
    assert fashn().is_transient_failure(code) == (code == "InternalError")


@pytest.mark.parametrize(
    "http, name, error, code",
    [
        (429, "OutOfCredits", TryOnProviderRejected, "OutOfCredits"),
        (429, "ConcurrencyLimitExceeded", TryOnRetryableError, "Throttling"),
        (401, "UnauthorizedAccess", TryOnProviderRejected, "InvalidApiKey"),
        (500, "InternalServerError", TryOnRetryableError, "ProviderUnavailable"),
        (400, "BadRequest", TryOnProviderRejected, "InvalidParameter"),
    ],
)
def test_api_errors(dashscope, http, name, error, code):
    dashscope.rsps.post(
        f"{API}/v1/run", status=http, json={"error": name, "message": "m"}, headers={"Retry-After": "3"}
    )
    with pytest.raises(error) as info:
        fashn().submit(request(top_garment_url="data:x;base64,eA=="))
    assert info.value.code == code and routing.is_refusal(code) == (
        name in ("OutOfCredits", "UnauthorizedAccess")
    )


def test_base64_outputs_are_decoded():
    assert fashn().download("data:image/png;base64," + base64.b64encode(b"png!").decode()) == b"png!"


# -- the sandbox ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process(
        "--latency", "0.3", "--api-key", "sk-dash", "--fashn-key", "fa-sbx", "--seed", "2"
    ) as url:
        yield url


def photo(name: str) -> bytes:
    from .test_engine import shared

    return shared(*name.split("/")).read_bytes()


def test_fashns_own_sdk_is_a_client_of_the_sandbox(sandbox):
    from fashn import Fashn

    client = Fashn(api_key="fa-sbx", base_url=f"{sandbox}/fashn", max_retries=0)
    run = client.predictions.run(
        model_name="tryon-v1.6",
        inputs={
            "model_image": data_uri(photo("person/fitdit_model_1.jpg"), "image/jpeg"),
            "garment_image": data_uri(photo("top/idm_cloth_09164_00.jpg"), "image/jpeg"),
            "category": "tops",
        },
    )
    assert run.id and run.error is None
    status = client.predictions.status(run.id)
    while status.status in ("starting", "in_queue", "processing"):
        status = client.predictions.status(run.id)
    assert status.status == "completed" and status.output and status.error is None
    assert Image.open(io.BytesIO(requests.get(status.output[0], timeout=10).content)).format == "PNG"
    with pytest.raises(Exception) as info:  # the SDK raises its own AuthenticationError
        Fashn(api_key="wrong", base_url=f"{sandbox}/fashn", max_retries=0).predictions.status(run.id)
    assert getattr(info.value, "status_code", None) == 401


def test_the_sandbox_answers_in_fashns_words(sandbox):
    headers = {"Authorization": "Bearer fa-sbx"}
    bad = requests.post(
        f"{sandbox}/fashn/v1/run", json={"model_name": "nope", "inputs": {}}, headers=headers, timeout=5
    )
    assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
    assert (
        requests.get(f"{sandbox}/fashn/v1/status/none", headers=headers, timeout=5).json()["error"]
        == "NotFound"
    )
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"spec": "fashn=outofcredits*1"},
        headers={"Authorization": "Bearer sk-dash"},
        timeout=5,
    )
    broke = requests.post(
        f"{sandbox}/fashn/v1/run", json={"model_name": "tryon-v1.6", "inputs": {}}, headers=headers, timeout=5
    )
    assert broke.status_code == 429 and broke.json()["error"] == "OutOfCredits"


@pytest.mark.django_db
def test_a_job_on_fashn_through_the_pipeline(sandbox, product):
    settings = {
        "BACKEND": "django_tryon.backends.fashn.FashnBackend",
        "OPTIONS": {"api_key": "fa-sbx", "base_url": f"{sandbox}/fashn"},
        "POLL_INTERVAL": 0.2,
    }
    with override_settings(TRYON=settings):
        job = services.create_tryon(
            person_image=photo("person/fitdit_model_1.jpg"),
            keep_own=True,
            top_garment=make_garment(product, "top"),
            dispatch_now=False,
        )
        services.run_now(job, max_wait=60)
    job.refresh_from_db()
    assert (job.status, job.backend, job.model_name) == ("succeeded", "fashn", "tryon-v1.6"), (
        job.error_message
    )
    assert job.poll_count >= 1 and job.result_image
    # "keep my own clothes" on a one-garment route: FASHN leaves the other half as it is, nothing extra is sent
    assert (
        not job.bottom_image
        and job.history[-1]["note"] == "own clothes not sent: this route takes one garment"
    )


@pytest.mark.django_db
def test_a_fashn_outage_opens_the_breaker_and_jobs_go_to_the_next_route(sandbox, product):
    chain = {
        "BACKENDS": [
            {
                "BACKEND": "django_tryon.backends.fashn.FashnBackend",
                "OPTIONS": {"api_key": "fa-sbx", "base_url": f"{sandbox}/fashn"},
            },
            {
                "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
                "OPTIONS": {"api_key": "sk-dash", "base_url": f"{sandbox}/api/v1"},
            },
        ],
        "BREAKER_THRESHOLD": 2,
        "POLL_INTERVAL": 0.2,
        "FIRST_POLL_DELAY": 0.1,
    }
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"spec": "fashn=500"},
        headers={"Authorization": "Bearer sk-dash"},
        timeout=5,
    )
    try:
        with override_settings(TRYON=chain):
            job = services.create_tryon(
                person_image=photo("person/fitdit_model_1.jpg"),
                top_garment=make_garment(product, "top"),
                dispatch_now=False,
            )
            assert job.route == "fashn:tryon-v1.6"
            with override_settings(TRYON={**chain, "RETRY_BACKOFF_MAX": 0.2}):
                services.run_now(job, max_wait=60)  # two 500s open the breaker: the job moves on
            assert not routing.usable(routing.routes()[0])
    finally:
        requests.post(
            f"{sandbox}/_sandbox/faults",
            json={"spec": ""},
            headers={"Authorization": "Bearer sk-dash"},
            timeout=5,
        )
    job.refresh_from_db()
    assert job.status == "succeeded" and job.route == "dashscope:aitryon", job.error_message
    assert [h["outcome"] for h in job.history] == ["BreakerOpen"]
