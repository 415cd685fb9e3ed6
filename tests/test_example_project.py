"""The example shop as `make demo` runs it: migrate, seed, then the demo server with its embedded
worker on the file-system broker, driven over HTTP like a shopper would."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DJANGO_SETTINGS", "CELERY_"))}
    env.update(SHOP_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True, timeout=120)


def test_shop_starts_without_a_key(tmp_path):
    env = shop_env(tmp_path)
    checked = manage(env, "check")
    assert checked.returncode == 0 and "no issues (0 silenced)" in checked.stdout
    assert manage(env, "migrate", "--noinput").returncode == 0
    seeded = manage(env, "shop_seed")
    assert seeded.returncode == 0 and "4 products, 5 garments" in seeded.stdout
    assert "4 products" in manage(env, "shop_seed").stdout  # idempotent


def test_demo_server_runs_a_tryon_end_to_end(tmp_path):
    with FakeDashScope() as fake:
        port = free_port()
        env = shop_env(
            tmp_path,
            DASHSCOPE_API_KEY=fake.api_key,
            DASHSCOPE_BASE_URL=f"{fake.url}/api/v1",
            TRYON_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        assert manage(env, "migrate", "--noinput").returncode == 0
        assert manage(env, "shop_seed").returncode == 0
        server = subprocess.Popen(
            [sys.executable, str(MANAGE), "tryon_demo", "--addrport", f"127.0.0.1:{port}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            shopper = requests.Session()
            for _ in range(100):
                try:
                    page = shopper.get(f"{base}/p/1/", timeout=2)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            assert page.status_code == 200 and "Try it on" in page.text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            form = {"csrfmiddlewaretoken": token, "consent": "on"}
            headers = {"Referer": f"{base}/p/1/"}

            bad = shopper.post(f"{base}/p/1/", data=form, headers=headers,
                               files={"person_image": ("me.jpg", images.jpeg(100, 400), "image/jpeg")})
            assert "InvalidInputLength" in bad.text and "像素" in bad.text

            done = shopper.post(f"{base}/p/1/", data=form, headers=headers,
                                files={"person_image": ("me.jpg", images.person_photo(), "image/jpeg")})
            assert "/try/" in done.url
            for _ in range(120):
                status = re.search(r'id="tryon-status">([^<]+)<', done.text).group(1)
                if status in ("Succeeded", "Failed", "Canceled"):
                    break
                time.sleep(0.5)
                done = shopper.get(done.url)
            assert status == "Succeeded", done.text
            result_url = re.search(r'id="tryon-result" src="([^"]+)"', done.text).group(1)
            result = shopper.get(base + result_url)
            assert result.status_code == 200 and result.headers["Content-Type"] == "image/jpeg"
            assert result.content in fake.results.values()
            # Someone else cannot see this try-on.
            assert requests.get(done.url).status_code == 404
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def test_demo_without_a_key_renders_through_the_sandbox(tmp_path):
    from .test_engine import shared

    person = shared("person", "fitdit_model_1.jpg").read_bytes()
    port = free_port()
    env = shop_env(tmp_path, SHOP_SANDBOX_PORT=str(free_port()), SHOP_SANDBOX_LATENCY="1")
    assert manage(env, "migrate", "--noinput").returncode == 0
    assert manage(env, "shop_seed").returncode == 0
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "tryon_demo", "--addrport", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        shopper = requests.Session()
        for _ in range(100):
            try:
                page = shopper.get(f"{base}/p/1/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert "Offline preview" in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        done = shopper.post(f"{base}/p/1/", data={"csrfmiddlewaretoken": token, "consent": "on"},
                            headers={"Referer": f"{base}/p/1/"}, files={"person_image": ("me.jpg", person, "image/jpeg")})
        for _ in range(120):
            status = re.search(r'id="tryon-status">([^<]+)<', done.text).group(1)
            if status in ("Succeeded", "Failed", "Canceled"):
                break
            time.sleep(0.5)
            done = shopper.get(done.url)
        assert status == "Succeeded", done.text
        result_url = re.search(r'id="tryon-result" src="([^"]+)"', done.text).group(1)
        assert shopper.get(base + result_url).headers["Content-Type"] == "image/jpeg"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
