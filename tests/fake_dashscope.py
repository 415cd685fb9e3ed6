"""A small DashScope stand-in over real HTTP, for the worker integration tests only.

It downloads the input URLs it is given (so signed URLs are exercised for real), checks they are
images, composes a result and serves it. The shipped sandbox (``django_tryon.sandbox``) replaces it.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from PIL import Image


class FakeDashScope:
    def __init__(
        self, api_key: str = "sk-worker-test", throttle_first: int = 0, run_seconds: float = 0.5
    ) -> None:
        self.api_key = api_key
        self.throttle_left = throttle_first
        self.run_seconds = run_seconds
        self.tasks: dict[str, dict] = {}
        self.results: dict[str, bytes] = {}
        self.submits = 0
        self.fail_next: tuple[str, str] | None = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeDashScope:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _run(self, task_id: str, inputs: dict) -> None:
        task = self.tasks[task_id]
        try:
            person = _fetch(inputs["person_image_url"])
            garment = _fetch(inputs.get("top_garment_url") or inputs["bottom_garment_url"])
        except Exception as err:  # noqa: BLE001 - reported as the provider would
            task.update(status="FAILED", code="InvalidURL", message=f"download failed: {err}")
            return
        task["status"] = "RUNNING"
        time.sleep(self.run_seconds)
        if self.fail_next:
            code, message = self.fail_next
            task.update(status="FAILED", code=code, message=message)
            return
        garment.thumbnail((person.width // 2, person.height // 3))
        person.paste(garment, ((person.width - garment.width) // 2, person.height // 5))
        buffer = io.BytesIO()
        person.save(buffer, "JPEG", quality=90)
        self.results[task_id] = buffer.getvalue()
        task.update(status="SUCCEEDED", end=time.strftime("%Y-%m-%d %H:%M:%S.000"))

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._json(
                        401,
                        {"request_id": "r", "code": "InvalidApiKey", "message": "Invalid API-key provided."},
                    )
                    return False
                return True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorized():
                    return
                if self.path.rstrip("/") != "/api/v1/services/aigc/image2image/image-synthesis":
                    return self._json(404, {"request_id": "r", "code": "NotFound", "message": "Not found!"})
                if self.headers.get("X-DashScope-Async") != "enable":
                    return self._json(
                        403,
                        {
                            "request_id": "r",
                            "code": "AccessDenied",
                            "message": "current user api does not support synchronous calls.",
                        },
                    )
                with fake.lock:
                    fake.submits += 1
                    if fake.throttle_left > 0:
                        fake.throttle_left -= 1
                        return self._json(
                            429,
                            {
                                "request_id": "r",
                                "code": "Throttling.RateQuota",
                                "message": "Requests rate limit exceeded, please try again later.",
                            },
                        )
                payload = json.loads(body)
                task_id = str(uuid.uuid4())
                fake.tasks[task_id] = {"status": "PENDING", "submit": time.strftime("%Y-%m-%d %H:%M:%S.000")}
                threading.Thread(target=fake._run, args=(task_id, payload["input"]), daemon=True).start()
                self._json(
                    200,
                    {
                        "request_id": str(uuid.uuid4()),
                        "output": {"task_id": task_id, "task_status": "PENDING"},
                    },
                )

            def do_GET(self):
                match = re.fullmatch(r"/results/([\w-]+)\.jpg", self.path.split("?")[0])
                if match:
                    data = fake.results.get(match.group(1))
                    self.send_response(200 if data else 404)
                    self.send_header("Content-Type", "image/jpeg")
                    self.end_headers()
                    self.wfile.write(data or b"")
                    return
                if not self._authorized():
                    return
                match = re.fullmatch(r"/api/v1/tasks/([\w-]+)/?", self.path)
                task = fake.tasks.get(match.group(1)) if match else None
                if task is None:
                    return self._json(
                        200,
                        {
                            "request_id": "r",
                            "output": {"task_id": match and match.group(1), "task_status": "UNKNOWN"},
                        },
                    )
                output = {
                    "task_id": match.group(1),
                    "task_status": task["status"],
                    "submit_time": task["submit"],
                }
                body = {"request_id": str(uuid.uuid4()), "output": output}
                if task["status"] == "SUCCEEDED":
                    output.update(
                        end_time=task["end"], image_url=f"{fake.url}/results/{match.group(1)}.jpg?Expires=9"
                    )
                    body["usage"] = {"image_count": 1}
                elif task["status"] == "FAILED":
                    output.update(code=task["code"], message=task["message"])
                self._json(200, body)

        return Handler


def _fetch(url: str) -> Image.Image:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image.convert("RGB")
