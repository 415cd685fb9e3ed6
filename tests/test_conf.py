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
    assert DEFAULTS["POLL_INTERVAL"] == tryon_settings.POLL_INTERVAL
    with override_settings(TRYON={"POLL_INTERVAL": 9}):
        assert tryon_settings.POLL_INTERVAL == 9
    assert DEFAULTS["POLL_INTERVAL"] == tryon_settings.POLL_INTERVAL


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        _ = tryon_settings.NOPE


def test_backend_import_error_is_a_configuration_error():
    with (
        override_settings(TRYON={"BACKEND": "nowhere.Backend"}),
        pytest.raises(TryOnConfigurationError, match="TRYON\\['BACKEND'\\]"),
    ):
        _ = tryon_settings.BACKEND


def test_every_default_is_documented():
    with open("docs/settings.rst", encoding="utf-8") as fh:
        text = fh.read()
    for key in DEFAULTS:
        assert f"``{key}``" in text, key


def test_clean_settings_pass_the_checks():
    assert check_settings() == []


def test_missing_api_key_is_a_deploy_check(monkeypatch):
    """A build step without secrets (migrate, collectstatic) passes; ``check --deploy`` names the setting."""
    from django_tryon.checks import check_credentials

    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    sandbox = {"PUBLIC_BASE_URL": "https://x", "OPTIONS": {"base_url": "http://127.0.0.1:8765/api/v1"}}
    with override_settings(TRYON=sandbox):
        assert check_settings() == []
        errors = check_credentials()
    assert ids(errors) == ["django_tryon.E004"]
    assert "DASHSCOPE_API_KEY" in errors[0].msg and "TRYON['OPTIONS']['api_key']" in errors[0].msg
    assert check_credentials in checks.registry.registry.get_checks(include_deployment_checks=True)
    assert check_credentials not in checks.registry.registry.get_checks(include_deployment_checks=False)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    with override_settings(TRYON=sandbox):
        assert check_settings() == [] and check_credentials() == []


def test_each_key_of_a_pool_needs_its_credentials(monkeypatch):
    from django_tryon.checks import check_credentials

    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    pool = [{"name": "hangzhou", "api_key": "sk-hz"}, {"name": "beijing"}]
    with override_settings(TRYON={"KEY_POOL": pool, "PUBLIC_BASE_URL": "https://x"}):
        errors = check_credentials()
    assert (
        ids(errors) == ["django_tryon.E004"]
        and "key 'beijing'" in errors[0].msg
        and "sk-hz" not in errors[0].msg
    )
    with override_settings(TRYON={"BACKEND": "nowhere.Backend"}):
        assert check_credentials() == []  # E001 says it, from the check every command runs


def test_product_model_checks():
    with override_settings(TRYON_PRODUCT_MODEL="shop.Nope"):
        assert "django_tryon.E002" in ids(check_settings())
    with override_settings(TRYON_PRODUCT_MODEL=None):
        assert "django_tryon.E002" in ids(check_settings())


def test_invalid_values_and_typos():
    base = {"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}}
    with override_settings(
        TRYON={**base, "INPUT_URLS": "ftp", "DEFAULT_RESOLUTION": 720, "POLL_INTERVALL": 2}
    ):
        found = ids(check_settings())
    assert found.count("django_tryon.E003") == 2 and "django_tryon.W003" in found


def test_debug_requests_without_debug_warns():
    with override_settings(
        DEBUG=False,
        TRYON={"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}, "DEBUG_API_REQUESTS": True},
    ):
        assert ids(check_settings()) == ["django_tryon.W002"]


def test_signed_inputs_without_public_base_url_warns():
    with override_settings(
        TRYON={"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}, "INPUT_URLS": "signed"}
    ):
        assert ids(check_settings()) == ["django_tryon.W001"]


def test_retired_model_on_the_real_service_warns():
    with override_settings(
        TRYON={"OPTIONS": {"api_key": "k", "base_url": "https://dashscope.aliyuncs.com/api/v1"}}
    ):
        messages = check_settings()
    # W004: the model is retired; W008: the chain has nothing to fail over to
    assert ids(messages) == ["django_tryon.W004", "django_tryon.W008"] and "aitryon" in messages[0].msg


def test_checks_are_registered():
    assert check_settings in checks.registry.registry.get_checks()


# -- spending and privacy checks (docs/security.rst) -------------------------------------------------
def test_anonymous_use_without_a_money_budget_warns():
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "DAILY_BUDGET_AMOUNT": None}):
        assert "django_tryon.W005" in ids(check_settings())
    with override_settings(
        TRYON={"OPTIONS": {"api_key": "k"}, "DAILY_BUDGET_AMOUNT": None, "ALLOW_ANONYMOUS": False}
    ):
        assert "django_tryon.W005" not in ids(check_settings())


def test_a_model_without_a_price_warns_when_a_budget_is_set():
    edit = {
        "BACKEND": "django_tryon.backends.dashscope_image_edit.DashScopeImageEditBackend",
        "OPTIONS": {"api_key": "k"},
    }
    with override_settings(TRYON=edit):  # the Qwen models have no list price here
        assert "django_tryon.W006" in ids(check_settings())
    with override_settings(TRYON={**edit, "PRICES": {"qwen-image-edit-plus": "0.25"}}):
        assert "django_tryon.W006" not in ids(check_settings())
    chain = {
        "BACKENDS": [
            {"BACKEND": "django_tryon.backends.dashscope.DashScopeBackend", "OPTIONS": {"api_key": "k"}},
            {**edit, "OPTIONS": {"api_key": "k", "model": "qwen-image-edit-max"}},
        ],
        "PRICES": {"qwen-image-edit-plus": "0.25"},
    }
    with override_settings(TRYON=chain):  # a later route of the chain counts too
        warnings = [m for m in check_settings() if m.id == "django_tryon.W006"]
        assert len(warnings) == 1 and "qwen-image-edit-max" in warnings[0].msg


def test_one_price_table():
    from decimal import Decimal

    from django_tryon.quotas import price_of

    assert price_of("aitryon") == Decimal("0.20") and price_of("aitryon-plus") == Decimal(
        "0.50"
    )  # list prices
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "PRICES": {"aitryon": "0.18"}}):
        assert price_of("aitryon") == Decimal("0.18")  # the shop's own price list wins
    assert price_of("unknown-model") == Decimal("0")
    usd = {"OPTIONS": {"api_key": "k", "base_url": "http://sandbox/api/v1"}, "CURRENCY": "USD"}
    with override_settings(TRYON=usd):  # a CNY list price is no USD price: unknown, and W006 says so
        assert price_of("aitryon") == Decimal("0")
        assert [m.msg for m in check_settings() if m.id == "django_tryon.W006"] == [
            (
                "No price is known for model 'aitryon' (TRYON['PRICES'] or the backend's list price): the daily "
                "money budget counts it as free."
            )
        ]
    with override_settings(TRYON={**usd, "PRICES": {"aitryon": "0.03"}}):
        assert price_of("aitryon") == Decimal("0.03")


def test_a_public_bucket_warns():
    from unittest import mock

    from django.core.files.storage import InMemoryStorage

    class PublicS3(InMemoryStorage):
        querystring_auth = False
        default_acl = "public-read"

    with mock.patch("django_tryon.storage.get_tryon_storage", return_value=PublicS3()):
        warning = next(m for m in check_settings() if m.id == "django_tryon.W007")
    assert "querystring_auth" in warning.msg and "public-read" in warning.msg


def test_media_served_by_django_warns():
    from django.urls import re_path
    from django.views.static import serve

    from tests import urls

    patterns = [*urls.urlpatterns, re_path(r"^media/(?P<path>.*)$", serve, {"document_root": "/tmp"})]
    with override_settings(ROOT_URLCONF=type("U", (), {"urlpatterns": patterns})):
        assert "django_tryon.W007" in ids(check_settings())
    assert "django_tryon.W007" not in ids(check_settings())
