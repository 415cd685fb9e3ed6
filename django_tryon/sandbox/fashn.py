"""A FASHN-compatible API in the sandbox, under its own prefix and with its own keys: ``/fashn/v1/...``.

``POST /fashn/v1/run`` (``{"model_name": "tryon-v1.6", "inputs": {...}}`` → ``{"id", "error"}``) and
``GET /fashn/v1/status/{id}`` (``starting | in_queue | processing | completed | failed``, ``output``
URLs, ``error: {name, message}``), as FASHN documents them and its Python SDK (``fashn``) sends them
(point the SDK's ``base_url`` at ``http://<sandbox>/fashn``). API errors are ``{"error": NAME,
"message": …}`` with FASHN's names (``UnauthorizedAccess``, ``BadRequest``, ``NotFound``,
``RateLimitExceeded``, ``ConcurrencyLimitExceeded``, ``OutOfCredits``). Pictures come from the offline
engine (``--render copy``: the model image). Faults: ``fashn=429|outofcredits|500|…`` on ``/run``, and
``task=fail:<ErrorName>`` for the prediction itself.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, request

from .context import Sandbox
from .inputs import InputError, check, fetch
from .state import Config, Store

PREFIX = "/fashn/v1"
MODELS = ("tryon-v1.6",)
CATEGORIES = ("auto", "tops", "bottoms", "one-pieces")
#: Our input problems → FASHN's runtime error names.
RUNTIME_ERRORS = {
    "InvalidURL": "ImageLoadError",
    "InvalidInputLength": "ImageLoadError",
    "InvalidPerson": "PoseError",
    "InvalidParameter": "InputValidationError",
}


@dataclass
class Prediction:
    id: str
    account: str
    inputs: dict[str, Any]
    created: float
    status: str = "starting"
    output: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None


def blueprint(sandbox: Sandbox) -> Blueprint:
    """``/fashn/v1/run`` and ``/fashn/v1/status/<id>``, sharing the store, limits and faults."""
    api = Blueprint("fashn", __name__)
    store, config, rnd = sandbox.store, sandbox.config, sandbox.random
    predictions: dict[str, Prediction] = {}
    running: dict[str, int] = {}
    lock = threading.Lock()

    def answer(body: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def error(name: str, message: str, status: int) -> Response:
        return answer({"error": name, "message": message}, status)

    def account() -> str | None:
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return store.account_of(key) if key in config.fashn_keys else None

    @api.post(f"{PREFIX}/run")
    def run() -> Response:
        owner = account()
        if owner is None:
            return error("UnauthorizedAccess", "Invalid or missing API key.", 401)
        broken = sandbox.request_fault("fashn")
        if broken is not None:
            return _translate(broken)
        body = request.get_json(silent=True)
        if (
            not isinstance(body, dict)
            or body.get("model_name") not in MODELS
            or not isinstance(body.get("inputs"), dict)
        ):
            return error(
                "BadRequest",
                "model_name must be one of: " + ", ".join(MODELS) + "; inputs must be an object.",
                400,
            )
        inputs = body["inputs"]
        if not inputs.get("model_image") or not inputs.get("garment_image"):
            return error("BadRequest", "inputs.model_image and inputs.garment_image are required.", 400)
        if inputs.get("category", "auto") not in CATEGORIES:
            return error("BadRequest", f"category must be one of: {', '.join(CATEGORIES)}.", 400)
        if not store.limiter.allow(("fashn", owner), config.submit_rate):
            return error("RateLimitExceeded", "Too many requests.", 429)
        with lock:
            if running.get(owner, 0) >= config.concurrency:
                with store.lock:
                    store.stats["throttled_submits"] += 1
                return error("ConcurrencyLimitExceeded", "Too many predictions in progress.", 429)
            running[owner] = running.get(owner, 0) + 1
            prediction = Prediction(uuid.uuid4().hex, owner, dict(inputs), store.clock.now())
            predictions[prediction.id] = prediction
        with store.lock:
            store.stats["fashn_runs"] += 1
        fault = store.faults.take("task")
        threading.Thread(target=work, args=(prediction, sandbox.base_url(), fault), daemon=True).start()
        return answer({"id": prediction.id, "error": None})

    def work(prediction: Prediction, base: str, fault: Any) -> None:
        started = time.monotonic()
        try:
            prediction.status = "in_queue"
            time.sleep(min(0.05, config.duration("tryon-v1.6", rnd) * 0.05))
            prediction.status = "processing"
            if fault is not None and fault.what == "fail":
                raise InputError(fault.arg or "PipelineError")
            person = _load(store, prediction.inputs["model_image"])
            garment = _load(store, prediction.inputs["garment_image"])
            picture = _render(config, person, garment, prediction.inputs.get("category", "auto"))
            remaining = started + config.duration("tryon-v1.6", rnd) - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
            if prediction.inputs.get("return_base64"):
                prediction.output = ["data:image/png;base64," + base64.b64encode(picture).decode()]
            else:
                name, _ = store.put_result(picture, "image/png")
                prediction.output = [base + store.result_path(name)]
            prediction.status = "completed"
        except InputError as err:
            prediction.error = {
                "name": RUNTIME_ERRORS.get(err.code, err.code),
                "message": err.message or err.code,
            }
            prediction.status = "failed"
        except Exception as err:  # noqa: BLE001 - a sandbox bug still ends the prediction
            prediction.error = {"name": "PipelineError", "message": f"sandbox error: {type(err).__name__}"}
            prediction.status = "failed"
        finally:
            with lock:
                running[prediction.account] -= 1

    @api.get(f"{PREFIX}/status/<prediction_id>")
    def status(prediction_id: str) -> Response:
        owner = account()
        if owner is None:
            return error("UnauthorizedAccess", "Invalid or missing API key.", 401)
        prediction = predictions.get(prediction_id)
        if prediction is None or prediction.account != owner:
            return error("NotFound", "Prediction not found.", 404)
        with store.lock:
            store.stats["fashn_queries"] += 1
        return answer(
            {
                "id": prediction.id,
                "status": prediction.status,
                "output": prediction.output if prediction.status == "completed" else None,
                "error": prediction.error,
            }
        )

    return api


def _translate(broken: Response) -> Response:
    """A DashScope-style injected fault, answered in FASHN's words."""
    names = {429: "RateLimitExceeded", 400: "BadRequest", 402: "OutOfCredits", 403: "OutOfCredits"}
    try:
        code = json.loads(broken.get_data() or b"{}").get("code", "")
    except ValueError:
        return broken  # a dropped connection or a non-JSON page stays as it is
    if code == "Arrearage":
        return Response(
            json.dumps({"error": "OutOfCredits", "message": "Not enough credits."}),
            status=429,
            content_type="application/json",
        )
    name = names.get(broken.status_code, "InternalServerError")
    return Response(
        json.dumps({"error": name, "message": code}),
        status=broken.status_code,
        content_type="application/json",
    )


def _load(store: Store, value: str) -> bytes:
    if value.startswith("data:"):
        try:
            data = base64.b64decode(value.split(";base64,", 1)[1], validate=True)
        except (IndexError, ValueError):
            raise InputError("InvalidURL") from None
    else:
        data = fetch(store, value)
    return check(data).content


def _render(config: Config, person: bytes, garment: bytes, category: str) -> bytes:
    import io

    from PIL import Image

    if config.render == "copy":
        picture = Image.open(io.BytesIO(person)).convert("RGB")
    else:
        from ..engine import RenderError, analyze_garment, check_person, render_tryon

        if config.check_person and not check_person(person).ok:
            raise InputError("InvalidPerson")
        kind = {"tops": "top", "bottoms": "bottom", "one-pieces": "one_piece"}.get(category)
        analysis = analyze_garment(garment, kind=kind)
        try:
            if analysis.kind == "bottom":
                picture = render_tryon(person, None, analysis)
            else:
                picture = render_tryon(person, analysis, None, top_kind=analysis.kind)
        except RenderError as err:
            raise InputError(err.code if err.code in RUNTIME_ERRORS else "InvalidParameter") from None
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()
