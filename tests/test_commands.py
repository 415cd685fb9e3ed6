"""The tryon_run and tryon_tick management commands."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_tryon.models import TryOn

from . import images
from .conftest import SUBMIT_URL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """Record the waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr("django_tryon.services.time.sleep", waits.append)
    return waits


@pytest.fixture
def inputs(tmp_path):
    person = tmp_path / "person.jpg"
    person.write_bytes(images.person_photo())
    top = tmp_path / "top.jpg"
    top.write_bytes(images.garment_photo())
    return person, top


def test_tryon_run_writes_the_result(dashscope, inputs, tmp_path, sleeps):
    person, top = inputs
    result = images.jpeg(480, 800, seed=11)
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    dashscope.task("SUCCEEDED")
    dashscope.result(result)
    out = tmp_path / "out.jpg"
    with override_settings(
        TRYON={
            "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
            "PUBLIC_BASE_URL": "https://shop.test",
            "POLL_INTERVAL": 0.01,
        }
    ):
        stdout = io.StringIO()
        call_command(
            "tryon_run",
            person=person,
            top=top,
            out=out,
            model="aitryon-plus",
            stdout=stdout,
            stderr=io.StringIO(),
        )
    assert out.read_bytes() == result and "polls" in stdout.getvalue()
    assert dashscope.submitted_json()["model"] == "aitryon-plus"
    # no history yet: the first poll probes after 1 s, then every POLL_INTERVAL (0.01 here)
    assert len(sleeps) == 2 and 0.9 < sleeps[0] <= 1.0 and sleeps[1] <= 0.011
    assert not TryOn.objects.exists()  # the job and its files are removed unless --keep


@pytest.mark.parametrize(
    "setup, code, message",
    [
        ("bad_person", 2, "person_image"),
        ("no_garment", 2, "--top"),
        ("missing_file", 2, "Cannot read"),
        ("provider_fails", 1, "InvalidPerson"),
        ("no_key", 3, "DASHSCOPE_API_KEY"),
    ],
)
def test_tryon_run_exit_codes(dashscope, inputs, tmp_path, monkeypatch, setup, code, message):
    person, top = inputs
    kwargs = {"person": person, "top": top, "out": tmp_path / "out.jpg"}
    if setup == "bad_person":
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"not an image" * 1000)
        kwargs["person"] = bad
    elif setup == "no_garment":
        kwargs.pop("top")
    elif setup == "missing_file":
        kwargs["top"] = tmp_path / "nope.jpg"
    elif setup == "provider_fails":
        dashscope.submit_ok()
        dashscope.task("FAILED", code="InvalidPerson", message="no human body")
    elif setup == "no_key":
        monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    settings = {
        "OPTIONS": {} if setup == "no_key" else {"api_key": "k", "base_url": "https://dashscope.test/api/v1"},
        "PUBLIC_BASE_URL": "https://shop.test",
        "POLL_INTERVAL": 0.01,
    }
    with override_settings(TRYON=settings), pytest.raises(CommandError) as info:
        call_command("tryon_run", stdout=io.StringIO(), stderr=io.StringIO(), **kwargs)
    assert info.value.returncode == code and message in str(info.value)
    assert not (tmp_path / "out.jpg").exists()


def test_tryon_run_retries_throttling(dashscope, inputs, tmp_path, monkeypatch):
    person, top = inputs
    dashscope.error("POST", SUBMIT_URL, 429, "Throttling.RateQuota")
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    monkeypatch.setattr(
        "django_tryon.pipeline.retry_delay", lambda retries, err: 0.01 if retries < 3 else None
    )
    call_command(
        "tryon_run",
        person=person,
        top=top,
        out=tmp_path / "o.jpg",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert (tmp_path / "o.jpg").exists()


def test_tryon_tick_reports_counts():
    out = io.StringIO()
    call_command("tryon_tick", stdout=out)
    assert out.getvalue().strip() == "admitted: 0, resumed: 0, expired: 0, webhooks: 0"
