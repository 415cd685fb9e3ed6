"""The sandbox's HTTP application (Flask): one blueprint per API, sharing a :class:`~.context.Sandbox`.

* :mod:`.dashscope`: try-on, refiner and parsing calls; :mod:`.tasks`: query, cancel, list;
  :mod:`.uploads`: temporary uploads and result links; :mod:`.image_edit`: the Qwen image-editing models;
  :mod:`.fashn`: a FASHN-compatible API; :mod:`.control`: ``/_sandbox/...``.
* Here: the Host allowlist, the API key check and DashScope's 404 and 405 answers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from . import control, dashscope, fashn, image_edit, tasks, uploads
from .context import EXTENSION, Sandbox, current
from .state import Config

API = "/api/v1"


def create_app(config: Config | None = None) -> Flask:
    """A sandbox application with its own store; run it with any WSGI server (threaded)."""
    sandbox = Sandbox.build(config or Config())
    app = Flask("django_tryon.sandbox")
    app.extensions[EXTENSION] = sandbox
    app.config["SANDBOX_STORE"] = sandbox.store
    app.url_map.strict_slashes = False  # the vendor's curl example ends the submit URL with "/"
    app.before_request(authenticate)
    app.register_error_handler(404, not_found)
    app.register_error_handler(405, not_allowed)
    for api in (dashscope, tasks, uploads, image_edit, fashn, control):
        app.register_blueprint(api.blueprint(sandbox))
    return app


def authenticate() -> Response | None:
    """Every request: a request id and the Host allowlist; the DashScope API and ``/_sandbox/``: the key."""
    sandbox = current()
    g.request_id = sandbox.store.new_id()
    allowed_hosts = sandbox.allowed_hosts
    if (
        allowed_hosts is not None
        and (request.host or "").rsplit(":", 1)[0].strip("[]").lower() not in allowed_hosts
    ):
        # DNS rebinding: a web page on evil.example resolving to 127.0.0.1 must not drive the sandbox.
        return sandbox.reply(
            {"code": "InvalidHost", "message": f"Host {request.host!r} is not served here."}, 421
        )
    control_path = request.path.startswith("/_sandbox/") and request.path != "/_sandbox/health"
    if not (request.path.startswith(API) or control_path):
        return None
    header = request.headers.get("Authorization", "")
    if not header:
        return sandbox.fail("NoApiKey")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if key not in sandbox.config.api_keys:
        return sandbox.fail("InvalidApiKey")
    g.api_key = key
    return None


def not_found(_: Any) -> Response:
    return current().reply({"code": "NotFound", "message": "Not found!"}, 404)


def not_allowed(_: Any) -> Response:
    return current().reply(
        {
            "code": "InvalidParameter",
            "message": "Required URL is missing or invalid, please check the request URL.",
        },
        400,
    )
