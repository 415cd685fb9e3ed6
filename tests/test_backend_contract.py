"""The contract every backend passes (docs/backends/adding.rst): the same checks for DashScope (aitryon),
the Qwen image-editing models, FASHN and the in-process engine, over real HTTP against the sandbox."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from django_tryon.backends.base import BaseTryOnBackend, RemoteState, TryOnInput
from django_tryon.exceptions import TryOnConfigurationError, TryOnError

from .sandbox_helpers import sandbox_process
from .test_engine import shared

SECRET = "sk-contract-secret"


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process(
        "--latency", "0.3", "--api-key", SECRET, "--fashn-key", SECRET, "--seed", "9"
    ) as url:
        yield url


def build(kind: str, sandbox: str, tmp_path, key: str = SECRET) -> BaseTryOnBackend:
    from django_tryon.backends.dashscope import DashScopeBackend
    from django_tryon.backends.dashscope_image_edit import DashScopeImageEditBackend
    from django_tryon.backends.fashn import FashnBackend
    from django_tryon.backends.local import LocalBackend

    if kind == "local":
        return LocalBackend(work_dir=str(tmp_path))
    cls, base = {
        "dashscope": (DashScopeBackend, f"{sandbox}/api/v1"),
        "image-edit": (DashScopeImageEditBackend, f"{sandbox}/api/v1"),
        "fashn": (FashnBackend, f"{sandbox}/fashn"),
    }[kind]
    return cls(api_key=key, base_url=base, debug_api_requests=False)


KINDS = ["dashscope", "image-edit", "fashn", "local"]


def inputs(backend: BaseTryOnBackend, sandbox: str) -> TryOnInput:
    """Inputs the way the pipeline hands them over: the backend's own upload when it prefers one."""
    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    top = shared("top", "idm_cloth_09164_00.jpg").read_bytes()
    if backend.capabilities.supports_upload:
        return TryOnInput(
            person_image_url=backend.upload(person, "p.jpg", "image/jpeg"),
            top_garment_url=backend.upload(top, "t.jpg", "image/jpeg"),
            resolution=1024,
        )
    raise AssertionError("every bundled backend can take the bytes")


def run(backend: BaseTryOnBackend, request: TryOnInput, timeout: float = 60):
    result = backend.submit(request)
    state = result.finished
    deadline = time.monotonic() + timeout
    while state is None or state.state in (RemoteState.PENDING, RemoteState.RUNNING):
        assert time.monotonic() < deadline, "no result in time"
        time.sleep(0.2)
        state = backend.poll(result.remote_id)
    return result, state


@pytest.mark.parametrize("kind", KINDS)
def test_it_describes_itself(kind, sandbox, tmp_path):
    backend = build(kind, sandbox, tmp_path)
    caps = backend.capabilities
    assert backend.name and backend.model and caps.max_concurrency >= 1 and caps.submit_rate > 0
    assert caps.typical_duration >= 0 and caps.max_garments in (1, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_options_are_configuration_errors(kind, sandbox, tmp_path):
    backend = build(kind, sandbox, tmp_path)
    with pytest.raises(TryOnConfigurationError, match="Invalid option 'nope'"):
        type(backend)(**{**backend.options, "nope": 1})


@pytest.mark.parametrize("kind", KINDS)
def test_a_try_on_reaches_a_picture(kind, sandbox, tmp_path):
    backend = build(kind, sandbox, tmp_path)
    result, state = run(backend, inputs(backend, sandbox))
    assert result.remote_id and state.state is RemoteState.SUCCEEDED and state.result_url, state
    picture = Image.open(io.BytesIO(backend.download(state.result_url)))
    assert picture.width > 150 and picture.height > 150 and state.image_count >= 1


@pytest.mark.parametrize("kind", ["dashscope", "image-edit", "fashn"])
def test_a_refused_key_is_a_refusal_of_the_route_and_never_shown(kind, sandbox, tmp_path):
    from django_tryon import routing

    backend = build(kind, sandbox, tmp_path, key="sk-wrong-but-secret")
    with pytest.raises(TryOnError) as info:
        backend.submit(inputs(backend, sandbox))
    assert info.value.code == "InvalidApiKey" and routing.is_refusal(info.value.code)
    assert "sk-wrong-but-secret" not in f"{info.value} {info.value!r} {backend!r} {info.value.response_body}"


@pytest.mark.parametrize("kind", ["dashscope", "image-edit", "fashn"])
def test_an_unreadable_input_fails_with_a_stable_code(kind, sandbox, tmp_path):
    backend = build(kind, sandbox, tmp_path)
    request = inputs(backend, sandbox)
    broken = backend.upload(b"not an image at all" * 400, "x.jpg", "image/jpeg")
    try:
        _, state = run(backend, TryOnInput(person_image_url=broken, top_garment_url=request.top_garment_url))
        code = state.error_code
    except TryOnError as err:
        code = err.code
    assert code in ("InvalidURL", "InvalidInputLength", "InvalidParameter")
