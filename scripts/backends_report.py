"""Every HTTP backend against the sandbox on real photos: success, wall time per try-on, result size.

Starts ``python -m django_tryon.sandbox`` on a free port (the engine renders every result) and runs each
person of ``--images``/person (default ``<repo>/../shared/images``) with ``--tops`` tops through:
DashScope ``aitryon`` (upload + submit + poll), the Qwen image-edit model (one synchronous call) and
FASHN (run + status). Prints, per backend: try-ons, succeeded, the refusals by code, p50/p95 wall seconds,
and how many results keep the person photo's aspect (within 2 %). No Django database is used.
Usage: ``python scripts/backends_report.py [--images DIR] [--tops N] [--latency S]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_sandbox(port: int, latency: float) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_tryon.sandbox",
            "--port",
            str(port),
            "--quiet",
            "--latency",
            str(latency),
            "--api-key",
            "sk-report",
            "--seed",
            "1",
        ],
        cwd=ROOT,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")


def mime(path: Path) -> str:
    return {".png": "image/png", ".webp": "image/webp"}.get(path.suffix.lower(), "image/jpeg")


def run_one(backend, person: Path, top: Path):
    from django_tryon.backends.base import RemoteState, TryOnInput

    urls = [backend.upload(p.read_bytes(), p.name, mime(p)) for p in (person, top)]
    result = backend.submit(TryOnInput(person_image_url=urls[0], top_garment_url=urls[1]))
    state = result.finished
    while state is None or state.state in (RemoteState.PENDING, RemoteState.RUNNING):
        time.sleep(0.2)
        state = backend.poll(result.remote_id)
    if state.state is not RemoteState.SUCCEEDED:
        return state.error_code or str(state.state), None
    return "", Image.open(io.BytesIO(backend.download(state.result_url))).size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "images")
    parser.add_argument("--tops", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    import django
    from django.conf import settings

    settings.configure(TRYON={}, USE_TZ=True)
    django.setup()
    from django_tryon.backends.dashscope import DashScopeBackend
    from django_tryon.backends.dashscope_image_edit import DashScopeImageEditBackend
    from django_tryon.backends.fashn import FashnBackend
    from django_tryon.exceptions import TryOnError

    persons = sorted(
        p for p in (args.images / "person").iterdir() if p.suffix.lower() in (".jpg", ".png", ".webp")
    )
    tops = sorted(p for p in (args.images / "top").iterdir() if p.suffix.lower() in (".jpg", ".png"))[
        : args.tops
    ]
    base = f"http://127.0.0.1:{args.port}"
    sandbox = start_sandbox(args.port, args.latency)
    backends = {
        "dashscope aitryon": DashScopeBackend(
            api_key="sk-report", base_url=f"{base}/api/v1", model="aitryon"
        ),
        "dashscope qwen-image-edit-plus": DashScopeImageEditBackend(
            api_key="sk-report", base_url=f"{base}/api/v1"
        ),
        "fashn tryon-v1.6": FashnBackend(api_key="fa-sandbox", base_url=f"{base}/fashn"),
    }
    try:
        print(f"{len(persons)} persons x {len(tops)} tops, sandbox latency {args.latency} s (async backends)")
        print(f"{'backend':32} {'runs':>4} {'ok':>4} {'p50 s':>6} {'p95 s':>6} {'aspect kept':>11}  refused")
        for name, backend in backends.items():
            times, ok, aspect, refused = [], 0, 0, {}
            for person in persons:
                width, height = Image.open(person).size
                for top in tops:
                    started = time.monotonic()
                    try:
                        code, size = run_one(backend, person, top)
                    except TryOnError as err:
                        code, size = err.code, None
                    times.append(time.monotonic() - started)
                    if size is None:
                        refused[code] = refused.get(code, 0) + 1
                        continue
                    ok += 1
                    aspect += abs(size[0] / size[1] - width / height) <= 0.02 * width / height
            p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
            print(
                f"{name:32} {len(times):>4} {ok:>4} {statistics.median(times):>6.2f} {p95:>6.2f} "
                f"{aspect:>5}/{ok:<5}  {refused or '-'}"
            )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
