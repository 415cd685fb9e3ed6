"""The sandbox against the provider's documentation: a real process over HTTP, driven by curl, by requests, by our
DashScopeBackend and by the vendor's own SDK."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from . import images
from .sandbox_helpers import FileServer, sandbox_process
from .test_engine import shared

KEY, OTHER_KEY = "sk-a", "sk-b"
AUTH = {"Authorization": f"Bearer {KEY}"}
ASYNC = {**AUTH, "X-DashScope-Async": "enable", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process("--latency", "0.8", "--api-key", KEY, "--api-key", OTHER_KEY, "--seed", "1") as url:
        yield url


@pytest.fixture(autouse=True)
def _reset(sandbox):
    requests.post(f"{sandbox}/_sandbox/reset", headers=AUTH, timeout=5)


@pytest.fixture(scope="module")
def files():
    server = FileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def urls(files):
    return {
        "person": files.add("person.jpg", shared("person", "fitdit_model_1.jpg").read_bytes()),
        "person2": files.add("person2.png", shared("person", "catvton_men_Yifeng_0.png").read_bytes()),
        "top": files.add("top.jpg", images.garment_photo()),
        "bottom": files.add("bottom.jpg", images.garment_photo((30, 30, 120), kind="bottom")),
        "tiny": files.add("tiny.jpg", images.jpeg(120, 120)),
        "text": files.add("notes.jpg", b"not an image at all" * 600),
        "nobody": files.add("nobody.jpg", images.jpeg(400, 600)),
        "missing": files.add("gone.jpg", b"x").replace("gone.jpg", "really-gone.jpg"),
    }


def submit(sandbox, body, headers=ASYNC, path="/api/v1/services/aigc/image2image/image-synthesis"):
    return requests.post(
        sandbox + path,
        data=json.dumps(body) if not isinstance(body, (bytes, str)) else body,
        headers=headers,
        timeout=30,
    )


def tryon_body(urls, **inputs):
    return {
        "model": "aitryon",
        "input": {"person_image_url": urls["person"], "top_garment_url": urls["top"], **inputs},
        "parameters": {"resolution": -1, "restore_face": True},
    }


def wait(sandbox, task_id, key=KEY, timeout=60):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(
            f"{sandbox}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        if response.status_code == 429:  # 20 queries/s, like the real service
            time.sleep(0.2)
            continue
        out = response.json()
        status = out["output"]["task_status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return out, seen
        time.sleep(0.08)
    raise AssertionError(f"task stuck: {seen}")


# -- envelope, auth, gates, validation order -------------------------------------------------------
def test_error_envelope_and_auth(sandbox):
    missing = requests.get(f"{sandbox}/api/v1/tasks/x", timeout=5)
    assert missing.status_code == 401 and missing.headers["Content-Type"] == "application/json"
    body = missing.json()
    assert body == {
        "code": "InvalidApiKey",
        "message": "No API-key provided.",
        "request_id": body["request_id"],
    }
    assert missing.headers["x-request-id"] == body["request_id"]
    wrong = requests.get(f"{sandbox}/api/v1/tasks/x", headers={"Authorization": "Bearer sk-nope"}, timeout=5)
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Invalid API-key provided.")


def test_async_gates(sandbox, urls):
    sync = submit(sandbox, tryon_body(urls), headers={**AUTH, "Content-Type": "application/json"})
    assert (sync.status_code, sync.json()["code"]) == (403, "AccessDenied")
    assert sync.json()["message"] == "current user api does not support synchronous calls."
    parsing = submit(
        sandbox,
        {
            "model": "aitryon-parsing-v1",
            "input": {"image_url": urls["person"]},
            "parameters": {"clothes_type": ["upper"]},
        },
        path="/api/v1/services/vision/image-process/process",
    )
    assert (parsing.status_code, parsing.json()["message"]) == (
        403,
        "Current user api does not support asynchronous calls.",
    )


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "InvalidParameter"),
        ({"input": {}}, 400, "BadRequest.EmptyModel"),
        ({"model": "wanx-v1", "input": {"a": 1}}, 400, "InvalidParameter"),
        ({"model": "aitryon"}, 400, "BadRequest.EmptyInput"),
        ({"model": "aitryon", "input": {"person_image_url": "http://x/p.jpg"}}, 400, "InvalidGarment"),
        ({"model": "aitryon", "input": {"top_garment_url": "http://x/t.jpg"}}, 400, "InvalidParameter"),
        (
            {
                "model": "aitryon",
                "input": {"person_image_url": "ftp://x/p.jpg", "top_garment_url": "http://x/t.jpg"},
            },
            400,
            "InvalidURL",
        ),
        (
            {
                "model": "aitryon",
                "input": {"person_image_url": "http://x/p.jpg", "top_garment_url": "http://x/t.jpg"},
                "parameters": {"resolution": 720},
            },
            400,
            "InvalidParameter",
        ),
        (
            {
                "model": "aitryon",
                "input": {"person_image_url": "http://x/p.jpg", "top_garment_url": "http://x/t.jpg"},
                "parameters": {"restore_face": "yes"},
            },
            400,
            "InvalidParameter",
        ),
        (
            {
                "model": "aitryon-refiner",
                "input": {
                    "person_image_url": "http://x/p.jpg",
                    "top_garment_url": "http://x/t.jpg",
                    "coarse_image_url": "http://x/c.jpg",
                },
                "parameters": {},
            },
            400,
            "InvalidParameter",
        ),
        (
            {
                "model": "aitryon",
                "input": {
                    "person_image_url": "oss://dashscope-instant/x/p.jpg",
                    "top_garment_url": "http://x/t.jpg",
                },
            },
            400,
            "InvalidURL",
        ),
    ],
)
def test_validation_order(sandbox, body, status, code):
    response = submit(sandbox, body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert response.json()["request_id"]


def test_missing_parameters_are_accepted_like_an_empty_object(sandbox, urls):
    body = tryon_body(urls)
    del body["parameters"]
    assert submit(sandbox, body).status_code == 200


# -- the original document's curl example, and the task lifecycle -----------------------------------
def test_the_documents_curl_example_runs_the_whole_lifecycle(sandbox, urls, files):
    # Verbatim from the original document, but for host, key and image URLs.
    command = f"""curl --location '{sandbox}/api/v1/services/aigc/image2image/image-synthesis/' \\
--header 'X-DashScope-Async: enable' \\
--header 'Authorization: Bearer {KEY}' \\
--header 'Content-Type: application/json' \\
--data '{{
"model": "aitryon",
"input": {{
"top_garment_url": "{urls["top"]}",
"bottom_garment_url": "{urls["bottom"]}",
"person_image_url": "{urls["person"]}"
}},
"parameters": {{
"resolution": -1,
"restore_face": true
}}
}}'"""
    submitted = json.loads(
        subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
    )
    assert submitted["output"]["task_status"] == "PENDING" and submitted["request_id"]
    task_id = submitted["output"]["task_id"]
    query = f"curl -X GET --header 'Authorization: Bearer {KEY}' '{sandbox}/api/v1/tasks/{task_id}'"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = json.loads(subprocess.run(query, shell=True, capture_output=True, text=True, check=True).stdout)
        if out["output"]["task_status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.2)
    output = out["output"]
    assert output["task_status"] == "SUCCEEDED", output
    assert out["usage"] == {"image_count": 1}
    for key in ("submit_time", "scheduled_time", "end_time"):
        time.strptime(output[key], "%Y-%m-%d %H:%M:%S.%f")
    picture = requests.get(output["image_url"], timeout=10)
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg"
    person = files.files["/person.jpg"]
    assert picture.content != person and len(picture.content) > 5000  # rendered, not a copy
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(picture.content)).size == Image.open(io.BytesIO(person)).size


def test_statuses_follow_the_documented_path(sandbox, urls):
    _, seen = wait(sandbox, submit(sandbox, tryon_body(urls)).json()["output"]["task_id"])
    assert seen[-1] == "SUCCEEDED"
    order = ["PENDING", "PRE-PROCESSING", "RUNNING", "POST-PROCESSING", "SUCCEEDED"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert {"RUNNING", "POST-PROCESSING"} <= set(seen)


@pytest.mark.parametrize(
    "person, code",
    [
        ("tiny", "InvalidInputLength"),
        ("text", "InvalidURL"),
        ("missing", "InvalidURL"),
        ("nobody", "InvalidPerson"),
    ],
)
def test_inputs_are_downloaded_and_checked(sandbox, urls, person, code):
    out, _ = wait(
        sandbox, submit(sandbox, tryon_body(urls, person_image_url=urls[person])).json()["output"]["task_id"]
    )
    assert (out["output"]["task_status"], out["output"]["code"]) == ("FAILED", code)
    assert "usage" not in out


def test_resolution_1024(sandbox, urls):
    body = tryon_body(urls)
    body["parameters"]["resolution"] = 1024
    out, _ = wait(sandbox, submit(sandbox, body).json()["output"]["task_id"])
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(requests.get(out["output"]["image_url"], timeout=10).content)).size == (
        576,
        1024,
    )


# -- limits ----------------------------------------------------------------------------------------
def test_submit_rate_limit(sandbox, urls):
    codes = [submit(sandbox, tryon_body(urls)).status_code for _ in range(14)]
    assert codes.count(200) <= 10 and 429 in codes
    throttled = submit(sandbox, tryon_body(urls))
    if throttled.status_code == 429:
        assert throttled.json()["code"] == "Throttling.RateQuota"
    assert requests.get(f"{sandbox}/_sandbox/stats", headers=AUTH, timeout=5).json()["throttled"] >= 1


def test_query_rate_limit(sandbox):
    codes = [
        requests.get(f"{sandbox}/api/v1/tasks/x", headers=AUTH, timeout=5).status_code for _ in range(25)
    ]
    assert 429 in codes and codes.count(200) <= 20


def test_five_tasks_at_a_time_the_rest_wait_pending(sandbox, urls):
    ids = []
    for _ in range(7):
        ids.append(submit(sandbox, tryon_body(urls)).json()["output"]["task_id"])
    statuses = [
        requests.get(f"{sandbox}/api/v1/tasks/{i}", headers=AUTH, timeout=5).json()["output"]["task_status"]
        for i in ids
    ]
    assert statuses.count("PENDING") >= 2
    cancel = requests.post(f"{sandbox}/api/v1/tasks/{ids[-1]}/cancel", headers=AUTH, timeout=5)
    assert cancel.status_code == 200 and set(cancel.json()) == {"request_id"}
    for task_id in ids[:-1]:
        assert wait(sandbox, task_id)[0]["output"]["task_status"] == "SUCCEEDED"
    assert wait(sandbox, ids[-1])[0]["output"]["task_status"] == "CANCELED"
    too_late = requests.post(f"{sandbox}/api/v1/tasks/{ids[0]}/cancel", headers=AUTH, timeout=5)
    assert too_late.status_code == 400 and too_late.json()["code"] == "UnsupportedOperation"
    stats = requests.get(f"{sandbox}/_sandbox/stats", headers=AUTH, timeout=5).json()
    assert stats["max_concurrency_seen"]["aitryon"] == 5


def test_reject_policy_answers_429(urls):
    with sandbox_process(
        "--latency", "3", "--api-key", KEY, "--concurrency-policy", "reject", "--concurrency", "2"
    ) as url:
        codes = [submit(url, tryon_body(urls)).status_code for _ in range(3)]
        assert codes[:2] == [200, 200] and codes[2] == 429
        assert submit(url, tryon_body(urls)).json()["code"] == "Throttling.AllocationQuota"


# -- tasks: unknown, foreign, expired, list ----------------------------------------------------------
def test_unknown_foreign_and_expired_tasks(sandbox, urls):
    unknown = requests.get(f"{sandbox}/api/v1/tasks/nope", headers=AUTH, timeout=5)
    assert unknown.status_code == 200 and unknown.json()["output"] == {
        "task_id": "nope",
        "task_status": "UNKNOWN",
    }
    task_id = submit(sandbox, tryon_body(urls)).json()["output"]["task_id"]
    out, _ = wait(sandbox, task_id)
    foreign = requests.get(
        f"{sandbox}/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=5
    )
    assert foreign.json()["output"]["task_status"] == "UNKNOWN"
    requests.post(f"{sandbox}/_sandbox/clock", headers=AUTH, json={"advance": 25 * 3600}, timeout=5)
    assert wait(sandbox, task_id)[0]["output"]["task_status"] == "UNKNOWN"
    expired = requests.get(out["output"]["image_url"], timeout=5)
    assert expired.status_code == 403 and b"AccessDenied" in expired.content


def test_list_tasks(sandbox, urls):
    ids = [submit(sandbox, tryon_body(urls)).json()["output"]["task_id"] for _ in range(3)]
    listed = requests.get(
        f"{sandbox}/api/v1/tasks", headers=AUTH, params={"page_no": 1, "page_size": 2}, timeout=5
    ).json()
    assert (listed["total"], listed["total_page"], listed["page_no"], listed["page_size"]) == (3, 2, 1, 2)
    item = listed["data"][0]
    assert item["model_name"] == "aitryon" and isinstance(item["gmt_create"], int)
    assert item["user_api_unique_key"] == "apikey:v1:aigc:image2image:image-synthesis:aitryon"
    one = requests.get(f"{sandbox}/api/v1/tasks/", headers=AUTH, params={"task_id": ids[1]}, timeout=5).json()
    assert [d["task_id"] for d in one["data"]] == [ids[1]]
    other = requests.get(
        f"{sandbox}/api/v1/tasks", headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=5
    ).json()
    assert other["total"] == 0


# -- uploads ---------------------------------------------------------------------------------------
def upload(sandbox, content, model="aitryon", name="p.jpg"):
    policy = requests.get(
        f"{sandbox}/api/v1/uploads", params={"action": "getPolicy", "model": model}, headers=AUTH, timeout=5
    ).json()["data"]
    key = f"{policy['upload_dir']}/{name}"
    form = {
        "OSSAccessKeyId": policy["oss_access_key_id"],
        "Signature": policy["signature"],
        "policy": policy["policy"],
        "key": key,
        "x-oss-object-acl": "private",
        "x-oss-forbid-overwrite": "true",
        "success_action_status": "200",
    }
    answer = requests.post(policy["upload_host"], data=form, files={"file": (name, content)}, timeout=10)
    assert answer.status_code == 200
    return f"oss://{key}"


def test_oss_uploads(sandbox, urls, files):
    person = upload(sandbox, files.files["/person.jpg"])
    body = tryon_body(urls, person_image_url=person)
    assert submit(sandbox, body).json()["code"] == "InvalidURL"  # no resolve header
    task_id = submit(sandbox, body, headers={**ASYNC, "X-DashScope-OssResourceResolve": "enable"}).json()[
        "output"
    ]["task_id"]
    assert wait(sandbox, task_id)[0]["output"]["task_status"] == "SUCCEEDED"
    other_model = upload(sandbox, files.files["/person.jpg"], model="aitryon-plus", name="q.jpg")
    wrong = submit(
        sandbox,
        tryon_body(urls, person_image_url=other_model),
        headers={**ASYNC, "X-DashScope-OssResourceResolve": "enable"},
    )
    assert wrong.json()["code"] == "InvalidURL"


# -- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault, status, code",
    [
        ("submit=500", 500, "InternalError"),
        ("submit=503", 503, "ModelUnavailable"),
        ("submit=serving", 503, "ModelServingError"),
        ("submit=retired", 403, "Endpoint.AccessDenied"),
        ("submit=arrearage", 400, "Arrearage"),
        ("submit=reject:DataInspectionFailed", 400, "DataInspectionFailed"),
        ("submit=reject:InternalError.Algo", 500, "InternalError.Algo"),
        ("submit=reject:SystemError", 500, "SystemError"),
        ("submit=reject:RequestTimeOut", 500, "RequestTimeOut"),
        ("submit=reject:ServiceUnavailable", 503, "ServiceUnavailable"),
    ],
)
def test_request_faults_by_header(sandbox, urls, fault, status, code):
    response = submit(sandbox, tryon_body(urls), headers={**ASYNC, "X-Sandbox-Fault": fault})
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_non_json_slow_and_dropped_answers(sandbox, urls):
    html = submit(sandbox, tryon_body(urls), headers={**ASYNC, "X-Sandbox-Fault": "submit=nonjson"})
    assert html.status_code == 502 and html.headers["Content-Type"].startswith("text/html")
    started = time.monotonic()
    assert (
        submit(sandbox, tryon_body(urls), headers={**ASYNC, "X-Sandbox-Fault": "submit=slow:1"}).status_code
        == 200
    )
    assert time.monotonic() - started >= 1
    with pytest.raises(requests.ConnectionError):
        submit(sandbox, tryon_body(urls), headers={**ASYNC, "X-Sandbox-Fault": "submit=drop"})


@pytest.mark.parametrize(
    "fault, code",
    [
        ("task=fail:InternalError.Algo", "InternalError.Algo"),
        ("task=inspection", "DataInspectionFailed"),
        ("task=stall", "InternalError.Timeout"),
        ("task=fail:InvalidPerson", "InvalidPerson"),
    ],
)
def test_task_faults(sandbox, urls, fault, code):
    task_id = submit(sandbox, tryon_body(urls), headers={**ASYNC, "X-Sandbox-Fault": fault}).json()["output"][
        "task_id"
    ]
    out, _ = wait(sandbox, task_id)
    assert (out["output"]["task_status"], out["output"]["code"]) == ("FAILED", code)


def test_programmed_faults_are_spent(sandbox, urls):
    armed = requests.post(
        f"{sandbox}/_sandbox/faults", headers=AUTH, json={"spec": "submit=503*2"}, timeout=5
    ).json()
    assert armed["faults"] == ["submit=503*2"]
    codes = [submit(sandbox, tryon_body(urls)).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    bad = requests.post(f"{sandbox}/_sandbox/faults", headers=AUTH, json={"spec": "nowhere=1"}, timeout=5)
    assert bad.status_code == 400


# -- parsing and refiner ---------------------------------------------------------------------------
def test_parsing(sandbox, urls):
    path = "/api/v1/services/vision/image-process/process"
    headers = {**AUTH, "Content-Type": "application/json"}
    bad = submit(
        sandbox,
        {
            "model": "aitryon-parsing-v1",
            "input": {"image_url": urls["person"]},
            "parameters": {"clothes_type": ["hat"]},
        },
        headers=headers,
        path=path,
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "InvalidParameter.ClothesType")
    good = submit(
        sandbox,
        {
            "model": "aitryon-parsing-v1",
            "input": {"image_url": urls["person"]},
            "parameters": {"clothes_type": ["upper", "lower"]},
        },
        headers=headers,
        path=path,
    ).json()
    out = good["output"]
    assert len(out["parsing_img_url"]) == len(out["crop_img_url"]) == len(out["bbox"]) == 2
    crop = requests.get(out["crop_img_url"][0], timeout=5)
    assert crop.status_code == 200 and crop.headers["Content-Type"] == "image/png"
    x1, y1, x2, y2 = out["bbox"][0]
    assert x2 > x1 and y2 > y1 and good["usage"] == {"image_count": 1}


def test_refiner(sandbox, urls, files):
    out, _ = wait(sandbox, submit(sandbox, tryon_body(urls)).json()["output"]["task_id"])
    coarse = out["output"]["image_url"]
    body = {
        "model": "aitryon-refiner",
        "input": {
            "top_garment_url": urls["top"],
            "person_image_url": urls["person"],
            "coarse_image_url": coarse,
        },
        "parameters": {"gender": "man"},
    }
    refined, _ = wait(sandbox, submit(sandbox, body).json()["output"]["task_id"])
    assert refined["output"]["task_status"] == "SUCCEEDED"
    mismatch = {**body, "input": {**body["input"], "person_image_url": urls["person2"]}}
    failed, _ = wait(sandbox, submit(sandbox, mismatch).json()["output"]["task_id"])
    assert failed["output"]["code"] == "InvalidParameter" and "not the same" in failed["output"]["message"]


# -- clients -------------------------------------------------------------------------------------
def test_our_backend_runs_the_lifecycle(sandbox, urls, files):
    from django_tryon.backends.base import RemoteState, TryOnInput
    from django_tryon.backends.dashscope import DashScopeBackend

    backend = DashScopeBackend(api_key=KEY, base_url=f"{sandbox}/api/v1", debug_api_requests=False)
    person = backend.upload(files.files["/person.jpg"], "person.jpg", "image/jpeg")
    result = backend.submit(TryOnInput(person_image_url=person, top_garment_url=urls["top"]))
    for _ in range(600):
        state = backend.poll(result.remote_id)
        if state.state not in (RemoteState.PENDING, RemoteState.RUNNING):
            break
        time.sleep(0.05)
    assert state.state is RemoteState.SUCCEEDED and state.submitted_at and state.ended_at
    assert len(backend.download(state.result_url)) > 5000
    assert backend.cancel(result.remote_id) is False  # too late: not PENDING


def test_the_vendors_sdk_runs_the_lifecycle(sandbox, urls):
    """dashscope 1.27.8, used as its own examples show (BaseAsyncApi), knows only the vendor's wire format."""
    import dashscope
    from dashscope.client.base_api import BaseAsyncApi

    dashscope.base_http_api_url = f"{sandbox}/api/v1"
    response = BaseAsyncApi.async_call(
        model="aitryon",
        input={"person_image_url": urls["person"], "top_garment_url": urls["top"]},
        task_group="aigc",
        task="image2image",
        function="image-synthesis",
        api_key=KEY,
        resolution=-1,
        restore_face=True,
    )
    assert response.status_code == 200 and response.output["task_status"] == "PENDING"
    final = BaseAsyncApi.wait(response, api_key=KEY)
    assert (
        final.status_code == 200 and final.output["task_status"] == "SUCCEEDED" and final.output["image_url"]
    )
    fetched = BaseAsyncApi.fetch(final.output["task_id"], api_key=KEY)
    assert fetched.output["task_status"] == "SUCCEEDED"


def test_our_backend_treats_timeouts_and_drops_as_retryable(sandbox, urls):
    from django_tryon.backends.base import RemoteState, TryOnInput
    from django_tryon.backends.dashscope import DashScopeBackend
    from django_tryon.exceptions import TryOnRetryableError

    backend = DashScopeBackend(
        api_key=KEY, base_url=f"{sandbox}/api/v1", timeout=(2, 1), debug_api_requests=False
    )
    request = TryOnInput(person_image_url=urls["person"], top_garment_url=urls["top"])
    arm(sandbox, "submit=timeout*1,query=drop*1")
    with pytest.raises(TryOnRetryableError) as info:
        backend.submit(request)
    assert info.value.accepted_maybe  # sent, no answer: the provider may have the task
    assert (
        backend.poll("anything").state is RemoteState.UNKNOWN
    )  # one dropped GET is retried by the HTTP layer
    arm(sandbox, "query=drop*5")
    with pytest.raises(TryOnRetryableError):
        backend.poll("anything")  # ... but not forever


def arm(sandbox, spec):
    assert (
        requests.post(f"{sandbox}/_sandbox/faults", headers=AUTH, json={"spec": spec}, timeout=5).status_code
        == 200
    )


# -- the sandbox on a developer's machine (docs/security.rst) --------------------------------------
def test_control_endpoints_need_the_key(sandbox):
    for method, path in (("get", "stats"), ("post", "reset"), ("post", "clock"), ("post", "faults")):
        anonymous = requests.request(method, f"{sandbox}/_sandbox/{path}", json={}, timeout=5)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "InvalidApiKey", path
        wrong = requests.request(
            method,
            f"{sandbox}/_sandbox/{path}",
            json={},
            timeout=5,
            headers={"Authorization": "Bearer sk-nope"},
        )
        assert wrong.status_code == 401, path
    assert requests.get(f"{sandbox}/_sandbox/stats", headers=AUTH, timeout=5).status_code == 200
    assert (
        requests.get(f"{sandbox}/_sandbox/health", timeout=5).status_code == 200
    )  # readiness probe stays open


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.5"])
def test_foreign_host_headers_are_refused(sandbox, host):
    """A page on another name that rebinds its DNS to 127.0.0.1 sends its own Host: refused before anything runs."""
    for path in ("/_sandbox/health", "/api/v1/tasks/x", "/_sandbox/reset"):
        response = requests.get(f"{sandbox}{path}", headers={**AUTH, "Host": host}, timeout=5)
        assert response.status_code == 421 and response.json()["code"] == "InvalidHost", (host, path)
    assert (
        requests.get(f"{sandbox}/_sandbox/health", headers={"Host": "localhost:1"}, timeout=5).status_code
        == 200
    )


def test_allowed_host_option():
    with sandbox_process("--allowed-host", "sandbox.internal") as url:
        assert (
            requests.get(
                f"{url}/_sandbox/health", headers={"Host": "sandbox.internal"}, timeout=5
            ).status_code
            == 200
        )
        assert (
            requests.get(f"{url}/_sandbox/health", headers={"Host": "other.internal"}, timeout=5).status_code
            == 421
        )


def test_tryon_sandbox_takes_the_sandboxs_options():
    """``manage.py tryon_sandbox --port … --api-key …`` runs the sandbox with those options."""
    import os

    from .sandbox_helpers import ROOT

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    with sandbox_process(
        "--api-key", "sk-from-manage", command=("-m", "django", "tryon_sandbox"), env=env
    ) as url:
        ok = requests.get(
            f"{url}/api/v1/tasks/nope", headers={"Authorization": "Bearer sk-from-manage"}, timeout=5
        )
        refused = requests.get(
            f"{url}/api/v1/tasks/nope", headers={"Authorization": "Bearer sk-sandbox"}, timeout=5
        )
    assert ok.status_code != 401 and refused.status_code == 401
