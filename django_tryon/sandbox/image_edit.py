"""The sandbox's Qwen image-editing endpoint (synchronous): ``POST /api/v1/services/aigc/multimodal-generation/generation``.

Wire-compatible with the vendor's documentation (the Qwen image-editing API page): ``input.messages[0].content`` holds 1–3
``{"image": URL or data URI}`` items and one ``{"text": …}``; the answer's
``output.choices[0].message.content`` lists ``{"image": URL}`` items (URLs valid 24 h). The request waits
for the picture. A look-alike cannot read the instruction: the picture is made by the offline engine,
which takes the image with a body as the person and the others as the garments (the kind of each read
from the flat-lay), or with ``--render copy`` returns the first image.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

from flask import Blueprint, Response, g, request

from .context import Sandbox
from .inputs import InputError, check, fetch
from .state import Config, Store

PATH = "/api/v1/services/aigc/multimodal-generation/generation"
MODEL_PREFIXES = ("qwen-image-edit", "qwen-image-2")
MAX_IMAGES = 3


class Slots:
    """Generations in flight per account and model, with the service's concurrency limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy: dict[tuple[str, str], int] = {}
        self.changed = threading.Condition()

    def take(self, key: tuple[str, str], *, wait: bool) -> bool:
        with self.changed:
            while self.busy.get(key, 0) >= self.limit:
                if not wait:
                    return False
                self.changed.wait()
            self.busy[key] = self.busy.get(key, 0) + 1
            return True

    def give(self, key: tuple[str, str]) -> None:
        with self.changed:
            self.busy[key] -= 1
            self.changed.notify_all()


def blueprint(sandbox: Sandbox) -> Blueprint:
    """The endpoint, sharing the application's store, clock, limits, faults and reply helpers."""
    api = Blueprint("image_edit", __name__)
    store, config, fail = sandbox.store, sandbox.config, sandbox.fail
    slots = Slots(config.concurrency)

    @api.post(PATH)
    def generate() -> Response:
        sandbox.count("generations")
        broken = sandbox.request_fault("generate")
        if broken is not None:
            return broken
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return fail("BodyInvalid")
        if not isinstance(body, dict):
            return fail("BodyInvalid")
        model = body.get("model")
        if not model:
            return fail("BadRequest.EmptyModel")
        if not str(model).startswith(MODEL_PREFIXES):
            return fail("ModelNotExist")
        images, text = _content(body)
        if not images or len(images) > MAX_IMAGES or not text:
            return fail("InvalidParameter")
        if not sandbox.allow(("submit", g.api_key, model), config.submit_rate):
            sandbox.count("throttled", "throttled_submits")
            return fail("Throttling.RateQuota")
        key = (sandbox.account(), str(model))
        if not slots.take(key, wait=config.concurrency_policy != "reject"):
            sandbox.count("throttled", "throttled_submits")
            return fail("Throttling.AllocationQuota")
        started = time.monotonic()
        try:
            sandbox.count("accepted")
            try:
                pictures = [_load(store, url) for url in images]
                result = _render(store, config, pictures, (body.get("parameters") or {}).get("size"))
            except InputError as err:
                return fail(err.code, err.message)
            remaining = started + config.duration(str(model), sandbox.random) - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        finally:
            slots.give(key)
        name, _ = store.put_result(result, "image/png")
        url = sandbox.base_url() + store.result_path(name)
        return sandbox.reply(
            {
                "output": {
                    "choices": [
                        {
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": [{"image": url}]},
                        }
                    ]
                },
                "usage": {"image_count": 1},
            }
        )

    return api


def _content(body: dict[str, Any]) -> tuple[list[str], str]:
    messages = (body.get("input") or {}).get("messages") if isinstance(body.get("input"), dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return [], ""
    content = messages[0].get("content")
    if not isinstance(content, list):
        return [], ""
    images = [str(item["image"]) for item in content if isinstance(item, dict) and item.get("image")]
    text = " ".join(str(item["text"]) for item in content if isinstance(item, dict) and item.get("text"))
    return images, text


def _load(store: Store, url: str) -> bytes:
    """An input image from a ``data:`` URI or a URL, checked like the service checks it."""
    if url.startswith("data:"):
        if ";base64," not in url:
            raise InputError("InvalidParameter")
        try:
            data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        except ValueError:
            raise InputError("InvalidParameter") from None
    else:
        data = fetch(store, url)
    return check(data).content


def _render(store: Store, config: Config, pictures: list[bytes], size: Any) -> bytes:
    """The person (the image with a body) wearing the other images' garments; PNG bytes."""
    from PIL import Image

    if config.render == "copy":
        picture = Image.open(io.BytesIO(pictures[0])).convert("RGB")
    else:
        from ..engine import RenderError, analyze_garment, check_person, render_tryon

        person_index = next((i for i, data in enumerate(pictures) if check_person(data).ok), None)
        if person_index is None:
            raise InputError("InvalidParameter", "No image shows a person to dress.")
        garments = [analyze_garment(data) for i, data in enumerate(pictures) if i != person_index]
        top = next((g for g in garments if g.kind in ("top", "one_piece")), None)
        bottom = next((g for g in garments if g.kind == "bottom"), None)
        try:
            picture = render_tryon(pictures[person_index], top, bottom, top_kind=top.kind if top else None)
        except RenderError as err:
            raise InputError("InvalidParameter", str(err)) from None
    if isinstance(size, str) and "*" in size:
        width, height = (int(v) for v in size.split("*", 1))
        picture = picture.resize((width, height))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()
