"""DashScope OutfitAnyone backend: ``aitryon`` and ``aitryon-plus``.

The wire format, limits and codes follow DashScope's own pages (the OutfitAnyone, refiner, parsing,
asynchronous-task, temporary-upload, rate-limit and error-code pages), listed with what each documents in
docs/backends/dashscope.rst, "The provider's documentation"; comments below name the page.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

from ..exceptions import (
    TryOnModelUnavailable,
    TryOnProviderError,
    TryOnProviderRejected,
    TryOnRetryableError,
)
from .base import Capabilities, PollResult, RemoteState, RemoteTask, SubmitResult, TryOnInput
from .http import HTTPBackend

logger = logging.getLogger("django_tryon.backends.dashscope")

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
SUBMIT_PATH = "/services/aigc/image2image/image-synthesis"
BEIJING = timezone(timedelta(hours=8))

#: Provider status → normalized state (the asynchronous-task page). SUSPENDED appears only in an OpenAPI mirror.
STATUS_MAP = {
    "PENDING": RemoteState.PENDING,
    "SUSPENDED": RemoteState.PENDING,
    "PRE-PROCESSING": RemoteState.RUNNING,
    "RUNNING": RemoteState.RUNNING,
    "POST-PROCESSING": RemoteState.RUNNING,
    "SUCCEEDED": RemoteState.SUCCEEDED,
    "FAILED": RemoteState.FAILED,
    "CANCELED": RemoteState.CANCELED,
    "UNKNOWN": RemoteState.UNKNOWN,
}

#: Codes that mean "the model itself is refused" — retired (Endpoint.AccessDenied after the
#: 2026-10-10 retirement), not purchased, or not found. Reported as ``ModelNotAvailable``.
MODEL_REFUSED_CODES = frozenset(
    {
        "Endpoint.AccessDenied",
        "Model.AccessDenied",
        "AccessDenied.Unpurchased",
        "ModelNotFound",
        "Model.NotExist",
        "Workspace.AccessDenied",
        "WorkSpaceNotFound",
    }
)
#: 429s that are billing states, not rate limits: waiting minutes will not fix them.
BILLING_CODES = frozenset({"Arrearage", "CommodityNotPurchased", "PrepaidBillOverdue", "PostpaidBillOverdue"})
#: Codes that are transient whatever the HTTP status (the error-code page).
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "Throttling.RateQuota",
        "Throttling.BurstRate",
        "Throttling.AllocationQuota",
        "RequestTimeOut",
        "InternalError",
        "InternalError.Algo",
        "InternalError.Timeout",
        "InternalError.Upload",
        "InternalError.FileUpload",
        "SystemError",
        "ModelServingError",
        "ModelUnavailable",
        "ServiceUnavailable",
        "GatewayTimeout",
    }
)

#: Per-model limits and prices (the rate-limit and billing pages). Successor models default to the same limits.
REFINER = "aitryon-refiner"
PARSER = "aitryon-parsing-v1"
PARSE_PATH = "/services/vision/image-process/process"
MODEL_CAPABILITIES = {
    "aitryon": Capabilities(
        5,
        10.0,
        15.0,
        Decimal("0.20"),
        "CNY",
        supports_upload=True,
        supports_task_list=True,
        refiner_model=REFINER,
        parser_model=PARSER,
    ),
    "aitryon-plus": Capabilities(
        5,
        10.0,
        45.0,
        Decimal("0.50"),
        "CNY",
        supports_upload=True,
        supports_task_list=True,
        refiner_model=REFINER,
        parser_model=PARSER,
    ),
    PARSER: Capabilities(10, 10.0, 2.0, Decimal("0.004"), "CNY", supports_upload=True),
    # the refiner's price is tiered (the billing page): put yours in TRYON["PRICES"]["aitryon-refiner"]
    REFINER: Capabilities(5, 10.0, 10.0, Decimal("0"), "CNY", supports_upload=True, supports_task_list=True),
}
FALLBACK_CAPABILITIES = Capabilities(
    5, 10.0, 30.0, Decimal("0"), "CNY", supports_upload=True, supports_task_list=True
)
#: Task failures (``output.code`` of a FAILED task) that a new submit may well get past (the error-code page).
TRANSIENT_TASK_CODES = frozenset(
    {
        "InternalError",
        "InternalError.Algo",
        "InternalError.Timeout",
        "InternalError.Upload",
        "InternalError.FileUpload",
        "SystemError",
        "ModelServingError",
        "ModelUnavailable",
    }
)
#: The task list takes Beijing time as ``YYYYMMDDhhmmss`` (the asynchronous-task page).
LIST_PAGE_SIZE = 100


def classify_error(status_code: int, code: str, message: str = "", **context: Any) -> TryOnProviderError:
    """Map one DashScope error answer to our exception tree (retryable vs final)."""
    kwargs = {"status_code": status_code, **context}
    if code in MODEL_REFUSED_CODES or (code == "InvalidParameter" and "model not exist" in message.lower()):
        return TryOnModelUnavailable(
            f"DashScope refused the model ({code}: {message}). The aitryon family was scheduled to retire on "
            f"2026-10-10; set TRYON['OPTIONS']['model'] to a model your account can use.",
            code="ModelNotAvailable",
            **kwargs,
        )
    if code in BILLING_CODES:
        return TryOnProviderRejected(message or code, code=code, **kwargs)
    if code in RETRYABLE_CODES or status_code in (408, 429) or status_code >= 500:
        return TryOnRetryableError(message or code, code=code or "ProviderUnavailable", **kwargs)
    return TryOnProviderRejected(message or code, code=code or "ProviderRejected", **kwargs)


def _compact(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_time(value: Any) -> datetime | None:
    """``"2025-06-30 14:37:53.838"`` (Beijing time, no zone) → aware datetime; None if absent/unparseable."""
    if not value or not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    return None


class DashScopeHTTPBackend(HTTPBackend):
    """What every DashScope backend shares: the key (option, then ``DASHSCOPE_API_KEY``), the region's
    base URL, the workspace header and the error classification."""

    default_options: ClassVar[dict[str, Any]] = {
        "api_key": None,  # or the DASHSCOPE_API_KEY environment variable
        "base_url": None,  # or DASHSCOPE_BASE_URL, else the Beijing endpoint
        "model": "aitryon",
        "timeout": (5.0, 30.0),  # (connect, read) seconds
        "workspace": None,  # X-DashScope-WorkSpace
        "debug_api_requests": None,  # defaults to TRYON["DEBUG_API_REQUESTS"]
    }
    api_key_env = "DASHSCOPE_API_KEY"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        base = self.options["base_url"] or os.environ.get("DASHSCOPE_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        self._init_http(self.options["debug_api_requests"])

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} model={self.model!r} base_url={self.base_url!r}>"

    def _headers(self, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if self.options["workspace"]:
            headers["X-DashScope-WorkSpace"] = str(self.options["workspace"])
        headers.update(extra)
        return headers

    def classify_error(self, status_code: int, code: str, message: str, **context: Any) -> TryOnProviderError:
        return classify_error(status_code, code, message, **context)

    def download(self, url: str) -> bytes:
        return self.http.download(url)


class DashScopeBackend(DashScopeHTTPBackend):
    """Alibaba Cloud DashScope (Model Studio) OutfitAnyone try-on, over its HTTP API."""

    name = "dashscope"
    transient_failure_codes = TRANSIENT_TASK_CODES

    @property
    def capabilities(self) -> Capabilities:
        return MODEL_CAPABILITIES.get(self.model, FALLBACK_CAPABILITIES)

    # -- interface ----------------------------------------------------------------------------
    def build_submit_payload(self, request: TryOnInput) -> dict[str, Any]:
        """The JSON body of the OutfitAnyone API page (the refiner page's for the refiner). A one-piece goes in the top slot with the bottom left out."""
        inputs = {"person_image_url": request.person_image_url}
        if request.top_garment_url:
            inputs["top_garment_url"] = request.top_garment_url
        if request.bottom_garment_url:
            inputs["bottom_garment_url"] = request.bottom_garment_url
        if self.model == REFINER:
            inputs["coarse_image_url"] = request.coarse_image_url or ""
            return {"model": self.model, "input": inputs, "parameters": {"gender": request.gender}}
        return {
            "model": self.model,
            "input": inputs,
            "parameters": {"resolution": int(request.resolution), "restore_face": bool(request.restore_face)},
        }

    def submit(self, request: TryOnInput) -> SubmitResult:
        payload = self.build_submit_payload(request)
        extra = {"X-DashScope-Async": "enable"}
        if any(str(url).startswith("oss://") for url in payload["input"].values()):
            extra["X-DashScope-OssResourceResolve"] = "enable"
        _, body = self._call("POST", SUBMIT_PATH, json=payload, headers=self._headers(**extra))
        output = body.get("output") or {}
        task_id = output.get("task_id")
        if not task_id:
            raise TryOnRetryableError(
                "DashScope accepted the request but returned no task_id",
                code="ProviderError",
                response_body=body,
            )
        return SubmitResult(remote_id=str(task_id), request_id=str(body.get("request_id") or ""))

    def poll(self, remote_id: str) -> PollResult:
        _, body = self._call("GET", f"/tasks/{remote_id}", headers=self._headers())
        return self.parse_poll_response(remote_id, body)

    def parse_poll_response(self, remote_id: str, body: dict[str, Any]) -> PollResult:
        output = body.get("output") or {}
        raw_status = str(output.get("task_status") or "UNKNOWN")
        state = STATUS_MAP.get(raw_status, RemoteState.RUNNING)
        result_url = output.get("image_url")
        if isinstance(result_url, list):  # one doc table types it as an array; the examples show a string
            result_url = result_url[0] if result_url else None
        code = str(output.get("code") or "")
        message = str(output.get("message") or "")
        if state is RemoteState.SUCCEEDED and not result_url:
            state, code, message = RemoteState.FAILED, "ResultUnavailable", "SUCCEEDED without an image_url"
        if state is RemoteState.UNKNOWN and not code:
            code, message = "Unknown", "DashScope does not know this task (unknown id or expired after 24 h)."
        if state is RemoteState.CANCELED and not code:
            code = "Canceled"
        return PollResult(
            remote_id=str(output.get("task_id") or remote_id),
            state=state,
            request_id=str(body.get("request_id") or ""),
            submitted_at=parse_time(output.get("submit_time")),
            scheduled_at=parse_time(output.get("scheduled_time")),
            ended_at=parse_time(output.get("end_time")),
            result_url=result_url or None,
            error_code=code,
            error_message=message,
            image_count=int((body.get("usage") or {}).get("image_count") or 0),
            raw=body,
        )

    def cancel(self, remote_id: str) -> bool:
        try:
            self._call("POST", f"/tasks/{remote_id}/cancel", headers=self._headers())
        except TryOnProviderRejected as err:
            if err.code == "UnsupportedOperation":  # no longer PENDING
                return False
            raise
        return True

    def parse_clothes(self, image_url: str, kind: str) -> bytes | None:
        """The synchronous parsing model (the parsing API page): the crop of one kind of clothes, or None when there is none."""
        extra = {"X-DashScope-OssResourceResolve": "enable"} if image_url.startswith("oss://") else {}
        body = {
            "model": self.model,
            "input": {"image_url": image_url},
            "parameters": {"clothes_type": [kind]},
        }
        _, answer = self._call("POST", PARSE_PATH, json=body, headers=self._headers(**extra))
        crops = (answer.get("output") or {}).get("crop_img_url") or [None]
        return self.download(crops[0]) if crops[0] else None

    def list_tasks(self, *, since: datetime, until: datetime) -> list[RemoteTask]:
        """``GET /tasks`` for this model between two times (the asynchronous-task page), every page."""
        params = {
            "model_name": self.model,
            "start_time": _compact(since),
            "end_time": _compact(until),
            "page_size": LIST_PAGE_SIZE,
        }
        tasks: list[RemoteTask] = []
        for page in range(1, 50):
            _, body = self._call("GET", "/tasks", params={**params, "page_no": page}, headers=self._headers())
            for item in body.get("data") or []:
                created = item.get("gmt_create")
                tasks.append(
                    RemoteTask(
                        remote_id=str(item.get("task_id") or ""),
                        created_at=datetime.fromtimestamp(created / 1000, timezone.utc)
                        if isinstance(created, (int, float))
                        else None,
                        model=str(item.get("model_name") or ""),
                        status=str(item.get("status") or ""),
                    )
                )
            if page >= int(body.get("total_page") or 1):
                break
        return tasks

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        """Temporary upload (the temporary-file-URL page): getPolicy, then an OSS form POST; returns ``oss://<key>`` (valid 48 h)."""
        _, body = self._call(
            "GET", "/uploads", params={"action": "getPolicy", "model": self.model}, headers=self._headers()
        )
        policy = body.get("data") or {}
        key = f"{policy['upload_dir']}/{filename}"
        fields = {
            "OSSAccessKeyId": policy["oss_access_key_id"],
            "Signature": policy["signature"],
            "policy": policy["policy"],
            "key": key,
            "x-oss-object-acl": policy.get("x_oss_object_acl", "private"),
            "x-oss-forbid-overwrite": policy.get("x_oss_forbid_overwrite", "true"),
            "success_action_status": "200",
            "x-oss-content-type": content_type
            or mimetypes.guess_type(filename)[0]
            or "application/octet-stream",
        }
        response = self.http.request(
            "POST", policy["upload_host"], data=fields, files={"file": (filename, content, content_type)}
        )
        if response.status_code != 200:
            raise classify_error(
                response.status_code, "UploadFailed", f"OSS upload answered HTTP {response.status_code}"
            )
        return f"oss://{key}"
