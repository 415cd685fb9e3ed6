"""Presigned input URLs from django-storages' S3 backend, against a real S3-compatible server (moto)."""

from __future__ import annotations

import boto3
import pytest
import requests
from django.core.files.base import ContentFile
from django.test import override_settings
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from django_tryon import pipeline, storage
from django_tryon.backends import get_backend

from . import images


@pytest.fixture(scope="module")
def s3_endpoint():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="shop-media")
    yield endpoint
    server.stop()


@pytest.fixture
def s3_storage(s3_endpoint, monkeypatch):
    s3 = S3Storage(
        bucket_name="shop-media",
        endpoint_url=s3_endpoint,
        access_key="test",
        secret_key="test",
        region_name="us-east-1",
        querystring_expire=600,
        default_acl="private",
    )
    monkeypatch.setattr(storage, "get_tryon_storage", lambda: s3)
    monkeypatch.setattr(pipeline, "get_tryon_storage", lambda: s3)
    return s3


def stored_photo(s3_storage):
    """A saved photo whose file lives in the S3 bucket."""
    from django.utils import timezone

    from django_tryon.models import PersonPhoto

    name = s3_storage.save(storage.person_upload_to(None, "p.jpg"), ContentFile(images.person_photo()))
    return PersonPhoto.objects.create(owner_key="k", consent_at=timezone.now(), image=name).image


@pytest.mark.django_db
def test_presigned_storage_url_is_sent_to_the_provider_and_works(s3_storage):
    with override_settings(TRYON={"OPTIONS": {"api_key": "k"}, "PUBLIC_BASE_URL": "https://shop.test"}):
        url = pipeline.input_url(stored_photo(s3_storage), get_backend())
    assert "Signature=" in url and "Expires=" in url  # SigV2 or SigV4 presigned
    assert requests.get(url, timeout=5).content == images.person_photo()
    bare = url.split("?")[0]
    assert requests.get(bare, timeout=5).status_code == 403  # private objects need the signature


@pytest.mark.django_db
def test_signed_strategy_ignores_the_storage_url(s3_storage):
    photo = stored_photo(s3_storage)
    with override_settings(
        TRYON={"OPTIONS": {"api_key": "k"}, "PUBLIC_BASE_URL": "https://shop.test", "INPUT_URLS": "signed"}
    ):
        assert pipeline.input_url(photo, get_backend()).startswith("https://shop.test/tryon/files/")


def test_presigning_is_read_from_the_storages_settings(s3_endpoint):
    from types import SimpleNamespace

    from django.core.files.storage import FileSystemStorage

    def s3(**options):
        return S3Storage(
            bucket_name="shop-media",
            endpoint_url=s3_endpoint,
            access_key="test",
            secret_key="test",
            region_name="us-east-1",
            **options,
        )

    assert storage.presigns_urls(s3()) and not storage.presigns_urls(s3(querystring_auth=False))
    behind_cdn = s3(custom_domain="cdn.shop.test")  # a custom domain signs only with a CloudFront signer
    assert not storage.presigns_urls(behind_cdn) and "?" not in behind_cdn.url("a.jpg")
    assert "Signature=" in s3().url("a.jpg")
    assert not storage.presigns_urls(FileSystemStorage())
    assert storage.presigns_urls(SimpleNamespace(expiration_secs=600))  # Azure's SAS URLs
    assert not storage.presigns_urls(SimpleNamespace(querystring_auth=True, default_acl="publicRead"))  # GCS


def test_a_public_bucket_is_reported(s3_endpoint, monkeypatch):
    """django_tryon.W007 reads django-storages' own settings: unsigned URLs or a public ACL."""
    from django_tryon.checks import check_settings

    public = S3Storage(
        bucket_name="shop-media",
        endpoint_url=s3_endpoint,
        access_key="test",
        secret_key="test",
        region_name="us-east-1",
        querystring_auth=False,
        default_acl="public-read",
    )
    monkeypatch.setattr(storage, "get_tryon_storage", lambda: public)
    assert [m.id for m in check_settings()].count("django_tryon.W007") == 1
    private = S3Storage(
        bucket_name="shop-media",
        endpoint_url=s3_endpoint,
        access_key="test",
        secret_key="test",
        region_name="us-east-1",
        default_acl="private",
    )
    monkeypatch.setattr(storage, "get_tryon_storage", lambda: private)
    assert "django_tryon.W007" not in [m.id for m in check_settings()]
