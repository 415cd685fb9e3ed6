"""A webhook receiver for the tests, run as its own process: ``python tests/webhook_receiver.py LOG SECRET [MODE]``.

It checks each delivery's signature with the snippet that docs/webhooks.rst shows (docs/snippets/
verify_webhook.py, loaded from the file, not imported from django_tryon), records what it got as one
JSON line per request in LOG, and answers by MODE:

With CERTFILE and KEYFILE as 4th and 5th arguments it serves https.

- ``ok``: 204; ``fail:N``: 500 for the first N requests, then 204; ``redirect``: 302 to /elsewhere;
  ``slow:S``: sleeps S seconds before answering; ``gone``: 410; ``big``: 200 with a 1 MB body.

It prints its port on the first line of stdout once it listens.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
snippet: dict = {}
exec(compile((ROOT / "docs/snippets/verify_webhook.py").read_text(), "verify_webhook.py", "exec"), snippet)
verify_tryon_webhook = snippet["verify_tryon_webhook"]

LOG, SECRET = Path(sys.argv[1]), sys.argv[2]
MODE = sys.argv[3] if len(sys.argv) > 3 else "ok"
TLS = sys.argv[4:6]  # CERTFILE KEYFILE: serve https
lock = threading.Lock()
count = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count["n"] += 1
            n = count["n"]
            record = {
                "n": n,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
                "sni": getattr(self.connection, "sni", None),
                "verified": verify_tryon_webhook(body, self.headers.get("X-Tryon-Signature", ""), SECRET),
                "at": time.time(),
            }
            with LOG.open("a") as log:
                log.write(json.dumps(record) + "\n")
        kind, _, arg = MODE.partition(":")
        if kind == "fail" and n <= int(arg):
            self._answer(500, b"receiver down")
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "slow":
            time.sleep(float(arg))
            self._answer(200, b"late")
        elif kind == "gone":
            self._answer(410, b"gone")
        elif kind == "big":
            self._answer(200, b"x" * 1_000_000)
        else:
            self._answer(204, b"")

    def _answer(self, status: int, content: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if content:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(content)


Handler.do_GET = Handler.do_POST  # type: ignore[method-assign]  # a followed redirect would show up
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if TLS:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*TLS)
    context.sni_callback = lambda sock, name, ctx: setattr(sock, "sni", name)  # type: ignore[assignment,func-returns-value]
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
