"""Upload paths and the signed, expiring file view."""

from __future__ import annotations

import re
import time
from unittest import mock

import pytest
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
def photo(db):
    from django_tryon import services

    saved = services.save_photo(image=images.person_photo(), owner_key="k", consent=True)
    yield saved.image
    default_storage.delete(saved.image.name)


def test_read_bytes_of_a_field_file_or_a_stored_name(photo):
    content = storage.read_bytes(photo)
    assert content[:2] == b"\xff\xd8" and storage.read_bytes(photo.name) == content
    default_storage.delete(photo.name)
    with pytest.raises(OSError):
        storage.read_bytes(photo.name)


def test_signed_url_serves_the_file_never_cached(client, photo):
    response = client.get(storage.signed_path(photo))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == images.person_photo()
    assert response["Cache-Control"] == "private, no-store" and response["Referrer-Policy"] == "no-referrer"


def test_garment_images_may_be_cached_briefly(client, top_garment):
    response = client.get(storage.signed_path(top_garment.image))
    assert response.status_code == 200 and response["Cache-Control"] == "private, max-age=600"


def test_public_signed_url_is_absolute(photo):
    assert storage.public_signed_url(photo).startswith("https://shop.test/tryon/files/")


def test_token_names_no_storage_path(photo):
    """Finding 7: a token is an id, not the file's path (a public bucket could serve a path forever)."""
    import base64
    import zlib

    token = storage.sign_file(photo)
    payload = token.split(":")[0].lstrip(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    text = (zlib.decompress(raw) if token.startswith(".") else raw).decode()
    assert photo.name not in text and "tryon/" not in text and photo.name.rsplit("/", 1)[-1] not in text
    assert photo.instance.public_id.hex in text


def test_deleted_file_stops_being_served_at_once(client, photo):
    from django_tryon import services

    path = storage.signed_path(photo)
    services.delete_photo(photo.instance)
    assert client.get(path).status_code == 404


def test_tampered_token_is_404(client, photo):
    path = storage.signed_path(photo)
    token = path.rstrip("/").rsplit("/", 1)[-1]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert client.get(path.replace(token, tampered)).status_code == 404


def test_expired_token_is_404(client, photo):
    path = storage.signed_path(photo)
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 601):
        assert client.get(path).status_code == 404
    with (
        override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "SIGNED_URL_TTL": 3600}),
        mock.patch("django.core.signing.time.time", return_value=time.time() + 601),
    ):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        ["x", "1", "image"],
        ["p", "not-a-uuid", "image"],
        ["p", "0" * 32, "image"],
        ["g", "1", "product"],
        ["t", "0" * 32, "../settings.py"],
        "tryon/x.jpg",
    ],
)
def test_forged_or_unknown_payloads_are_404(client, db, payload):
    from django.core import signing

    token = signing.dumps(payload, salt=storage.SIGNING_SALT, compress=True)
    assert client.get(f"/tryon/files/{token}/").status_code == 404


def test_media_files_are_not_listable(client):
    assert client.get("/tryon/files/").status_code == 404
