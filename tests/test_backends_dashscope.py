"""Wire format of the DashScope backend, against the JSON shapes of the provider's pages (``responses``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
import requests
import responses
from django.test import override_settings

from django_tryon.backends import get_backend
from django_tryon.backends.base import RemoteState, TryOnInput
from django_tryon.backends.dashscope import DashScopeBackend, classify_error, parse_time
from django_tryon.exceptions import (
    TryOnConfigurationError,
    TryOnModelUnavailable,
    TryOnProviderRejected,
    TryOnRetryableError,
)

from .conftest import BASE, RESULT_URL, SUBMIT_URL

KEY = "sk-test-secret-key"
REQUEST = TryOnInput(
    person_image_url="https://shop.test/p.jpg",
    top_garment_url="https://shop.test/t.jpg",
    bottom_garment_url="https://shop.test/b.jpg",
)


@pytest.fixture
def backend() -> DashScopeBackend:
    return get_backend()


# -- configuration ---------------------------------------------------------------------------------
def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    with override_settings(TRYON={"OPTIONS": {}}):
        backend = get_backend()
    assert backend.api_key == "sk-env" and backend.base_url == "https://dashscope.aliyuncs.com/api/v1"


def test_missing_key_names_the_setting_when_first_needed(monkeypatch):
    """Like anymail at first send: the backend builds (checks, prices, the admin work), its first call refuses."""
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with override_settings(TRYON={"OPTIONS": {}}):
        backend = get_backend()
        assert backend.capabilities.max_concurrency == 5
        with pytest.raises(TryOnConfigurationError) as info:
            backend.poll("task-1")
    assert "TRYON['OPTIONS']['api_key']" in str(info.value) and "DASHSCOPE_API_KEY" in str(info.value)
    with pytest.raises(TryOnConfigurationError):
        backend.check_credentials()
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-later")  # read on use, not when the backend was built
    backend.check_credentials()


def test_unknown_option_is_refused():
    with (
        override_settings(TRYON={"OPTIONS": {"api_key": "k", "modle": "aitryon"}}),
        pytest.raises(TryOnConfigurationError, match="Invalid option 'modle' for DashScopeBackend"),
    ):
        get_backend()


def test_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:8765/api/v1/")
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}}):
        assert get_backend().base_url == "http://127.0.0.1:8765/api/v1"


def test_capabilities_per_model(backend):
    assert backend.capabilities.max_concurrency == 5 and backend.capabilities.submit_rate == 10
    assert backend.capabilities.typical_duration == 15
    plus = get_backend(model="aitryon-plus")
    assert str(plus.capabilities.price_per_image) == "0.50" and plus.capabilities.typical_duration > 15


def test_repr_hides_the_key(backend):
    assert KEY not in repr(backend)


# -- submit ----------------------------------------------------------------------------------------
@responses.activate
def test_submit_sends_the_documented_request(backend):
    responses.post(
        SUBMIT_URL, json={"output": {"task_id": "t-1", "task_status": "PENDING"}, "request_id": "r-1"}
    )
    result = backend.submit(REQUEST)
    assert (result.remote_id, result.request_id) == ("t-1", "r-1")
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["X-DashScope-Async"] == "enable"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"].startswith("django-tryon/") and sent.headers["User-Agent"].endswith(
        "-dashscope"
    )
    assert "X-DashScope-OssResourceResolve" not in sent.headers
    assert json.loads(sent.body) == {
        "model": "aitryon",
        "input": {
            "person_image_url": "https://shop.test/p.jpg",
            "top_garment_url": "https://shop.test/t.jpg",
            "bottom_garment_url": "https://shop.test/b.jpg",
        },
        "parameters": {"resolution": -1, "restore_face": True},
    }


@responses.activate
def test_one_piece_leaves_the_bottom_out_and_model_is_configurable():
    responses.post(SUBMIT_URL, json={"output": {"task_id": "t", "task_status": "PENDING"}, "request_id": "r"})
    get_backend(model="aitryon-plus").submit(
        TryOnInput(
            person_image_url="https://x/p.jpg",
            top_garment_url="https://x/dress.jpg",
            resolution=1280,
            restore_face=False,
        )
    )
    body = json.loads(responses.calls[0].request.body)
    assert body["model"] == "aitryon-plus" and "bottom_garment_url" not in body["input"]
    assert body["parameters"] == {"resolution": 1280, "restore_face": False}


@responses.activate
def test_oss_inputs_add_the_resolve_header(backend):
    responses.post(SUBMIT_URL, json={"output": {"task_id": "t", "task_status": "PENDING"}, "request_id": "r"})
    backend.submit(
        TryOnInput(person_image_url="oss://dashscope-instant/a/p.jpg", top_garment_url="https://x/t.jpg")
    )
    assert responses.calls[0].request.headers["X-DashScope-OssResourceResolve"] == "enable"


# -- poll ------------------------------------------------------------------------------------------
@responses.activate
def test_poll_succeeded_document_example(backend):
    responses.get(
        f"{BASE}/tasks/15991992",
        json={
            "request_id": "98d46cd0",
            "output": {
                "task_id": "15991992",
                "task_status": "SUCCEEDED",
                "submit_time": "2025-06-30 14:37:53.838",
                "scheduled_time": "2025-06-30 14:37:53.858",
                "end_time": "2025-06-30 14:38:11.472",
                "image_url": RESULT_URL,
            },
            "usage": {"image_count": 1},
        },
    )
    state = backend.poll("15991992")
    assert state.state is RemoteState.SUCCEEDED and state.result_url == RESULT_URL and state.image_count == 1
    assert state.submitted_at == datetime(2025, 6, 30, 6, 37, 53, 838000, tzinfo=timezone.utc)
    assert state.ended_at > state.scheduled_at > state.submitted_at
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert "X-DashScope-Async" not in responses.calls[0].request.headers


@pytest.mark.parametrize(
    "status, expected",
    [
        ("PENDING", RemoteState.PENDING),
        ("PRE-PROCESSING", RemoteState.RUNNING),
        ("RUNNING", RemoteState.RUNNING),
        ("POST-PROCESSING", RemoteState.RUNNING),
        ("SUCCEEDED", RemoteState.SUCCEEDED),
        ("FAILED", RemoteState.FAILED),
        ("CANCELED", RemoteState.CANCELED),
        ("UNKNOWN", RemoteState.UNKNOWN),
    ],
)
@responses.activate
def test_every_status(backend, status, expected):
    output = {"task_id": "t", "task_status": status}
    if status == "SUCCEEDED":
        output["image_url"] = RESULT_URL
    responses.get(f"{BASE}/tasks/t", json={"request_id": "r", "output": output})
    state = backend.poll("t")
    assert state.state is expected


@responses.activate
def test_poll_failed_carries_the_output_code(backend):
    responses.get(
        f"{BASE}/tasks/t",
        json={
            "request_id": "r",
            "output": {
                "task_id": "t",
                "task_status": "FAILED",
                "code": "InvalidPerson",
                "message": "The input image has no human body or multi human bodies.",
            },
        },
    )
    state = backend.poll("t")
    assert (state.state, state.error_code) == (RemoteState.FAILED, "InvalidPerson")
    assert "human body" in state.error_message and state.submitted_at is None


@responses.activate
def test_unknown_task_is_reported_with_a_code(backend):
    responses.get(f"{BASE}/tasks/gone", json={"output": {"task_id": "gone", "task_status": "UNKNOWN"}})
    state = backend.poll("gone")
    assert state.state is RemoteState.UNKNOWN and state.error_code == "Unknown"


@responses.activate
def test_succeeded_without_image_is_a_failure(backend):
    responses.get(f"{BASE}/tasks/t", json={"output": {"task_id": "t", "task_status": "SUCCEEDED"}})
    state = backend.poll("t")
    assert state.state is RemoteState.FAILED and state.error_code == "ResultUnavailable"


def test_parse_time_is_beijing_time():
    assert parse_time("2025-06-30 14:37:53.838").utcoffset().total_seconds() == 8 * 3600
    assert parse_time(None) is None and parse_time("garbage") is None


# -- cancel and upload -----------------------------------------------------------------------------
@responses.activate
def test_cancel_pending_and_too_late(backend):
    responses.post(f"{BASE}/tasks/a/cancel", json={"request_id": "r"})
    responses.post(
        f"{BASE}/tasks/b/cancel",
        status=400,
        json={
            "request_id": "r",
            "code": "UnsupportedOperation",
            "message": "Failed to cancel the task, please confirm if the task is in PENDING status.",
        },
    )
    assert backend.cancel("a") is True
    assert backend.cancel("b") is False


@responses.activate
def test_upload_flow_returns_an_oss_url(backend):
    responses.get(
        f"{BASE}/uploads",
        match=[responses.matchers.query_param_matcher({"action": "getPolicy", "model": "aitryon"})],
        json={
            "request_id": "r",
            "data": {
                "policy": "eyJl",
                "signature": "sig=",
                "upload_dir": "dashscope-instant/abc/2024-07-18/xyz",
                "upload_host": "https://dashscope-file-xxx.oss-cn-beijing.aliyuncs.com",
                "expire_in_seconds": 300,
                "max_file_size_mb": 100,
                "capacity_limit_mb": 999999999,
                "oss_access_key_id": "LTAI",
                "x_oss_object_acl": "private",
                "x_oss_forbid_overwrite": "true",
            },
        },
    )
    responses.post("https://dashscope-file-xxx.oss-cn-beijing.aliyuncs.com", status=200)
    url = backend.upload(b"jpegbytes", "p.jpg", "image/jpeg")
    assert url == "oss://dashscope-instant/abc/2024-07-18/xyz/p.jpg"
    form = responses.calls[1].request
    assert "Authorization" not in form.headers
    assert b'name="key"' in form.body and b"dashscope-instant/abc/2024-07-18/xyz/p.jpg" in form.body
    assert b'name="OSSAccessKeyId"' in form.body and b'name="success_action_status"' in form.body


# -- errors ----------------------------------------------------------------------------------------
ERROR_TABLE = [
    # the OutfitAnyone API page's own codes
    (400, "InvalidParameter", TryOnProviderRejected),
    (400, "InvalidURL", TryOnProviderRejected),
    (400, "InvalidPerson", TryOnProviderRejected),
    (400, "InvalidGarment", TryOnProviderRejected),
    (400, "InvalidInputLength", TryOnProviderRejected),
    # the error-code page's platform codes
    (400, "BadRequest.EmptyInput", TryOnProviderRejected),
    (400, "BadRequest.EmptyParameters", TryOnProviderRejected),
    (400, "BadRequest.EmptyModel", TryOnProviderRejected),
    (400, "BadRequest.IllegalInput", TryOnProviderRejected),
    (400, "InvalidURL.ConnectionRefused", TryOnProviderRejected),
    (400, "InvalidURL.Timeout", TryOnProviderRejected),
    (400, "InvalidParameter.DataInspection", TryOnProviderRejected),
    (400, "DataInspectionFailed", TryOnProviderRejected),
    (400, "Arrearage", TryOnProviderRejected),
    (400, "UnsupportedOperation", TryOnProviderRejected),
    (401, "InvalidApiKey", TryOnProviderRejected),
    (403, "AccessDenied", TryOnProviderRejected),
    (403, "AccessDenied.Unpurchased", TryOnModelUnavailable),
    (403, "Model.AccessDenied", TryOnModelUnavailable),
    (403, "Workspace.AccessDenied", TryOnModelUnavailable),
    (403, "Endpoint.AccessDenied", TryOnModelUnavailable),
    (403, "AllocationQuota.FreeTierOnly", TryOnProviderRejected),
    (404, "ModelNotFound", TryOnModelUnavailable),
    (404, "WorkSpaceNotFound", TryOnModelUnavailable),
    (404, "NotFound", TryOnProviderRejected),
    (408, "RequestTimeOut", TryOnRetryableError),
    (429, "Throttling", TryOnRetryableError),
    (429, "Throttling.RateQuota", TryOnRetryableError),
    (429, "Throttling.BurstRate", TryOnRetryableError),
    (429, "Throttling.AllocationQuota", TryOnRetryableError),
    (429, "CommodityNotPurchased", TryOnProviderRejected),
    (429, "PrepaidBillOverdue", TryOnProviderRejected),
    (429, "PostpaidBillOverdue", TryOnProviderRejected),
    (500, "InternalError", TryOnRetryableError),
    (500, "InternalError.Algo", TryOnRetryableError),
    (500, "InternalError.Timeout", TryOnRetryableError),
    (500, "InternalError.Upload", TryOnRetryableError),
    (500, "InternalError.FileUpload", TryOnRetryableError),
    (500, "SystemError", TryOnRetryableError),
    (500, "RequestTimeOut", TryOnRetryableError),
    (500, "ModelServingError", TryOnRetryableError),
    (503, "ModelServingError", TryOnRetryableError),
    (503, "ModelUnavailable", TryOnRetryableError),
]


def test_str_of_an_error_is_code_message_status_and_request_id_never_the_body():
    from django_tryon.exceptions import TryOnProviderRejected

    body = {
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
        "echo": {"Authorization": f"Bearer {KEY}"},
    }
    err = TryOnProviderRejected(
        "Invalid API-key provided.",
        code="InvalidApiKey",
        status_code=401,
        response_body=body,
        request_id="req-1",
    )
    assert str(err) == "InvalidApiKey: Invalid API-key provided. (HTTP 401) [request_id req-1]"
    assert err.response_body is body and KEY not in str(err) + repr(err)


@pytest.mark.parametrize("status, code, expected", ERROR_TABLE)
@responses.activate
def test_every_documented_error_is_classified(backend, status, code, expected):
    responses.post(SUBMIT_URL, status=status, json={"request_id": "req-9", "code": code, "message": "m"})
    with pytest.raises(expected) as info:
        backend.submit(REQUEST)
    err = info.value
    assert type(err) is expected
    assert err.status_code == status and err.request_id == "req-9"
    assert err.code == ("ModelNotAvailable" if expected is TryOnModelUnavailable else code)
    assert KEY not in str(err) and KEY not in repr(err.args)


def test_retired_model_is_reported_as_such():
    err = classify_error(403, "Endpoint.AccessDenied", "Workspace endpoint access denied.")
    assert (
        isinstance(err, TryOnModelUnavailable)
        and "retire" in err.message
        and "TRYON['OPTIONS']['model']" in err.message
    )
    assert "下线" in err.messages()["zh-hans"]
    assert isinstance(classify_error(400, "InvalidParameter", "Model not exist."), TryOnModelUnavailable)


@responses.activate
def test_non_json_error_body(backend):
    responses.post(SUBMIT_URL, status=502, body="<html>Bad gateway</html>", content_type="text/html")
    with pytest.raises(TryOnRetryableError) as info:
        backend.submit(REQUEST)
    assert info.value.code == "Unknown" and "non-JSON" in info.value.message


@responses.activate
def test_retry_after_header_is_kept(backend):
    responses.post(
        SUBMIT_URL,
        status=429,
        headers={"Retry-After": "7"},
        json={"request_id": "r", "code": "Throttling", "message": "m"},
    )
    with pytest.raises(TryOnRetryableError) as info:
        backend.submit(REQUEST)
    assert info.value.retry_after == 7.0


@responses.activate
def test_timeouts_and_connection_errors_are_retryable(backend):
    responses.post(SUBMIT_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TryOnRetryableError) as info:
        backend.submit(REQUEST)
    assert info.value.accepted_maybe  # the provider may have accepted the task
    responses.replace(responses.POST, SUBMIT_URL, body=requests.ConnectTimeout("no route"))
    with pytest.raises(TryOnRetryableError) as info:
        backend.submit(REQUEST)
    assert not info.value.accepted_maybe
    responses.get(f"{BASE}/tasks/t", body=requests.ConnectionError("refused"))
    with pytest.raises(TryOnRetryableError):
        backend.poll("t")


@responses.activate
def test_download_errors(backend):
    responses.get("https://oss.test/ok.jpg", body=b"img")
    responses.get("https://oss.test/expired.jpg", status=403, body=b"<Error>AccessDenied</Error>")
    responses.get("https://oss.test/busy.jpg", status=500)
    assert backend.download("https://oss.test/ok.jpg") == b"img"
    with pytest.raises(TryOnProviderRejected) as info:
        backend.download("https://oss.test/expired.jpg")
    assert info.value.code == "ResultUnavailable"
    with pytest.raises(TryOnRetryableError):
        backend.download("https://oss.test/busy.jpg")


@responses.activate
def test_debug_log_redacts_the_key(caplog):
    with override_settings(TRYON={"OPTIONS": {"api_key": KEY, "base_url": BASE}, "DEBUG_API_REQUESTS": True}):
        backend = get_backend()
    responses.post(SUBMIT_URL, json={"output": {"task_id": "t", "task_status": "PENDING"}, "request_id": "r"})
    responses.get(
        f"{BASE}/tasks/t",
        status=401,
        json={"request_id": "r", "code": "InvalidApiKey", "message": "Invalid API-key provided."},
    )
    with caplog.at_level(logging.DEBUG, logger="django_tryon"):
        backend.submit(REQUEST)
        with pytest.raises(TryOnProviderRejected):
            backend.poll("t")
    text = caplog.text
    assert "image-synthesis" in text and "person_image_url" in text
    assert KEY not in text and "***" in text


def test_retry_after_may_be_seconds_or_an_http_date():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from django_tryon.backends.http import retry_after_seconds

    assert retry_after_seconds("7") == 7.0 and retry_after_seconds("1.5") == 1.5
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31
    assert retry_after_seconds("Wed, 01 Jan 2020 00:00:00 GMT") == 0.0  # in the past: at once
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
