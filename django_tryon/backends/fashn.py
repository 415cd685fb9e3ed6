"""FASHN (``api.fashn.ai``): ``POST /v1/run`` with ``tryon-v1.6``, then ``GET /v1/status/{id}``.

One garment per prediction (``category`` tops, bottoms or one-pieces; a top and a bottom together need
another route). Inputs travel as ``data:`` URIs, so no public URL is needed and FASHN stores nothing
(its docs: inputs are never stored; outputs stay on its CDN 72 h, or use ``return_base64``). Runtime
errors (``PoseError``, ``ImageLoadError``, ``ContentModerationError``…) become the same stable codes as
DashScope's; ``OutOfCredits`` refuses the route (the failover chain moves on).
"""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from typing import Any, ClassVar

from ..exceptions import (
    TryOnProviderError,
    TryOnProviderRejected,
    TryOnRetryableError,
    TryOnValidationError,
)
from .base import Capabilities, PollResult, RemoteState, SubmitResult, TryOnInput
from .dashscope_image_edit import data_uri
from .http import HTTPBackend

DEFAULT_BASE_URL = "https://api.fashn.ai"
STATUS_MAP = {
    "starting": RemoteState.PENDING,
    "in_queue": RemoteState.PENDING,
    "processing": RemoteState.RUNNING,
    "completed": RemoteState.SUCCEEDED,
    "failed": RemoteState.FAILED,
    "canceled": RemoteState.CANCELED,
    "time_out": RemoteState.FAILED,
}
#: FASHN's runtime error names → our stable codes (the shopper's message comes from ours).
RUNTIME_CODES = {
    "ImageLoadError": "InvalidURL",
    "ContentModerationError": "DataInspectionFailed",
    "PoseError": "InvalidPerson",
    "InputValidationError": "InvalidParameter",
    "PipelineError": "InternalError",
    "ThirdPartyError": "InternalError",
    "3rdPartyProviderError": "InternalError",
    "InternalServerError": "InternalError",
    "PollingTimeout": "Timeout",
}
#: API-level error names that are rate limits (worth waiting for) and that refuse the account.
RATE_LIMITS = frozenset({"RateLimitExceeded", "ConcurrencyLimitExceeded"})
CATEGORIES = {"top": "tops", "bottom": "bottoms", "one_piece": "one-pieces"}
#: Seconds per mode (FASHN's figures): the typical duration. The status answer carries no times, so
#: ``poll()`` leaves ``submitted_at``/``ended_at`` empty, and ``timing`` (which learns only from jobs with
#: a provider submit time, ``remote_submitted_at``) never gets a history for FASHN: polls always probe up
#: to this duration, then come every ``POLL_INTERVAL``, and the queue's ETA uses it too.
MODE_DURATION = {"performance": 5.0, "balanced": 8.0, "quality": 15.0}


class FashnBackend(HTTPBackend):
    """FASHN virtual try-on v1.6 over its HTTP API."""

    name = "fashn"
    api_key_env = "FASHN_API_KEY"
    transient_failure_codes = frozenset({"InternalError"})
    default_options: ClassVar[dict[str, Any]] = {
        "api_key": None,  # or the FASHN_API_KEY environment variable
        "base_url": None,  # or FASHN_BASE_URL, else https://api.fashn.ai
        "model": "tryon-v1.6",
        "mode": "balanced",  # performance | balanced | quality
        "garment_photo_type": "flat-lay",  # the shop's garment images are flat-lays
        "moderation_level": None,  # conservative | permissive | none (FASHN's default when None)
        "segmentation_free": None,
        "seed": None,
        "output_format": "png",
        "return_base64": False,  # True: the picture comes in the status answer and FASHN keeps nothing
        "timeout": (5.0, 30.0),
        "max_concurrency": 6,  # your plan's limit
        "submit_rate": 10.0,
        "debug_api_requests": None,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.base_url = (
            self.options["base_url"] or os.environ.get("FASHN_BASE_URL") or DEFAULT_BASE_URL
        ).rstrip("/")
        self._init_http(self.options["debug_api_requests"])

    def __repr__(self) -> str:  # never show the key
        return f"<FashnBackend model={self.model!r} base_url={self.base_url!r}>"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_concurrency=int(self.options["max_concurrency"]),
            submit_rate=float(self.options["submit_rate"]),
            typical_duration=MODE_DURATION.get(self.options["mode"], 8.0),
            price_per_image=Decimal("0"),
            currency="credits",
            supports_upload=True,
            prefers_upload=True,
            max_garments=1,
        )

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json", **extra}

    def error_fields(self, body: dict[str, Any]) -> tuple[str, str]:
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("name") or ""), str(error.get("message") or "")
        return str(error or body.get("name") or ""), str(body.get("message") or body.get("detail") or "")

    def classify_error(self, status_code: int, code: str, message: str, **context: Any) -> TryOnProviderError:
        kwargs = {"status_code": status_code, **context}
        if code == "OutOfCredits":
            return TryOnProviderRejected(
                message or "The FASHN account is out of credits.", code="OutOfCredits", **kwargs
            )
        if status_code == 401 or code == "UnauthorizedAccess":
            return TryOnProviderRejected(
                message or "FASHN refused the API key.", code="InvalidApiKey", **kwargs
            )
        if code in RATE_LIMITS or status_code == 429:
            return TryOnRetryableError(message or code, code="Throttling", **kwargs)
        if status_code >= 500 or status_code == 408:
            return TryOnRetryableError(message or code, code="ProviderUnavailable", **kwargs)
        if status_code == 404:
            return TryOnProviderRejected(message or code, code="Unknown", **kwargs)
        return TryOnProviderRejected(message or code, code="InvalidParameter", **kwargs)

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        """Inputs travel inside the request as ``data:`` URIs (FASHN never stores them)."""
        return data_uri(content, content_type)

    def build_payload(self, request: TryOnInput) -> dict[str, Any]:
        if request.top_garment_url and request.bottom_garment_url:
            raise TryOnValidationError("FASHN tries on one garment at a time.", code="InvalidGarment")
        kind = ("one_piece" if request.top_is_one_piece else "top") if request.top_garment_url else "bottom"
        inputs: dict[str, Any] = {
            "model_image": request.person_image_url,
            "garment_image": request.top_garment_url or request.bottom_garment_url,
            "category": CATEGORIES[kind],
            "mode": self.options["mode"],
            "garment_photo_type": self.options["garment_photo_type"],
            "output_format": self.options["output_format"],
            "return_base64": bool(self.options["return_base64"]),
            "num_samples": 1,
        }
        for option in ("moderation_level", "segmentation_free", "seed"):
            if self.options[option] is not None:
                inputs[option] = self.options[option]
        return {"model_name": self.model, "inputs": inputs}

    def submit(self, request: TryOnInput) -> SubmitResult:
        _, body = self._call("POST", "/v1/run", json=self.build_payload(request), headers=self._headers())
        if body.get("error") or not body.get("id"):
            raise TryOnProviderRejected(
                str(body.get("error") or "FASHN returned no prediction id"),
                code="ProviderRejected",
                response_body=body,
            )
        return SubmitResult(remote_id=str(body["id"]))

    def poll(self, remote_id: str) -> PollResult:
        _, body = self._call("GET", f"/v1/status/{remote_id}", headers=self._headers())
        status = str(body.get("status") or "")
        state = STATUS_MAP.get(status, RemoteState.RUNNING)
        output = body.get("output") or []
        error = body.get("error") or {}
        code, message = "", ""
        if state is RemoteState.FAILED:
            name = str(error.get("name") or ("PollingTimeout" if status == "time_out" else "PipelineError"))
            code, message = (
                RUNTIME_CODES.get(name, "ProviderError"),
                f"{name}: {error.get('message') or status}",
            )
        if state is RemoteState.SUCCEEDED and not output:
            state, code, message = RemoteState.FAILED, "ResultUnavailable", "completed without an output"
        return PollResult(
            remote_id=remote_id,
            state=state,
            result_url=output[0] if output else None,
            error_code=code,
            error_message=message,
            image_count=len(output),
            raw=body,
        )

    def download(self, url: str) -> bytes:
        if url.startswith("data:"):  # return_base64: the picture came in the status answer
            return base64.b64decode(url.split(";base64,", 1)[1])
        return self.http.download(url)

    def cancel(self, remote_id: str) -> bool:
        return False  # FASHN's API has no cancel
