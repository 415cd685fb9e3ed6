"""The one HTTP layer for backends: a requests Session with timeouts, a User-Agent, GET retries
(urllib3 ``Retry``), redacted debug logging, and transport errors mapped to our exception tree."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import __version__
from ..exceptions import (
    TryOnConfigurationError,
    TryOnProviderError,
    TryOnProviderRejected,
    TryOnRetryableError,
)
from .base import BaseTryOnBackend

logger = logging.getLogger("django_tryon.http")

#: Largest result image we download (the provider's outputs are far smaller).
MAX_DOWNLOAD_BYTES = 30 * 1024 * 1024
REDACTED_HEADERS = {"authorization", "x-api-key", "cookie", "x-oss-security-token"}


def build_session(backend_name: str, *, retries: int = 2) -> requests.Session:
    """A Session that retries idempotent GETs on connection errors and 502/503/504.

    POSTs are retried only when the connection could not be made (the request never left), so a
    submit is never sent twice by this layer.
    """
    session = requests.Session()
    session.headers["User-Agent"] = f"django-tryon/{__version__}-{backend_name}"
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=(502, 503, 504),
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def redact_headers(headers: Any) -> dict[str, str]:
    return {k: ("***" if k.lower() in REDACTED_HEADERS else v) for k, v in dict(headers).items()}


class HTTPClient:
    """Sends requests for one backend instance and logs them (redacted) when asked to."""

    def __init__(self, backend_name: str, *, timeout: Any, debug: bool = False) -> None:
        self.backend_name = backend_name
        self.timeout = timeout
        self.debug = debug
        self.session = build_session(backend_name)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; transport failures become ``TryOnRetryableError`` (the URL is kept, never headers)."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.ConnectionError as err:
            # Includes ConnectTimeout and urllib3's exhausted retries: the request may not have arrived.
            accepted_maybe = method.upper() == "POST" and not isinstance(err, requests.ConnectTimeout)
            raise TryOnRetryableError(
                f"Could not reach {self.backend_name} ({method} {_path(url)}): {type(err).__name__}",
                code="ProviderUnavailable",
                accepted_maybe=accepted_maybe,
            ) from None
        except requests.Timeout:
            raise TryOnRetryableError(
                f"{self.backend_name} did not answer in time ({method} {_path(url)})",
                code="ProviderUnavailable",
                accepted_maybe=method.upper() == "POST",
            ) from None
        except requests.RequestException as err:
            raise TryOnRetryableError(
                f"HTTP error talking to {self.backend_name}: {type(err).__name__}", code="ProviderUnavailable"
            ) from None
        if self.debug:
            self._dump(response, show_body=not kwargs.get("stream"))
        return response

    def download(self, url: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """GET a file with a size cap. 4xx is final (e.g. an expired link); 5xx and transport errors retry."""
        response = self.request("GET", url, stream=True)
        with response:
            if response.status_code >= 500 or response.status_code == 429:
                raise TryOnRetryableError(
                    f"Result download failed with HTTP {response.status_code}",
                    code="ResultUnavailable",
                    status_code=response.status_code,
                )
            if response.status_code != 200:
                raise TryOnProviderRejected(
                    f"Result download failed with HTTP {response.status_code} (the link may have expired)",
                    code="ResultUnavailable",
                    status_code=response.status_code,
                )
            chunks, total = [], 0
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise TryOnProviderRejected(
                        f"Result image is larger than {max_bytes} bytes", code="ResultUnavailable"
                    )
                chunks.append(chunk)
        return b"".join(chunks)

    def _dump(self, response: requests.Response, *, show_body: bool) -> None:
        request = response.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace") if len(body) < 4000 else f"<{len(body)} bytes>"
        logger.debug(
            "%s %s\nheaders: %s\nbody: %s\n--> HTTP %s %s",
            request.method,
            _path(request.url or ""),
            redact_headers(request.headers),
            body,
            response.status_code,
            response.text[:2000] if show_body else "<streamed>",
        )


def _path(url: str) -> str:
    """The URL without its query string (signed URLs carry credentials in the query)."""
    return url.split("?", 1)[0]


def json_body(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` (not JSON, not an object: a proxy's error page, say)."""
    if "json" not in response.headers.get("Content-Type", ""):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date (RFC 9110 allows both)."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


class HTTPBackend(BaseTryOnBackend):
    """A backend over a JSON HTTP API: its ``HTTPClient``, the error envelope and ``Retry-After``.

    Subclasses set ``base_url`` and ``http`` (usually with :meth:`_init_http`), implement ``_headers()``
    (authentication) and ``classify_error()`` (the provider's codes → our exception tree), and may
    override ``error_fields()`` when their error body has another shape.
    """

    base_url: str = ""
    http: HTTPClient
    #: The environment variable read when no ``api_key`` option is given ("" : the option only).
    api_key_env: str = ""

    @property
    def api_key(self) -> str:
        """The ``api_key`` option, else the ``api_key_env`` environment variable, looked up on use.

        Raises ``TryOnConfigurationError`` (naming where to put it, never a key) when neither is set.
        """
        key = self.options.get("api_key") or (
            os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        )
        if not key:
            where = f" or the {self.api_key_env} environment variable" if self.api_key_env else ""
            raise TryOnConfigurationError(
                f"{type(self).__name__} needs an API key: set TRYON['OPTIONS']['api_key'] (or the OPTIONS of its "
                f"route in TRYON['BACKENDS'], or its KEY_POOL entry){where}."
            )
        return str(key)

    def check_credentials(self) -> None:
        self.api_key  # noqa: B018 - raises when there is none

    def _init_http(self, debug: bool | None) -> None:
        if debug is None:
            from ..conf import tryon_settings

            debug = tryon_settings.DEBUG_API_REQUESTS
        timeout = self.options.get("timeout", (5.0, 30.0))
        timeout = (
            tuple(timeout) if isinstance(timeout, (list, tuple)) else timeout
        )  # JSON settings give lists
        self.http = HTTPClient(self.name, timeout=timeout, debug=bool(debug))

    def _headers(self, **extra: str) -> dict[str, str]:
        raise NotImplementedError(f"{type(self).__name__} must implement _headers()")

    def classify_error(self, status_code: int, code: str, message: str, **context: Any) -> TryOnProviderError:
        raise NotImplementedError(f"{type(self).__name__} must implement classify_error()")

    def error_fields(self, body: dict[str, Any]) -> tuple[str, str]:
        """(code, message) of an error body; the common ``{"code", "message"}`` envelope by default."""
        return str(body.get("code") or ""), str(body.get("message") or body.get("msg") or "")

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[requests.Response, dict[str, Any]]:
        """Send one API request; return (response, JSON body) or raise a classified error."""
        response = self.http.request(method, self.base_url + path, **kwargs)
        body = json_body(response)
        if not 200 <= response.status_code < 300:
            raise self._error_from(response, body)
        return response, body

    def _error_from(self, response: requests.Response, body: dict[str, Any]) -> TryOnProviderError:
        code, message = self.error_fields(body)
        code = code or ("Unknown" if not body else "")
        if not body:  # non-JSON answer (a proxy page, say): keep a short excerpt, never headers
            message = f"non-JSON answer: {response.text[:200]!r}"
        error = self.classify_error(
            response.status_code,
            code,
            message,
            backend=self,
            response_body=body or None,
            request_id=str(body.get("request_id") or response.headers.get("x-request-id") or ""),
        )
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if isinstance(error, TryOnRetryableError) and wait is not None:
            error.retry_after = wait
        return error
