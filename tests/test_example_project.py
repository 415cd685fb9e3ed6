"""The example shop as `make demo` runs it: migrate, seed, then the demo server with its embedded
worker on the file-system broker, driven over HTTP like a shopper would."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import images
from .fake_dashscope import FakeDashScope

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shop_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DJANGO_SETTINGS", "CELERY_"))
    }
    env.update(SHOP_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_shop_starts_without_a_key(tmp_path):
    env = shop_env(tmp_path)
    checked = manage(env, "check")
    assert checked.returncode == 0 and "no issues (0 silenced)" in checked.stdout
    debug = "from django.conf import settings; print(settings.DEBUG)"
    assert manage(env, "shell", "-c", debug).stdout.split()[-1] == "False"  # only `make demo` turns it on
    assert manage({**env, "SHOP_DEBUG": "1"}, "shell", "-c", debug).stdout.split()[-1] == "True"
    assert manage(env, "migrate", "--noinput").returncode == 0
    seeded = manage(env, "shop_seed")
    assert seeded.returncode == 0 and "4 products, 5 garments" in seeded.stdout
    assert "4 products" in manage(env, "shop_seed").stdout  # idempotent


@contextlib.contextmanager
def demo_server(env: dict[str, str], cwd: Path | None = None):
    """``manage.py tryon_demo`` on a free port (run in ``cwd``), migrated and seeded; yields a shopper session
    and the base URL."""
    assert manage(env, "migrate", "--noinput").returncode == 0
    assert manage(env, "shop_seed").returncode == 0
    port = int(env["SHOP_DEMO_PORT"])
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "tryon_demo", "--addrport", f"127.0.0.1:{port}"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        shopper = requests.Session()
        for _ in range(100):
            try:
                shopper.get(f"{base}/p/1/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield shopper, base
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def try_on(shopper: requests.Session, base: str, photo: bytes) -> requests.Response:
    """Upload a photo on product 1 like a shopper; returns the last page (the result page when accepted)."""
    page = shopper.get(f"{base}/p/1/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return shopper.post(
        f"{base}/p/1/",
        data={"csrfmiddlewaretoken": token, "consent": "on"},
        headers={"Referer": f"{base}/p/1/"},
        files={"person_image": ("me.jpg", photo, "image/jpeg")},
    )


def wait_for_result(shopper: requests.Session, page: requests.Response) -> tuple[str, requests.Response]:
    for _ in range(120):
        status = re.search(r'id="tryon-status">([^<]+)<', page.text).group(1)
        if status in ("Succeeded", "Failed", "Canceled"):
            return status, page
        time.sleep(0.5)
        page = shopper.get(page.url)
    raise AssertionError("the try-on never finished")


def files_of(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_demo_server_runs_a_tryon_end_to_end(tmp_path):
    before = files_of(ROOT / "example_project")
    workdir = tmp_path / "cwd"  # where the web process runs (its worker runs in example_project/)
    workdir.mkdir()
    with FakeDashScope() as fake:
        port = free_port()
        env = shop_env(
            tmp_path,
            SHOP_DEMO_PORT=str(port),
            DASHSCOPE_API_KEY=fake.api_key,
            DASHSCOPE_BASE_URL=f"{fake.url}/api/v1",
            TRYON_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            SHOP_TRYON_JSON='{"DAILY_LIMIT_PER_SESSION": 1}',
        )
        with demo_server(env, cwd=workdir) as (shopper, base):
            page = requests.get(f"{base}/p/1/", timeout=10)
            assert "Try it on" in page.text and "sessionid" not in page.cookies  # reads create no session
            bad = try_on(shopper, base, images.jpeg(100, 400))
            assert bad.status_code == 400 and "InvalidInputLength" in bad.text and "像素" in bad.text
            damaged = bytearray(images.person_photo())
            damaged[damaged.index(b"\xff\xda") + 2 : damaged.index(b"\xff\xda") + 4] = b"\xff\xff"
            broken = try_on(shopper, base, bytes(damaged))  # a marker longer than the file: was a 500
            assert broken.status_code == 400 and "InvalidURL" in broken.text
            done = try_on(shopper, base, images.person_photo())
            assert "/try/" in done.url
            status, done = wait_for_result(shopper, done)
            assert status == "Succeeded", done.text
            result_url = re.search(r'id="tryon-result" src="([^"]+)"', done.text).group(1)
            result = shopper.get(base + result_url)
            assert result.status_code == 200 and result.headers["Content-Type"] == "image/jpeg"
            assert result.content in fake.results.values()
            assert requests.get(done.url).status_code == 404  # someone else cannot see this try-on
            over = try_on(shopper, base, images.jpeg(480, 800, seed=9))  # the daily limit of 1: was a 500
            assert (
                over.status_code == 429
                and "quota_exceeded" in over.text
                and "今日试穿次数已用完" in over.text
            )
    # The file-system broker keeps its exchange table (kombu's ./control by default) and its messages
    # under SHOP_VAR_DIR: nothing lands in the source tree or in the web process's working directory.
    assert (tmp_path / "broker" / "control" / "celery.exchange").is_file()
    assert files_of(ROOT / "example_project") == before and not any(workdir.iterdir())


def test_demo_without_a_key_renders_through_the_sandbox(tmp_path):
    from .test_engine import shared

    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    env = shop_env(
        tmp_path,
        SHOP_DEMO_PORT=str(free_port()),
        SHOP_SANDBOX_PORT=str(free_port()),
        SHOP_SANDBOX_LATENCY="1",
    )
    with demo_server(env) as (shopper, base):
        assert "Offline preview" in shopper.get(f"{base}/p/1/").text
        status, done = wait_for_result(shopper, try_on(shopper, base, person))
        assert status == "Succeeded", done.text
        result_url = re.search(r'id="tryon-result" src="([^"]+)"', done.text).group(1)
        assert shopper.get(base + result_url).headers["Content-Type"] == "image/jpeg"
