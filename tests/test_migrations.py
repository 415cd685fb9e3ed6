"""Migrations match the models, have unique numbers, and ignore DEFAULT_AUTO_FIELD."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

import django_tryon

pytestmark = pytest.mark.django_db


def test_no_missing_migrations():
    call_command("makemigrations", "django_tryon", check=True, dry_run=True, stdout=io.StringIO())


@override_settings(DEFAULT_AUTO_FIELD="django.db.models.AutoField")
def test_no_missing_migrations_under_another_default_auto_field():
    call_command("makemigrations", "django_tryon", check=True, dry_run=True, stdout=io.StringIO())


def test_no_duplicate_numbers():
    folder = Path(django_tryon.__file__).parent / "migrations"
    numbers = Counter(p.name[:4] for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert numbers and all(n == 1 for n in numbers.values())


def test_product_foreign_keys_follow_the_setting():
    text = (Path(django_tryon.__file__).parent / "migrations" / "0001_initial.py").read_text()
    assert "settings.TRYON_PRODUCT_MODEL" in text and "testapp" not in text
