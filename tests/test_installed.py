"""The package as installed: its data files, its console scripts, and (under ``make wheel-test``) proof that
the code under test is the installed wheel, not the checkout."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template.loader import get_template
from django.utils import translation
from django.utils.translation import gettext

import django_tryon

from . import images
from .sandbox_helpers import sandbox_process
from .test_widget import _po_entries

#: Set by scripts/test_wheel.py, which runs this module against the wheel in a fresh venv.
INSTALLED = os.environ.get("DJANGO_TRYON_TEST_INSTALLED") == "1"
PACKAGE = Path(django_tryon.__file__).resolve().parent


@pytest.mark.skipif(not INSTALLED, reason="the checkout is under test (make wheel-test runs this)")
def test_the_code_under_test_is_the_installed_wheel():
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert PACKAGE.parent == site_packages and Path(sys.prefix).resolve() in PACKAGE.parents
    direct_url = json.loads(importlib.metadata.distribution("django-tryon").read_text("direct_url.json"))
    assert direct_url["url"].endswith(".whl") and "dir_info" not in direct_url  # a wheel, not an editable
    others = [
        p
        for p in sys.path
        if p and Path(p).resolve() != site_packages and (Path(p) / "django_tryon").exists()
    ]
    assert not others, f"a second django_tryon is importable from {others}"
    assert not (Path.cwd() / "django_tryon").exists()


def test_package_data_is_there():
    assert (PACKAGE / "py.typed").is_file()
    for domain in ("django", "djangojs"):
        assert (PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.mo").is_file()
    for name in (
        "django_tryon/button.html",
        "admin/django_tryon/dashboard.html",
        "admin/django_tryon/tryon/change_form.html",
        "admin/django_tryon/tryon/change_list.html",
    ):
        assert Path(get_template(name).origin.name).resolve().is_relative_to(PACKAGE)
    with translation.override("zh-hans"):
        assert gettext("Try it on") == "试穿"


@pytest.mark.django_db
def test_static_files_collect(tmp_path, settings):
    settings.STATIC_ROOT = str(tmp_path)
    for name in ("django_tryon/tryon.js", "django_tryon/tryon.css"):
        assert Path(finders.find(name)).resolve().is_relative_to(PACKAGE)
    call_command("collectstatic", "--noinput", verbosity=0)
    for name in ("tryon.js", "tryon.css"):
        collected = (tmp_path / "django_tryon" / name).read_bytes()
        assert collected and collected == (PACKAGE / "static" / "django_tryon" / name).read_bytes()
    assert (tmp_path / "admin" / "js").is_dir()  # the admin's, for the try-on admin pages


@pytest.mark.django_db
def test_the_widgets_catalog_speaks_chinese(client):
    with translation.override(translation.get_language()):  # LocaleMiddleware leaves zh-hans active
        catalog = client.get("/tryon/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert catalog.status_code == 200
    served = catalog.content.decode()
    entries = _po_entries(PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES" / "djangojs.po")
    assert entries and all(json.dumps(text)[1:-1] in served for text in entries.values())  # JSON-escaped


# -- console scripts ---------------------------------------------------------------------------------
def console_script(name: str) -> Path:
    """The script next to this interpreter; skipped locally when the install predates it, not under CI."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        if os.environ.get("CI") == "true" or INSTALLED:
            pytest.fail(f"{path} is missing: [project.scripts] not installed")
        pytest.skip(f"{name} is not installed in this venv (reinstall the package)")
    if INSTALLED:  # make wheel-test puts the fresh venv's bin first on PATH, as activating it would
        assert shutil.which(name) and Path(shutil.which(name)).parent.resolve() == path.parent.resolve()
    return path


def test_tryon_engine_script(tmp_path):
    engine = console_script("tryon-engine")
    shown = subprocess.run([engine, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: tryon-engine")
    assert {"render", "check-person", "analyze-garment"} <= set(shown.stdout.split())
    person, nobody = tmp_path / "person.jpg", tmp_path / "nobody.jpg"
    person.write_bytes(images.standing_person())
    nobody.write_bytes(images.jpeg(400, 600, seed=9))
    ok = subprocess.run([engine, "check-person", person], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["verdict"] == "ok" and ok.stderr == ""  # one JSON line, no native log lines
    refused = subprocess.run([engine, "check-person", nobody], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and json.loads(refused.stdout)["verdict"] != "ok"


def test_tryon_sandbox_script():
    sandbox = console_script("tryon-sandbox")
    shown = subprocess.run([sandbox, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: tryon-sandbox")
    assert "--latency" in shown.stdout and "--faults" in shown.stdout
    with sandbox_process("--api-key", "sk-script", command=(), executable=str(sandbox)) as url:
        health = requests.get(f"{url}/_sandbox/health", timeout=5)
        refused = requests.get(
            f"{url}/api/v1/tasks/nope", headers={"Authorization": "Bearer sk-sandbox"}, timeout=5
        )
    assert health.status_code == 200 and refused.status_code == 401
