"""The lazy settings object and the system checks."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from django_tryon.checks import check_settings
from django_tryon.conf import DEFAULTS, tryon_settings
from django_tryon.exceptions import TryOnConfigurationError


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_defaults_and_overrides():
    assert tryon_settings.POLL_INTERVAL == DEFAULTS["POLL_INTERVAL"]
    with override_settings(TRYON={"POLL_INTERVAL": 9}):
        assert tryon_settings.POLL_INTERVAL == 9
    assert tryon_settings.POLL_INTERVAL == DEFAULTS["POLL_INTERVAL"]


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        tryon_settings.NOPE


def test_backend_import_error_is_a_configuration_error():
    with override_settings(TRYON={"BACKEND": "nowhere.Backend"}):
        with pytest.raises(TryOnConfigurationError, match="TRYON\\['BACKEND'\\]"):
            tryon_settings.BACKEND


def test_every_default_is_documented():
    with open("docs/settings.rst", encoding="utf-8") as fh:
        text = fh.read()
    for key in DEFAULTS:
        assert f"``{key}``" in text, key


def test_clean_settings_pass_the_checks():
    assert check_settings() == []


def test_missing_api_key_names_the_setting(monkeypatch):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with override_settings(TRYON={"PUBLIC_BASE_URL": "https://x"}):
        errors = check_settings()
    assert ids(errors) == ["django_tryon.E001"]
    assert "DASHSCOPE_API_KEY" in errors[0].msg and "TRYON['OPTIONS']['api_key']" in errors[0].msg
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    with override_settings(TRYON={"PUBLIC_BASE_URL": "https://x", "OPTIONS": {"base_url": "http://127.0.0.1:8765/api/v1"}}):
        assert check_settings() == []


def test_product_model_checks():
    with override_settings(TRYON_PRODUCT_MODEL="shop.Nope"):
        assert "django_tryon.E002" in ids(check_settings())
    with override_settings(TRYON_PRODUCT_MODEL=None):
        assert "django_tryon.E002" in ids(check_settings())


def test_invalid_values_and_typos():
    base = {"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}}
    with override_settings(TRYON={**base, "INPUT_URLS": "ftp", "DEFAULT_RESOLUTION": 720, "POLL_INTERVALL": 2}):
        found = ids(check_settings())
    assert found.count("django_tryon.E003") == 2 and "django_tryon.W003" in found


def test_debug_requests_without_debug_warns():
    with override_settings(DEBUG=False, TRYON={"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}, "DEBUG_API_REQUESTS": True}):
        assert ids(check_settings()) == ["django_tryon.W002"]


def test_signed_inputs_without_public_base_url_warns():
    with override_settings(TRYON={"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}, "INPUT_URLS": "signed"}):
        assert ids(check_settings()) == ["django_tryon.W001"]


def test_retired_model_on_the_real_service_warns():
    with override_settings(TRYON={"OPTIONS": {"api_key": "k", "base_url": "https://dashscope.aliyuncs.com/api/v1"}}):
        messages = check_settings()
    assert ids(messages) == ["django_tryon.W004"] and "aitryon" in messages[0].msg


def test_checks_are_registered():
    assert check_settings in checks.registry.registry.get_checks()
