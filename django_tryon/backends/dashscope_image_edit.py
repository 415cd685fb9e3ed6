"""DashScope's Qwen image-editing models as a try-on backend: the successors of ``aitryon``.

``qwen-image-edit-plus`` (default), ``qwen-image-edit``, ``qwen-image-edit-max``, ``qwen-image-2.0`` and
later names take up to three images and an instruction over the **synchronous** endpoint
``POST /services/aigc/multimodal-generation/generation``. The person photo comes first, then the top (or
one-piece), then the bottom, each as a ``data:`` URI (no public URL and no provider upload needed); the
instruction says what to keep. The call returns the picture's URL (valid 24 h): there is no task to poll,
so the pipeline stores the result in the same step (``SubmitResult.finished``).
"""

from __future__ import annotations

import base64
import io
import math
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar

from PIL import Image

from ..exceptions import TryOnConfigurationError, TryOnRetryableError
from .base import Capabilities, PollResult, RemoteState, SubmitResult, TryOnInput
from .dashscope import DashScopeHTTPBackend

GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
#: Model families this backend speaks to (a later name of the same family is accepted as is).
MODEL_PREFIXES = ("qwen-image-edit", "qwen-image-2")
#: Output sides allowed by the models (pixels).
MIN_SIDE, MAX_SIDE = 512, 2048
#: ``resolution`` → ``size`` (width*height); -1 keeps the person photo's aspect ratio.
SIZES = {1024: (576, 1024), 1280: (720, 1280)}

#: The try-on instructions, by language and garment slots. Kept in one place and tested: the wording is
#: the prompt engineering (keep the person, keep the garment, keep what is not replaced).
INSTRUCTIONS = {
    "en": {
        "intro": "Image 1 is a photo of a person. ",
        ("top",): "Image 2 is a top. Dress the person in this top",
        ("bottom",): "Image 2 is a bottom (trousers or a skirt). Dress the person in this bottom",
        ("one_piece",): "Image 2 is a one-piece garment (a dress or a jumpsuit). Dress the person in it",
        ("top", "bottom"): "Image 2 is a top and image 3 a bottom. Dress the person in both",
        "keep_lower": ", keeping what they wear on the lower body as it is",
        "keep_upper": ", keeping what they wear on the upper body as it is",
        "rules": ". Keep the person's face, hair, skin, body shape, pose, hands and the background exactly as "
        "they are. The garment keeps its exact colour, pattern, print, logo, fabric and cut, and fits "
        "the body naturally, with realistic folds, shadows and lighting. One photorealistic photo.",
        "negative": "changed face, changed pose, extra limbs, distorted hands, changed background, "
        "garment colour or pattern changed, text, watermark, low quality, blurry",
    },
    "zh": {
        "intro": "图1是一张人物照片。",
        ("top",): "图2是一件上衣。让图1中的人物穿上这件上衣",
        ("bottom",): "图2是一件下装（裤子或裙子）。让图1中的人物穿上这件下装",
        ("one_piece",): "图2是一件连体服装（连衣裙或连体裤）。让图1中的人物穿上它",
        ("top", "bottom"): "图2是一件上衣，图3是一件下装。让图1中的人物同时穿上这两件",
        "keep_lower": "，下半身原有的衣着保持不变",
        "keep_upper": "，上半身原有的衣着保持不变",
        "rules": "。人物的脸、发型、肤色、体型、姿势、双手和背景必须完全保持不变。服装的颜色、图案、印花、标志、"
        "面料和版型与原图完全一致，自然贴合身体，褶皱、阴影和光线真实。输出一张写实照片。",
        "negative": "改变面部，改变姿势，多余肢体，手部变形，改变背景，服装颜色或图案改变，文字，水印，低质量，模糊",
    },
}


def instruction(slots: tuple[str, ...], language: str = "zh") -> tuple[str, str]:
    """(instruction, negative prompt) for the garments given: ``("top",)``, ``("one_piece",)``…"""
    words = INSTRUCTIONS["zh" if language.lower().startswith("zh") else "en"]
    text = words["intro"] + words[slots]
    if slots == ("top",):
        text += words["keep_lower"]
    elif slots == ("bottom",):
        text += words["keep_upper"]
    return text + words["rules"], words["negative"]


def output_size(person: bytes | None, resolution: int) -> tuple[int, int] | None:
    """The ``size`` to ask for: the provider's fixed sizes, or the person photo's aspect within 512–2048 px."""
    if resolution in SIZES:
        return SIZES[resolution]
    if person is None:
        return None
    try:
        with Image.open(io.BytesIO(person)) as image:
            width, height = image.size
    except (OSError, ValueError):  # not an image: the provider will say so in its own words
        return None
    scale = min(MAX_SIDE / max(width, height), 1.0)
    scale = max(scale, MIN_SIDE / min(width, height))
    return (min(MAX_SIDE, math.floor(width * scale)), min(MAX_SIDE, math.floor(height * scale)))


def data_uri(content: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(content).decode()}"


def data_uri_bytes(uri: str) -> bytes | None:
    if not uri.startswith("data:") or ";base64," not in uri:
        return None
    return base64.b64decode(uri.split(";base64,", 1)[1])


class DashScopeImageEditBackend(DashScopeHTTPBackend):
    """Try-on with the Qwen image-editing models (synchronous: one request per try-on, no polling)."""

    name = "dashscope-image-edit"
    default_options: ClassVar[dict[str, Any]] = {
        **DashScopeHTTPBackend.default_options,
        "model": "qwen-image-edit-plus",
        "timeout": (5.0, 120.0),  # a generation takes tens of seconds: the read timeout covers it
        "language": "zh",  # the instruction's language ("zh" or "en")
        "n": 1,
        "seed": None,
        "prompt_extend": False,  # the model rewriting our careful instruction does not help a try-on
        "watermark": False,
        "negative_prompt": None,  # None: the instruction set's own
        "max_concurrency": 2,
        "submit_rate": 2.0,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.model.startswith(MODEL_PREFIXES):
            raise TryOnConfigurationError(
                f"DashScopeImageEditBackend speaks to the Qwen image-editing models ({', '.join(MODEL_PREFIXES)}…), "
                f"not {self.model!r}."
            )

    @property
    def capabilities(self) -> Capabilities:
        read_timeout = (
            self.http.timeout[1] if isinstance(self.http.timeout, tuple) else float(self.http.timeout)
        )
        return Capabilities(
            max_concurrency=int(self.options["max_concurrency"]),
            submit_rate=float(self.options["submit_rate"]),
            typical_duration=20.0,
            price_per_image=Decimal("0"),
            currency="CNY",
            supports_upload=True,
            prefers_upload=True,
            longest_request=float(read_timeout),
        )

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        """Inputs travel inside the request as ``data:`` URIs: nothing is stored at the provider."""
        return data_uri(content, content_type)

    def build_payload(self, request: TryOnInput, slots: tuple[str, ...]) -> dict[str, Any]:
        text, negative = instruction(slots, self.options["language"])
        images = [
            url
            for url in (request.person_image_url, request.top_garment_url, request.bottom_garment_url)
            if url
        ]
        parameters: dict[str, Any] = {
            "n": int(self.options["n"]),
            "watermark": bool(self.options["watermark"]),
            "prompt_extend": bool(self.options["prompt_extend"]),
            "negative_prompt": self.options["negative_prompt"] or negative,
        }
        size = output_size(data_uri_bytes(request.person_image_url), request.resolution)
        if size is not None:
            parameters["size"] = f"{size[0]}*{size[1]}"
        if self.options["seed"] is not None:
            parameters["seed"] = int(self.options["seed"])
        content = [{"image": url} for url in images] + [{"text": text}]
        return {
            "model": self.model,
            "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": parameters,
        }

    def submit(self, request: TryOnInput) -> SubmitResult:
        top = "one_piece" if request.top_is_one_piece else "top"
        slots = tuple(
            s for s, url in ((top, request.top_garment_url), ("bottom", request.bottom_garment_url)) if url
        )
        started = datetime.now(timezone.utc)
        _, body = self._call(
            "POST", GENERATION_PATH, json=self.build_payload(request, slots), headers=self._headers()
        )
        choices = (body.get("output") or {}).get("choices") or []
        content = ((choices[0].get("message") or {}).get("content") or []) if choices else []
        urls = [item["image"] for item in content if isinstance(item, dict) and item.get("image")]
        if not urls:
            raise TryOnRetryableError(
                "The image-editing model answered without a picture.",
                code="ProviderError",
                response_body=body,
            )
        request_id = str(body.get("request_id") or "")
        finished = PollResult(
            remote_id=request_id or uuid.uuid4().hex,
            state=RemoteState.SUCCEEDED,
            request_id=request_id,
            submitted_at=started,
            scheduled_at=started,
            ended_at=datetime.now(timezone.utc),
            result_url=urls[0],
            image_count=int((body.get("usage") or {}).get("image_count") or len(urls)),
            raw=body,
        )
        return SubmitResult(remote_id=finished.remote_id, request_id=request_id, finished=finished)

    def poll(self, remote_id: str) -> PollResult:
        """There is no task to ask about: a synchronous call is finished when it answers."""
        return PollResult(
            remote_id,
            RemoteState.UNKNOWN,
            error_code="Unknown",
            error_message="A synchronous generation has no task to poll; it was lost before its result was stored.",
        )

    def cancel(self, remote_id: str) -> bool:
        return False
