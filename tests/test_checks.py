"""System checks and settings errors as a deployment meets them: ``manage.py`` in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_django(tmp_path: Path, settings: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m django <args>`` with ``settings`` (Python source, on top of tests.settings), no key in the environment."""
    (tmp_path / "build_settings.py").write_text("from tests.settings import *  # noqa: F403\n" + settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "FASHN_", "DJANGO_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        DJANGO_SETTINGS_MODULE="build_settings",
        DJANGO_TRYON_WORKER_DB=str(tmp_path / "db.sqlite3"),
        DJANGO_TRYON_TEST_MEDIA=str(tmp_path / "media"),
    )
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


NO_KEY = """
TRYON = {{**TRYON, "OPTIONS": {{"base_url": "http://127.0.0.1:9/api/v1"}}}}
STATIC_ROOT = {static!r}
"""


def test_a_build_step_without_secrets_passes_and_check_deploy_reports_the_key(tmp_path):
    settings = NO_KEY.format(static=str(tmp_path / "static"))
    for command in (("migrate", "--noinput"), ("collectstatic", "--noinput"), ("check",)):
        done = run_django(tmp_path, settings, *command)
        assert done.returncode == 0, (command, done.stderr)
    assert (tmp_path / "static" / "django_tryon" / "tryon.js").exists()
    deploy = run_django(tmp_path, settings, "check", "--deploy")
    assert deploy.returncode == 1 and "django_tryon.E004" in deploy.stderr
    assert "DASHSCOPE_API_KEY" in deploy.stderr and "TRYON['OPTIONS']['api_key']" in deploy.stderr


@pytest.mark.parametrize("value", [None, "", "Product", "shop.Product.extra", 42])
def test_a_missing_or_malformed_product_model_is_named_at_setup(tmp_path, value):
    """TRYON_PRODUCT_MODEL is read when the models load (a foreign key needs it): django.setup() itself says
    what to set, with an example, before any system check could."""
    settings = "del TRYON_PRODUCT_MODEL\n" if value is None else f"TRYON_PRODUCT_MODEL = {value!r}\n"
    done = run_django(tmp_path, settings, "check")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django_tryon.exceptions.TryOnConfigurationError: TRYON_PRODUCT_MODEL")
    assert "TRYON_PRODUCT_MODEL = 'shop.Product'" in last and "Traceback" in done.stderr


def test_a_product_model_that_is_not_installed_is_check_e002(tmp_path):
    done = run_django(tmp_path, "TRYON_PRODUCT_MODEL = 'shop.Product'\n", "check")
    assert done.returncode == 1 and "django_tryon.E002" in done.stderr and "'shop.Product'" in done.stderr
