"""Files: DashScope's temporary uploads (its temporary-file-URL page: the policy, then an OSS-like form POST to
``/_oss``, used as ``oss://`` URLs) and the signed result links (``/_results/<name>``, 24 h)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

from flask import Blueprint, Response, g, request

from .context import Sandbox
from .state import BEIJING, PARSING, POLICY_LIFETIME, REFINER, TRYON_MODELS, Upload

API = "/api/v1"
MODELS = (*TRYON_MODELS, REFINER, PARSING)


def blueprint(sandbox: Sandbox) -> Blueprint:
    """``GET /api/v1/uploads``, ``POST /_oss`` and ``GET /_results/<name>``."""
    api = Blueprint("uploads", __name__)
    store, config, fail = sandbox.store, sandbox.config, sandbox.fail

    @api.get(f"{API}/uploads")
    def get_policy() -> Response:
        if request.args.get("action") != "getPolicy":
            return fail("InvalidParameter")
        model = request.args.get("model", "")
        if model not in MODELS:
            return fail("ModelNotExist")
        if not sandbox.allow(("policy", g.api_key, model), config.policy_rate):
            return fail("Throttling.RateQuota")
        account = sandbox.account()
        expires = store.clock.now() + POLICY_LIFETIME
        upload_dir = f"dashscope-instant/{account}/{datetime.now(BEIJING):%Y-%m-%d}/{store.new_id()}"
        policy = base64.b64encode(json.dumps({"expiration": expires, "dir": upload_dir}).encode()).decode()
        with store.lock:
            store.policies[policy] = (account, model, expires)
        return sandbox.reply(
            {
                "data": {
                    "policy": policy,
                    "signature": _sign(store.secret, policy),
                    "upload_dir": upload_dir,
                    "upload_host": sandbox.base_url() + "/_oss",
                    "expire_in_seconds": POLICY_LIFETIME,
                    "max_file_size_mb": 100,
                    "capacity_limit_mb": 999999999,
                    "oss_access_key_id": "LTAI-sandbox",
                    "x_oss_object_acl": "private",
                    "x_oss_forbid_overwrite": "true",
                }
            }
        )

    @api.post("/_oss")
    def oss_upload() -> Response:
        form = request.form
        policy = form.get("policy", "")
        with store.lock:
            known = store.policies.get(policy)
        if known is None or not hmac.compare_digest(form.get("Signature", ""), _sign(store.secret, policy)):
            return _oss_error(403, "AccessDenied")
        owner, model, expires = known
        if store.clock.now() > expires:
            return _oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = form.get("key", "")
        upload_dir = json.loads(base64.b64decode(policy))["dir"]
        file = request.files.get("file")
        if file is None or not key.startswith(upload_dir + "/"):
            return _oss_error(400, "InvalidArgument")
        with store.lock:
            if key in store.uploads and form.get("x-oss-forbid-overwrite") == "true":
                return _oss_error(409, "FileAlreadyExists")
            store.uploads[key] = Upload(file.read(), model, owner, store.clock.now())
            store.stats["uploads"] += 1
        return Response("", status=int(form.get("success_action_status", 204) or 204))

    @api.get("/_results/<name>")
    def result(name: str) -> Response:
        try:
            expires = int(request.args.get("Expires", "0"))
        except ValueError:
            expires = 0
        with store.lock:
            entry = store.results.get(name)
        if (
            entry is None
            or not hmac.compare_digest(request.args.get("Signature", ""), store.sign(name, expires))
            or expires != entry[1]
        ):
            return _oss_error(403, "AccessDenied")
        if store.clock.now() > expires:
            return _oss_error(403, "AccessDenied", "Request has expired.")
        return Response(entry[0], content_type=entry[2])

    return api


def _sign(secret: bytes, policy: str) -> str:
    """The policy's signature, as OSS computes it (HMAC-SHA1, base64)."""
    return base64.b64encode(hmac.new(secret, policy.encode(), hashlib.sha1).digest()).decode()


def _oss_error(status: int, code: str, message: str = "") -> Response:
    """OSS's XML error body."""
    text = f"<Error><Code>{code}</Code>" + (f"<Message>{message}</Message>" if message else "") + "</Error>"
    return Response(text, status, content_type="application/xml")
