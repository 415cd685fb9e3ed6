"""The sandbox's HTTP API (Flask): the DashScope try-on endpoints, uploads, results and introspection."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import socket
import time
from datetime import datetime
from typing import Any

from flask import Flask, Response, g, request

from . import faults as fault_specs
from . import fashn, image_edit
from .messages import ERRORS, error
from .state import (
    BEIJING,
    DAY,
    PARSING,
    POLICY_LIFETIME,
    REFINER,
    TRYON_MODELS,
    UPLOAD_LIFETIME,
    Config,
    Store,
    Task,
    Upload,
)
from .worker import InputError, Scheduler, load

API = "/api/v1"
SUBMIT = f"{API}/services/aigc/image2image/image-synthesis"
PROCESS = f"{API}/services/vision/image-process/process"
CLOTHES_TYPES = (["upper"], ["lower"], ["dress"], ["upper", "lower"])
MODELS = (*TRYON_MODELS, REFINER, PARSING)


def create_app(config: Config | None = None) -> Flask:
    """A sandbox application with its own store; run it with any WSGI server (threaded)."""
    config = config or Config()
    store = Store(config)
    scheduler = Scheduler(store)
    app = Flask("django_tryon.sandbox")
    app.config["SANDBOX_STORE"] = store
    app.url_map.strict_slashes = False  # the vendor's curl example ends the submit URL with "/"

    # -- helpers ---------------------------------------------------------------------------------
    def reply(body: dict[str, Any], status: int = 200) -> Response:
        body.setdefault("request_id", g.request_id)
        response = Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")
        response.headers["x-request-id"] = body["request_id"]
        return response

    def fail(key: str, message: str | None = None) -> Response:
        status, code, default = error(key) if key in ERRORS else (400, key, "Injected failure.")
        return reply({"code": code, "message": message or default}, status)

    def base_url() -> str:
        return (config.public_url or request.host_url).rstrip("/")

    def account() -> str:
        return store.account_of(g.api_key)

    def request_fault(where: str) -> Response | None:
        header = request.headers.get("X-Sandbox-Fault", "")
        fault = next((f for f in fault_specs.parse(header) if f.where in (where, "any")), None) if header else None
        fault = fault or store.faults.take(where)
        if fault is None:
            return None
        with store.lock:
            store.stats["faults"] += 1
        what = fault.what
        if what == "slow":
            time.sleep(float(fault.arg or 3))
            return None
        if what == "timeout":
            time.sleep(config.fault_timeout)
            return reply({"code": "RequestTimeOut", "message": "Request timed out, please try again later."}, 500)
        if what == "drop":
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed by the client
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            return Response("", status=500)
        if what == "nonjson":
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", status=502, content_type="text/html")
        keys = {"500": "InternalError", "503": "ModelUnavailable", "serving": "ModelServingError", "429": "Throttling",
                "retired": "Endpoint.AccessDenied", "arrearage": "Arrearage", "outofcredits": "Arrearage"}
        if what in keys:
            return fail(keys[what])
        if what == "reject":
            return fail(fault.arg or "InvalidParameter")
        return None

    def model_body(models: tuple[str, ...]) -> dict[str, Any] | Response:
        """The JSON body, checked in the service's order: valid JSON object, ``model`` present and known."""
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return fail("BodyInvalid")
        if not isinstance(body, dict):
            return fail("BodyInvalid")
        if not body.get("model"):
            return fail("BadRequest.EmptyModel")
        if body["model"] not in models:
            return fail("ModelNotExist")
        return body

    def task_fault() -> Any:
        header = request.headers.get("X-Sandbox-Fault", "")
        fault = next((f for f in fault_specs.parse(header) if f.where == "task"), None) if header else None
        return fault or store.faults.take("task")

    # -- cross-cutting -----------------------------------------------------------------------------
    allowed_hosts = config.host_names()

    @app.before_request
    def authenticate() -> Response | None:
        g.request_id = store.new_id()
        if allowed_hosts is not None and (request.host or "").rsplit(":", 1)[0].strip("[]").lower() not in allowed_hosts:
            # DNS rebinding: a web page on evil.example resolving to 127.0.0.1 must not drive the sandbox.
            return reply({"code": "InvalidHost", "message": f"Host {request.host!r} is not served here."}, 421)
        control = request.path.startswith("/_sandbox/") and request.path != "/_sandbox/health"
        if not (request.path.startswith(API) or control):
            return None
        header = request.headers.get("Authorization", "")
        if not header:
            return fail("NoApiKey")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if key not in config.api_keys:
            return fail("InvalidApiKey")
        g.api_key = key
        return None

    @app.errorhandler(404)
    def not_found(_: Any) -> Response:
        return reply({"code": "NotFound", "message": "Not found!"}, 404)

    @app.errorhandler(405)
    def not_allowed(_: Any) -> Response:
        return reply({"code": "InvalidParameter", "message": "Required URL is missing or invalid, please check the request URL."}, 400)

    # -- try-on, refiner -------------------------------------------------------------------------
    @app.post(SUBMIT)
    def submit() -> Response:
        with store.lock:
            store.stats["submits"] += 1
        if request.headers.get("X-DashScope-Async", "").lower() != "enable":
            return fail("SyncNotSupported")
        broken = request_fault("submit")
        if broken is not None:
            return broken
        body = model_body((*TRYON_MODELS, REFINER))
        if isinstance(body, Response):
            return body
        model = body["model"]
        if not store.limiter.allow(("submit", g.api_key, model), config.submit_rate):
            with store.lock:
                store.stats["throttled"] += 1
                store.stats["throttled_submits"] += 1
            return fail("Throttling.RateQuota")
        inputs = body.get("input")
        if not isinstance(inputs, dict) or not inputs:
            return fail("BadRequest.EmptyInput")
        parameters = body.get("parameters", {})
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            return fail("InvalidParameter")
        problem = check_refiner(inputs, parameters) if model == REFINER else check_tryon(inputs, parameters)
        if problem:
            return fail(problem)
        oss = [url for key, url in inputs.items() if key.endswith("_url") and str(url or "").startswith("oss://")]
        if oss:
            problem = check_oss(oss, model)
            if problem:
                return fail(problem)
        rnd = scheduler.random
        task = Task(
            task_id=store.new_id(), account=account(), model=model,
            inputs={k: v for k, v in inputs.items() if k.endswith("_url") and v},
            parameters=parameters, oss_resolve=bool(oss), submit_time=store.clock.now(),
            duration=config.duration(model, rnd), request_id=g.request_id, fault=task_fault(),
        )
        if not scheduler.submit(task, reject_when_full=config.concurrency_policy == "reject"):
            with store.lock:
                store.stats["throttled"] += 1
                store.stats["throttled_submits"] += 1
            return fail("Throttling.AllocationQuota")
        with store.lock:
            store.tasks[task.task_id] = task
            store.stats["accepted"] += 1
        return reply({"output": {"task_id": task.task_id, "task_status": "PENDING"}})

    def check_url(value: Any) -> str | None:
        if not isinstance(value, str) or not value.startswith(("http://", "https://", "oss://")):
            return "InvalidURL"
        return None

    def check_tryon(inputs: dict[str, Any], parameters: dict[str, Any]) -> str | None:
        if not inputs.get("person_image_url"):
            return "InvalidParameter"
        if not inputs.get("top_garment_url") and not inputs.get("bottom_garment_url"):
            return "InvalidGarment"
        resolution = parameters.get("resolution", -1)
        if isinstance(resolution, bool) or resolution not in (-1, 1024, 1280):
            return "InvalidParameter"
        if not isinstance(parameters.get("restore_face", True), bool):
            return "InvalidParameter"
        for key in ("person_image_url", "top_garment_url", "bottom_garment_url"):
            if inputs.get(key) and check_url(inputs[key]):
                return "InvalidURL"
        return None

    def check_refiner(inputs: dict[str, Any], parameters: dict[str, Any]) -> str | None:
        for key in ("top_garment_url", "person_image_url", "coarse_image_url"):
            if not inputs.get(key):
                return "InvalidParameter"
            if check_url(inputs[key]):
                return "InvalidURL"
        if parameters.get("gender") not in ("woman", "man"):
            return "InvalidParameter"
        return None

    def check_oss(urls: list[str], model: str) -> str | None:
        if request.headers.get("X-DashScope-OssResourceResolve", "").lower() != "enable":
            return "InvalidURL"
        now = store.clock.now()
        with store.lock:
            for url in urls:
                upload = store.uploads.get(url[len("oss://"):])
                if upload is None or upload.model != model or upload.account != account():
                    return "InvalidURL"
                if now - upload.created > UPLOAD_LIFETIME:
                    return "InvalidURL"
        return None

    # -- parsing (synchronous) ---------------------------------------------------------------------
    @app.post(PROCESS)
    def parse_image() -> Response:
        if request.headers.get("X-DashScope-Async", "").lower() == "enable":
            return fail("AsyncNotSupported")
        body = model_body((PARSING,))
        if isinstance(body, Response):
            return body
        if not store.limiter.allow(("parsing", g.api_key), config.submit_rate):
            return fail("Throttling.RateQuota")
        inputs = body.get("input")
        if not isinstance(inputs, dict) or not inputs:
            return fail("BadRequest.EmptyInput")
        clothes = (body.get("parameters") or {}).get("clothes_type")
        if clothes not in CLOTHES_TYPES:
            return fail("InvalidParameter.ClothesType")
        url = inputs.get("image_url")
        if check_url(url):
            return fail("InvalidURL")
        try:
            image = load(store, url)
        except InputError as err:
            return fail(err.code)
        with store.lock:
            store.stats["parsing"] += 1
        from ..engine.parsing import extract_clothes  # the engine loads its models on first use

        parsing, crops, boxes = [], [], []
        for kind in clothes:
            part = extract_clothes(image, kind)
            if part is None:
                parsing.append(None), crops.append(None), boxes.append(None)
                continue
            rgba_png, rgb_png, box = part
            parsing.append(base_url() + store.result_path(store.put_result(rgba_png, "image/png")[0]))
            crops.append(base_url() + store.result_path(store.put_result(rgb_png, "image/png")[0]))
            boxes.append(box)
        return reply({"output": {"parsing_img_url": parsing, "crop_img_url": crops, "bbox": boxes}, "usage": {"image_count": 1}})

    # -- tasks -------------------------------------------------------------------------------------
    def visible(task_id: str) -> Task | None:
        with store.lock:
            task = store.tasks.get(task_id)
        if task is None or task.account != account():
            return None
        if task.end_time is not None and store.clock.now() - task.end_time > DAY:
            return None  # kept 24 h after completion, then forgotten
        return task

    @app.get(f"{API}/tasks/<task_id>")
    def query(task_id: str) -> Response:
        with store.lock:
            store.stats["queries"] += 1
        if not store.limiter.allow(("query", g.api_key), config.query_rate):
            with store.lock:
                store.stats["throttled"] += 1
            return fail("Throttling")
        broken = request_fault("query")
        if broken is not None:
            return broken
        task = visible(task_id)
        if task is None:
            return reply({"output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        with store.lock:
            result_url = base_url() + store.result_path(task.result) if task.result in store.results else None
            body: dict[str, Any] = {"output": task.output(store.clock, result_url)}
            if task.status == "SUCCEEDED":
                body["usage"] = {"image_count": 1}
        return reply(body)

    @app.post(f"{API}/tasks/<task_id>/cancel")
    def cancel(task_id: str) -> Response:
        with store.lock:
            store.stats["cancels"] += 1
        if not store.limiter.allow(("cancel", g.api_key), config.query_rate):
            return fail("Throttling")
        task = visible(task_id)
        if task is None or not scheduler.cancel(task):
            return fail("UnsupportedOperation")
        return reply({})

    @app.get(f"{API}/tasks")
    def list_tasks() -> Response:
        with store.lock:
            store.stats["lists"] += 1
        if not store.limiter.allow(("list", g.api_key), config.query_rate):
            return fail("Throttling")
        args = request.args
        try:
            start = _parse_compact(args.get("start_time"))
            end = _parse_compact(args.get("end_time"))
            page_no = max(1, int(args.get("page_no", 1)))
            page_size = max(1, min(100, int(args.get("page_size", 10))))
        except ValueError:
            return fail("InvalidParameter")
        now = store.clock.now()
        if start is None and end is None:
            start, end = now - DAY, now
        elif start is None:
            start = end - DAY
        elif end is None:
            end = start + DAY
        if end - start > DAY or end < start:
            return fail("InvalidParameter")
        with store.lock:
            tasks = [t for t in store.tasks.values() if t.account == account() and start <= t.submit_time <= end]
        for name, attr in (("task_id", "task_id"), ("model_name", "model"), ("status", "status")):
            if args.get(name):
                tasks = [t for t in tasks if getattr(t, attr) == args[name]]
        tasks.sort(key=lambda t: t.submit_time, reverse=True)
        page = tasks[(page_no - 1) * page_size : page_no * page_size]
        data = []
        for t in page:
            item = {
                "api_key_id": account(), "caller_parent_id": account(), "caller_uid": account(),
                "gmt_create": int(t.submit_time * 1000), "start_time": int((t.scheduled_time or t.submit_time) * 1000),
                "model_name": t.model, "region": "cn-beijing", "request_id": t.request_id, "status": t.status,
                "task_id": t.task_id,
                "user_api_unique_key": f"apikey:v1:aigc:image2image:image-synthesis:{t.model}",
            }
            if t.end_time is not None:
                item["end_time"] = int(t.end_time * 1000)
            data.append(item)
        return reply({"total": len(tasks), "total_page": max(1, math.ceil(len(tasks) / page_size)),
                      "page_no": page_no, "page_size": page_size, "data": data})

    # -- temporary uploads -------------------------------------------------------------------------
    @app.get(f"{API}/uploads")
    def get_policy() -> Response:
        if request.args.get("action") != "getPolicy":
            return fail("InvalidParameter")
        model = request.args.get("model", "")
        if model not in MODELS:
            return fail("ModelNotExist")
        if not store.limiter.allow(("policy", g.api_key, model), config.policy_rate):
            return fail("Throttling.RateQuota")
        expires = store.clock.now() + POLICY_LIFETIME
        upload_dir = f"dashscope-instant/{account()}/{datetime.now(BEIJING):%Y-%m-%d}/{store.new_id()}"
        policy = base64.b64encode(json.dumps({"expiration": expires, "dir": upload_dir}).encode()).decode()
        signature = base64.b64encode(hmac.new(store.secret, policy.encode(), hashlib.sha1).digest()).decode()
        with store.lock:
            store.policies[policy] = (account(), model, expires)
        return reply({"data": {
            "policy": policy, "signature": signature, "upload_dir": upload_dir, "upload_host": base_url() + "/_oss",
            "expire_in_seconds": POLICY_LIFETIME, "max_file_size_mb": 100, "capacity_limit_mb": 999999999,
            "oss_access_key_id": "LTAI-sandbox", "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true",
        }})

    @app.post("/_oss")
    def oss_upload() -> Response:
        form = request.form
        policy = form.get("policy", "")
        expected = base64.b64encode(hmac.new(store.secret, policy.encode(), hashlib.sha1).digest()).decode()
        with store.lock:
            known = store.policies.get(policy)
        if known is None or not hmac.compare_digest(form.get("Signature", ""), expected):
            return Response("<Error><Code>AccessDenied</Code></Error>", 403, content_type="application/xml")
        owner, model, expires = known
        if store.clock.now() > expires:
            return Response("<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired."
                            "</Message></Error>", 403, content_type="application/xml")
        key = form.get("key", "")
        upload_dir = json.loads(base64.b64decode(policy))["dir"]
        file = request.files.get("file")
        if file is None or not key.startswith(upload_dir + "/"):
            return Response("<Error><Code>InvalidArgument</Code></Error>", 400, content_type="application/xml")
        with store.lock:
            if key in store.uploads and form.get("x-oss-forbid-overwrite") == "true":
                return Response("<Error><Code>FileAlreadyExists</Code></Error>", 409, content_type="application/xml")
            store.uploads[key] = Upload(file.read(), model, owner, store.clock.now())
            store.stats["uploads"] += 1
        return Response("", status=int(form.get("success_action_status", 204) or 204))

    # -- results -----------------------------------------------------------------------------------
    @app.get("/_results/<name>")
    def result(name: str) -> Response:
        try:
            expires = int(request.args.get("Expires", "0"))
        except ValueError:
            expires = 0
        with store.lock:
            entry = store.results.get(name)
        if entry is None or not hmac.compare_digest(request.args.get("Signature", ""), store.sign(name, expires)) \
                or expires != entry[1]:
            return Response("<Error><Code>AccessDenied</Code></Error>", 403, content_type="application/xml")
        if store.clock.now() > expires:
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>", 403,
                            content_type="application/xml")
        return Response(entry[0], content_type=entry[2])

    # -- the other APIs: blueprints sharing the store, the limits and the faults ---------------------
    app.register_blueprint(image_edit.blueprint(store, config, scheduler.random, reply, fail, request_fault, account,
                                                base_url))
    app.register_blueprint(fashn.blueprint(store, config, scheduler.random, request_fault, base_url))

    # -- introspection for tests -------------------------------------------------------------------
    @app.get("/_sandbox/stats")
    def stats() -> Response:
        with store.lock:
            body = {k: (dict(v) if hasattr(v, "items") else v) for k, v in store.stats.items()}
            body["tasks"] = dict(_count(t.status for t in store.tasks.values()))
            body["faults_armed"] = store.faults.describe()
            body["clock_offset"] = store.clock.offset
        return reply(body)

    @app.get("/_sandbox/tasks")
    def all_tasks() -> Response:
        """Every task with its inputs and times (a run's analysis: which job had how many accepted tasks)."""
        with store.lock:
            tasks = [{"task_id": t.task_id, "account": t.account, "model": t.model, "status": t.status,
                      "code": t.code, "inputs": t.inputs, "submit_time": t.submit_time, "end_time": t.end_time}
                     for t in store.tasks.values()]
        return reply({"tasks": tasks})

    @app.post("/_sandbox/reset")
    def reset() -> Response:
        store.reset()
        store.faults.replace(config.faults)
        return reply({})

    @app.post("/_sandbox/clock")
    def clock() -> Response:
        store.clock.advance(float((request.get_json(silent=True) or {}).get("advance", 0)))
        return reply({"offset": store.clock.offset})

    @app.post("/_sandbox/faults")
    def set_faults() -> Response:
        try:
            store.faults.replace((request.get_json(silent=True) or {}).get("spec", ""))
        except ValueError as err:
            return reply({"code": "InvalidParameter", "message": str(err)}, 400)
        return reply({"faults": store.faults.describe()})

    @app.get("/_sandbox/health")
    def health() -> Response:
        return reply({"ok": True})

    return app


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _parse_compact(value: str | None) -> float | None:
    """``YYYYMMDDhhmmss`` (Beijing time) → epoch seconds."""
    if not value:
        return None
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
