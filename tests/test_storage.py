"""Upload paths and the signed, expiring file view."""

from __future__ import annotations

import re
import time
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from django_tryon import storage

from . import images

PATH = re.compile(r"^tryon/persons/\d{4}/\d{2}/[0-9a-f]{32}\.jpg$")


def test_paths_are_random_and_ignore_the_client_filename():
    a = storage.person_upload_to(None, "../../etc/Jane Doe passport.jpeg.exe")
    b = storage.person_upload_to(None, "Jane Doe.jpg")
    assert PATH.match(a) and PATH.match(b) and a != b and "Jane" not in b
    assert storage.result_upload_to(None, "r.png").endswith(".png")


def test_storage_comes_from_the_alias():
    from django.core.files.storage import storages

    assert storage.get_tryon_storage() is storages["default"]
    with override_settings(TRYON={"STORAGE": "secondary"}):
        assert storage.get_tryon_storage() is storages["secondary"]


@pytest.fixture
def stored_name():
    name = default_storage.save(storage.person_upload_to(None, "p.jpg"), ContentFile(images.person_photo()))
    yield name
    default_storage.delete(name)


def test_signed_url_serves_the_file(client, stored_name):
    response = client.get(storage.signed_path(stored_name))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == images.person_photo()
    assert response["Cache-Control"].startswith("private") and response["Referrer-Policy"] == "no-referrer"


def test_public_signed_url_is_absolute(stored_name):
    assert storage.public_signed_url(stored_name).startswith("https://shop.test/tryon/files/")


def test_tampered_token_is_404(client, stored_name):
    path = storage.signed_path(stored_name)
    token = path.rstrip("/").rsplit("/", 1)[-1]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert client.get(path.replace(token, tampered)).status_code == 404


def test_expired_token_is_404(client, stored_name):
    path = storage.signed_path(stored_name)
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 601):
        assert client.get(path).status_code == 404
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "SIGNED_URL_TTL": 3600}):
        with mock.patch("django.core.signing.time.time", return_value=time.time() + 601):
            assert client.get(path).status_code == 200


def test_names_outside_the_app_folder_and_missing_files_are_404(client):
    assert client.get(storage.signed_path("../settings.py")).status_code == 404
    assert client.get(storage.signed_path("other/x.jpg")).status_code == 404
    assert client.get(storage.signed_path("tryon/persons/2026/01/" + "0" * 32 + ".jpg")).status_code == 404


def test_media_files_are_not_listable(client):
    assert client.get("/tryon/files/").status_code == 404
