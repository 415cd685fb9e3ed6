"""Share links of a result picture: the API (owner only), the public page and picture, expiry, revocation,
deletion and purge, and that nothing but the result picture is ever shown."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from django_tryon import services, sharing
from django_tryon.models import ShareLink, TryOn

from . import images

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_enqueue():
    with mock.patch("django_tryon.scheduling._send"):
        yield


@pytest.fixture
def owner():
    return APIClient()


@pytest.fixture
def job(owner, top_garment):
    """A succeeded try-on of ``owner`` (an anonymous shopper) with a stored result picture."""
    upload = SimpleUploadedFile("my holiday photo.jpg", images.person_photo(), content_type="image/jpeg")
    data = {"person_image": upload, "consent": "true", "product": top_garment.product.pk}
    body = owner.post("/tryon/api/tryons/", data, format="multipart").json()
    name = default_storage.save(
        "tryon/results/2026/12/" + "b" * 32 + ".jpg", SimpleUploadedFile("r.jpg", images.jpeg(300, 400))
    )
    TryOn.objects.filter(public_id=body["id"]).update(status="succeeded", result_image=name)
    return TryOn.objects.get(public_id=body["id"])


def share(client, job):
    return client.post(f"/tryon/api/tryons/{job.public_id}/share/")


def token_of(url: str) -> str:
    return re.search(r"/tryon/s/([^/]+)/$", url).group(1)


def test_owner_shares_and_gets_one_link(owner, job):
    assert owner.get(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404  # not shared yet
    response = share(owner, job)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"url", "image_url", "created_at", "expires_at"}
    assert body["url"].startswith("http://testserver/tryon/s/") and body["image_url"] == body["url"] + "image"
    token = token_of(body["url"])
    assert len(token) >= 43 and ShareLink.objects.get().token == token  # 256 random bits
    expires = ShareLink.objects.get().expires_at
    assert timedelta(days=7) - timedelta(minutes=1) < expires - timezone.now() <= timedelta(days=7)
    again = share(owner, job)  # sharing again hands out the same live link
    assert again.status_code == 200 and again.json()["url"] == body["url"] and ShareLink.objects.count() == 1
    assert owner.get(f"/tryon/api/tryons/{job.public_id}/share/").json()["url"] == body["url"]


def test_share_ttl_setting(owner, job):
    with override_settings(TRYON={"PUBLIC_BASE_URL": "https://shop.test", "SHARE_TTL": 3600}):
        share(owner, job)
    left = ShareLink.objects.get().expires_at - timezone.now()
    assert timedelta(minutes=59) < left <= timedelta(hours=1)


def test_only_the_owner_can_share_or_revoke(owner, job, django_user_model):
    stranger = APIClient()
    assert share(stranger, job).status_code == 404
    assert stranger.get(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404
    url = share(owner, job).json()["url"]
    assert stranger.delete(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404
    signed_in = APIClient()
    signed_in.force_authenticate(django_user_model.objects.create_user("mallory"))
    assert share(signed_in, job).status_code == 404
    assert owner.get(url).status_code == 200  # still shared


def test_only_a_succeeded_try_on_with_its_picture_can_be_shared(owner, job):
    TryOn.objects.filter(pk=job.pk).update(status="failed")
    response = share(owner, job)
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_shareable"
    chinese = owner.post(f"/tryon/api/tryons/{job.public_id}/share/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert chinese.json()["error"]["message"] == "只有已完成且图片仍保留的试衣才能分享。"
    TryOn.objects.filter(pk=job.pk).update(status="succeeded", result_image="")
    assert share(owner, job).status_code == 409 and not ShareLink.objects.exists()


def test_share_needs_csrf_for_a_browser_session(owner, job):
    browser = APIClient(enforce_csrf_checks=True)
    browser.cookies = owner.cookies  # the owner's own session, without the CSRF token
    assert share(browser, job).status_code == 403
    assert browser.delete(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 403
    assert browser.get(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404  # it is the owner
    assert not ShareLink.objects.exists()


def test_public_page_shows_the_result_picture_only(owner, job):
    url = share(owner, job).json()["url"]
    token = token_of(url)
    visitor = APIClient()  # anyone with the link: no session, no cookies
    page = visitor.get(url)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    image_url = f"http://testserver/tryon/s/{token}/image"
    for tag in (
        f'<meta property="og:image" content="{image_url}">',
        '<meta property="og:type" content="website">',
        '<meta property="og:title" content="Trying on Red tee">',
        '<meta name="twitter:card" content="summary_large_image">',
        f'<meta name="twitter:image" content="{image_url}">',
        f'<meta property="og:url" content="{url}">',
    ):
        assert tag in html, tag
    assert f'<img src="{image_url}"' in html and '<meta name="robots" content="noindex">' in html
    # Nothing of the try-on but its picture: no person photo, no garment snapshot, no storage name, no ids.
    headers = "\n".join(f"{k}: {v}" for k, v in page.items())
    person = job.person_image.name
    for secret in (
        person,
        person.rsplit("/", 1)[-1],
        "holiday",
        job.result_image.name.rsplit("/", 1)[-1],
        job.top_image.name.rsplit("/", 1)[-1] if job.top_image else "tryon/sent/",
        str(job.public_id),
        job.owner_key,
        "/tryon/files/",
        "persons",
    ):
        assert secret not in html and secret not in headers, secret
    assert re.findall(r'(?:src|content)="(http[^"]+)"', html) == [url, image_url, image_url, image_url]
    assert "max-age=60" in page["Cache-Control"] and page["X-Robots-Tag"] == "noindex"

    picture = visitor.get(image_url)
    assert picture.status_code == 200 and picture["Content-Type"] == "image/jpeg"
    assert b"".join(picture.streaming_content) == default_storage.open(job.result_image.name).read()
    assert picture["Cache-Control"] == "public, max-age=60"
    assert picture["Content-Disposition"] == 'inline; filename="try-on.jpg"'  # never the storage name
    assert person.rsplit("/", 1)[-1] not in str(picture.items())


def test_chinese_page(owner, job):
    url = share(owner, job).json()["url"]
    html = APIClient().get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert '<meta property="og:title" content="试穿 Red tee">' in html and 'lang="zh-hans"' in html


def test_expiry_with_an_advanced_clock(owner, job):
    start = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=start):
        url = share(owner, job).json()["url"]
    visitor = APIClient()
    day_six = start + timedelta(days=6, hours=23, minutes=59, seconds=30)
    with mock.patch("django.utils.timezone.now", return_value=day_six):
        assert visitor.get(url).status_code == 200
        image = visitor.get(url + "image")
        assert image.status_code == 200 and image["Cache-Control"] == "public, max-age=30"  # not past expiry
    with mock.patch("django.utils.timezone.now", return_value=start + timedelta(days=7, seconds=1)):
        page = visitor.get(url)
        assert page.status_code == 410 and page["Cache-Control"] == "no-store"
        assert "no longer shared" in page.content.decode()
        assert visitor.get(url + "image").status_code == 410
        assert owner.get(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404
        renewed = share(owner, job)  # an expired link is not handed out again: a new one
        assert renewed.status_code == 201 and renewed.json()["url"] != url


def test_revocation(owner, job):
    url = share(owner, job).json()["url"]
    visitor = APIClient()
    assert visitor.get(url).status_code == 200
    assert owner.delete(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 204
    assert visitor.get(url).status_code == 410 and visitor.get(url + "image").status_code == 410
    assert ShareLink.objects.get().revoked_at is not None
    assert owner.delete(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 204  # idempotent
    assert owner.get(f"/tryon/api/tryons/{job.public_id}/share/").status_code == 404
    new = share(owner, job).json()["url"]
    assert new != url and visitor.get(url).status_code == 410 and visitor.get(new).status_code == 200


def test_deleting_the_try_on_kills_the_link(owner, job):
    url = share(owner, job).json()["url"]
    assert owner.delete(f"/tryon/api/tryons/{job.public_id}/").status_code == 204
    visitor = APIClient()
    assert visitor.get(url).status_code == 404 and visitor.get(url + "image").status_code == 404
    assert not ShareLink.objects.exists()


def test_purging_the_files_kills_the_link(owner, job):
    url = share(owner, job).json()["url"]
    services.delete_images(job)  # what the retention purge does to an old try-on
    visitor = APIClient()
    assert visitor.get(url).status_code == 410 and visitor.get(url + "image").status_code == 410


def test_purge_by_retention_kills_the_link(owner, job):
    url = share(owner, job).json()["url"]
    TryOn.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert services.purge()["tryons"] == 1
    assert APIClient().get(url).status_code == 410


def test_missing_file_is_gone(owner, job):
    url = share(owner, job).json()["url"]
    default_storage.delete(job.result_image.name)
    assert APIClient().get(url + "image").status_code == 410


def test_unknown_and_malformed_tokens_are_404():
    visitor = APIClient()
    for token in ("x", "a" * 43, "a" * 200):
        assert visitor.get(f"/tryon/s/{token}/").status_code == 404
        assert visitor.get(f"/tryon/s/{token}/image").status_code == 404
    assert sharing.resolve("")[0] is sharing.LinkState.UNKNOWN


def test_public_routes_refuse_writes(owner, job):
    url = share(owner, job).json()["url"]
    assert APIClient().post(url).status_code == 405 and APIClient().post(url + "image").status_code == 405
