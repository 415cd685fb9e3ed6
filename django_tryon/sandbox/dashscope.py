"""DashScope's model calls: try-on and refiner tasks (``image-synthesis``, asynchronous) and the
parsing model (``image-process``, synchronous), with the checks of the provider's pages (docs/backends/dashscope.rst) in the service's order."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, request

from .context import Sandbox
from .inputs import InputError, check, fetch
from .state import PARSING, REFINER, TRYON_MODELS, UPLOAD_LIFETIME, Task

API = "/api/v1"
SUBMIT = f"{API}/services/aigc/image2image/image-synthesis"
PROCESS = f"{API}/services/vision/image-process/process"
CLOTHES_TYPES = (["upper"], ["lower"], ["dress"], ["upper", "lower"])


def blueprint(sandbox: Sandbox) -> Blueprint:
    """``POST …/image-synthesis`` and ``POST …/image-process/process``."""
    api = Blueprint("dashscope", __name__)
    store, config, fail = sandbox.store, sandbox.config, sandbox.fail

    @api.post(SUBMIT)
    def submit() -> Response:
        sandbox.count("submits")
        if request.headers.get("X-DashScope-Async", "").lower() != "enable":
            return fail("SyncNotSupported")
        broken = sandbox.request_fault("submit")
        if broken is not None:
            return broken
        body = model_body(sandbox, (*TRYON_MODELS, REFINER))
        if isinstance(body, Response):
            return body
        model = body["model"]
        if not sandbox.allow(("submit", g.api_key, model), config.submit_rate):
            sandbox.count("throttled", "throttled_submits")
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
        oss = [
            url for key, url in inputs.items() if key.endswith("_url") and str(url or "").startswith("oss://")
        ]
        if oss:
            problem = check_oss(sandbox, oss, model)
            if problem:
                return fail(problem)
        task = Task(
            task_id=store.new_id(),
            account=sandbox.account(),
            model=model,
            inputs={k: v for k, v in inputs.items() if k.endswith("_url") and v},
            parameters=parameters,
            oss_resolve=bool(oss),
            submit_time=store.clock.now(),
            duration=config.duration(model, sandbox.random),
            request_id=g.request_id,
            fault=sandbox.task_fault(),
        )
        if not sandbox.scheduler.submit(task, reject_when_full=config.concurrency_policy == "reject"):
            sandbox.count("throttled", "throttled_submits")
            return fail("Throttling.AllocationQuota")
        with store.lock:
            store.tasks[task.task_id] = task
            store.stats["accepted"] += 1
        return sandbox.reply({"output": {"task_id": task.task_id, "task_status": "PENDING"}})

    @api.post(PROCESS)
    def parse_image() -> Response:
        if request.headers.get("X-DashScope-Async", "").lower() == "enable":
            return fail("AsyncNotSupported")
        body = model_body(sandbox, (PARSING,))
        if isinstance(body, Response):
            return body
        if not sandbox.allow(("parsing", g.api_key), config.submit_rate):
            return fail("Throttling.RateQuota")
        inputs = body.get("input")
        if not isinstance(inputs, dict) or not inputs:
            return fail("BadRequest.EmptyInput")
        clothes = (body.get("parameters") or {}).get("clothes_type")
        if clothes not in CLOTHES_TYPES:
            return fail("InvalidParameter.ClothesType")
        url = inputs.get("image_url", "")
        if check_url(url):
            return fail("InvalidURL")
        try:
            image = check(fetch(store, url)).content
        except InputError as err:
            return fail(err.code)
        sandbox.count("parsing")
        return sandbox.reply({"output": _parse(sandbox, image, clothes), "usage": {"image_count": 1}})

    return api


def _parse(sandbox: Sandbox, image: bytes, clothes: list[str]) -> dict[str, list[Any]]:
    """The parsing model's output: per clothes type, the cut-out, the crop and its box (or None)."""
    from ..engine.parsing import extract_clothes  # the engine loads its models on first use

    store, base = sandbox.store, sandbox.base_url()
    parsing: list[str | None] = []
    crops: list[str | None] = []
    boxes: list[list[int] | None] = []
    for kind in clothes:
        part = extract_clothes(image, kind)
        if part is None:
            parsing.append(None)
            crops.append(None)
            boxes.append(None)
            continue
        rgba_png, rgb_png, box = part
        parsing.append(base + store.result_path(store.put_result(rgba_png, "image/png")[0]))
        crops.append(base + store.result_path(store.put_result(rgb_png, "image/png")[0]))
        boxes.append(box)
    return {"parsing_img_url": parsing, "crop_img_url": crops, "bbox": boxes}


def model_body(sandbox: Sandbox, models: tuple[str, ...]) -> dict[str, Any] | Response:
    """The JSON body, checked in the service's order: valid JSON object, ``model`` present and known."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        return sandbox.fail("BodyInvalid")
    if not isinstance(body, dict):
        return sandbox.fail("BodyInvalid")
    if not body.get("model"):
        return sandbox.fail("BadRequest.EmptyModel")
    if body["model"] not in models:
        return sandbox.fail("ModelNotExist")
    return body


def check_url(value: Any) -> str | None:
    """``InvalidURL`` unless ``value`` is an http(s) or ``oss://`` URL."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "oss://")):
        return "InvalidURL"
    return None


def check_tryon(inputs: dict[str, Any], parameters: dict[str, Any]) -> str | None:
    """The error code of an aitryon request's inputs and parameters (its OutfitAnyone API page), or None."""
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
    """The error code of an aitryon-refiner request's inputs and parameters (its refiner API page), or None."""
    for key in ("top_garment_url", "person_image_url", "coarse_image_url"):
        if not inputs.get(key):
            return "InvalidParameter"
        if check_url(inputs[key]):
            return "InvalidURL"
    if parameters.get("gender") not in ("woman", "man"):
        return "InvalidParameter"
    return None


def check_oss(sandbox: Sandbox, urls: list[str], model: str) -> str | None:
    """``InvalidURL`` unless every ``oss://`` URL was uploaded here for this account and model, within 48 h,
    and the request asks for them to be resolved."""
    if request.headers.get("X-DashScope-OssResourceResolve", "").lower() != "enable":
        return "InvalidURL"
    store, account = sandbox.store, sandbox.account()
    now = store.clock.now()
    with store.lock:
        for url in urls:
            upload = store.uploads.get(url[len("oss://") :])
            if upload is None or upload.model != model or upload.account != account:
                return "InvalidURL"
            if now - upload.created > UPLOAD_LIFETIME:
                return "InvalidURL"
    return None
