"""What every blueprint of the sandbox shares: the store, the configuration, the scheduler and the
helpers for DashScope's envelope, the caller's account, injected faults and rate limits."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from random import Random
from typing import Any

from flask import Response, current_app, g, request

from . import faults as fault_specs
from .faults import Fault
from .messages import ERRORS, error
from .state import Config, Store
from .worker import Scheduler

EXTENSION = "tryon_sandbox"
#: Request faults answered with one of the provider's documented errors.
FAULT_ERRORS = {
    "500": "InternalError",
    "503": "ModelUnavailable",
    "serving": "ModelServingError",
    "429": "Throttling",
    "retired": "Endpoint.AccessDenied",
    "arrearage": "Arrearage",
    "outofcredits": "Arrearage",
}


@dataclass
class Sandbox:
    """One sandbox application's state and shared helpers (``app.extensions["tryon_sandbox"]``)."""

    config: Config
    store: Store
    scheduler: Scheduler
    allowed_hosts: frozenset[str] | None = None  # the Host names served (None: any)

    @classmethod
    def build(cls, config: Config) -> Sandbox:
        """A new store and scheduler for ``config``."""
        store = Store(config)
        return cls(config, store, Scheduler(store), config.host_names())

    @property
    def random(self) -> Random:
        return self.scheduler.random

    def base_url(self) -> str:
        """The base of the URLs handed out (results, uploads)."""
        return (self.config.public_url or request.host_url).rstrip("/")

    def account(self) -> str:
        """The caller's account, from the key the request was authenticated with."""
        return self.store.account_of(g.api_key)

    def count(self, *names: str) -> None:
        """Add one to each of the ``names`` statistics."""
        with self.store.lock:
            for name in names:
                self.store.stats[name] += 1

    def allow(self, key: Any, per_second: float) -> bool:
        """Whether the rate limit of ``key`` lets one more request through."""
        return self.store.limiter.allow(key, per_second)

    # -- DashScope's envelope ----------------------------------------------------------------------
    def reply(self, body: dict[str, Any], status: int = 200) -> Response:
        """JSON with the request id in the body and in ``x-request-id``."""
        body.setdefault("request_id", g.request_id)
        response = Response(
            json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
        )
        response.headers["x-request-id"] = body["request_id"]
        return response

    def fail(self, key: str, message: str | None = None) -> Response:
        """The documented error ``key`` (any other code: a 400 "Injected failure.")."""
        status, code, default = error(key) if key in ERRORS else (400, key, "Injected failure.")
        return self.reply({"code": code, "message": message or default}, status)

    # -- faults ------------------------------------------------------------------------------------
    def request_fault(self, where: str) -> Response | None:
        """The answer of a fault injected at ``where`` (the request's header first, then the armed ones)."""
        header = request.headers.get("X-Sandbox-Fault", "")
        fault = (
            next((f for f in fault_specs.parse(header) if f.where in (where, "any")), None)
            if header
            else None
        )
        fault = fault or self.store.faults.take(where)
        if fault is None:
            return None
        self.count("faults")
        what = fault.what
        if what == "slow":
            time.sleep(float(fault.arg or 3))
            return None
        if what == "timeout":
            time.sleep(self.config.fault_timeout)
            return self.reply(
                {"code": "RequestTimeOut", "message": "Request timed out, please try again later."}, 500
            )
        if what == "drop":
            _drop_connection()
            return Response("", status=500)
        if what == "nonjson":
            return Response(
                "<html><body><h1>502 Bad Gateway</h1></body></html>", status=502, content_type="text/html"
            )
        if what in FAULT_ERRORS:
            return self.fail(FAULT_ERRORS[what])
        if what == "reject":
            return self.fail(fault.arg or "InvalidParameter")
        return None

    def task_fault(self) -> Fault | None:
        """The fault a new task will carry (the request's header first, then the armed ones)."""
        header = request.headers.get("X-Sandbox-Fault", "")
        fault = next((f for f in fault_specs.parse(header) if f.where == "task"), None) if header else None
        return fault or self.store.faults.take("task")


def current() -> Sandbox:
    """The sandbox of the application handling the request."""
    return current_app.extensions[EXTENSION]


def _drop_connection() -> None:
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by the client
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
