"""The REST API: every endpoint, ownership, the error envelope, quotas, budgets, dedup and the schema."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from django_tryon.models import PersonPhoto, TryOn

from . import images
from .conftest import make_garment

pytestmark = pytest.mark.django_db
BASE = {"OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
        "PUBLIC_BASE_URL": "https://shop.test"}


def photo(name="me.jpg", data=None):
    return SimpleUploadedFile(name, data or images.person_photo(), content_type="image/jpeg")


@pytest.fixture(autouse=True)
def _no_enqueue():
    with mock.patch("django_tryon.scheduling._send"):
        yield


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def stranger():
    return APIClient()


def create(client, product, **extra):
    data = {"person_image": photo(), "consent": "true", "product": product.pk, **extra}
    return client.post("/tryon/api/tryons/", data, format="multipart")


# -- create, read, list ----------------------------------------------------------------------------
def test_create_answers_202_with_location(client, top_garment):
    response = create(client, top_garment.product)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == f"http://testserver/tryon/api/tryons/{body['id']}/"
    assert body["status"] == "queued" and body["queue_position"] == 1 and body["eta_seconds"] > 0
    assert body["result_url"] is None and body["error"] is None and body["model"] == "aitryon"
    job = TryOn.objects.get(public_id=body["id"])
    assert job.owner_key and job.user is None and job.consent_at is not None


def test_no_api_key_refuses_the_try_on_with_a_stable_code(client, top_garment, monkeypatch):
    """A site deployed without its key: 503 service_unavailable, nothing stored, nothing charged, no 500."""
    from django_tryon.models import TryOnAttempt

    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with override_settings(TRYON={**BASE, "OPTIONS": {"base_url": "https://dashscope.test/api/v1"}}):
        response = create(client, top_garment.product)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "sk-" not in response.content.decode() and "api_key" not in response.content.decode()
    assert not TryOn.objects.exists() and not TryOnAttempt.objects.exists()


def test_outfit_from_two_products(client, product, django_user_model):
    from tests.testapp.models import Product

    other = Product.objects.create(name="Blue jeans")
    top, bottom = make_garment(product, "top"), make_garment(other, "bottom")
    response = client.post("/tryon/api/tryons/", {"person_image": photo(), "consent": "true", "top_garment": top.pk,
                                                   "bottom_garment": bottom.pk, "resolution": 1280, "restore_face": "false"})
    assert response.status_code == 202
    job = TryOn.objects.get(public_id=response.json()["id"])
    assert (job.top_garment, job.bottom_garment, job.resolution, job.restore_face) == (top, bottom, 1280, False)


def test_list_is_own_paginated_newest_first(client, stranger, top_garment):
    ids = [create(client, top_garment.product, resolution=r).json()["id"] for r in (-1, 1024, 1280)]
    create(stranger, top_garment.product)
    with override_settings(TRYON={**BASE, "API_PAGE_SIZE": 2}):
        page = client.get("/tryon/api/tryons/").json()
    assert page["count"] == 3 and [j["id"] for j in page["results"]] == ids[::-1][:2] and page["next"]


def test_running_job_reports_elapsed_time(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    TryOn.objects.filter(public_id=job_id).update(status="running")
    body = client.get(f"/tryon/api/tryons/{job_id}/").json()
    assert body["elapsed_seconds"] >= 0 and body["queue_position"] is None


def test_succeeded_job_has_a_signed_result_url(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    name = default_storage.save("tryon/results/2026/11/" + "a" * 32 + ".jpg", SimpleUploadedFile("r.jpg", images.jpeg()))
    TryOn.objects.filter(public_id=job_id).update(status="succeeded", result_image=name)
    url = client.get(f"/tryon/api/tryons/{job_id}/").json()["result_url"]
    assert url.startswith("/tryon/files/") and client.get(url).status_code == 200


def test_failed_job_error_in_the_shoppers_language(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    TryOn.objects.filter(public_id=job_id).update(status="failed", error_code="InvalidPerson", error_message="no human")
    english = client.get(f"/tryon/api/tryons/{job_id}/").json()["error"]
    chinese = client.get(f"/tryon/api/tryons/{job_id}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()["error"]
    assert english == {"code": "InvalidPerson", "message": "The photo must show exactly one person, full body, facing the camera."}
    assert chinese["code"] == "InvalidPerson" and "正面" in chinese["message"]


# -- delete, retry, cancel ---------------------------------------------------------------------------
def test_delete_removes_the_photo_and_result(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    job = TryOn.objects.get(public_id=job_id)
    name = job.person_image.name
    assert client.delete(f"/tryon/api/tryons/{job_id}/").status_code == 204
    assert not TryOn.objects.exists() and not default_storage.exists(name)


def test_cancel_and_retry(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    canceled = client.post(f"/tryon/api/tryons/{job_id}/cancel/")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = client.post(f"/tryon/api/tryons/{job_id}/cancel/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"
    retried = client.post(f"/tryon/api/tryons/{job_id}/retry/")
    assert retried.status_code == 202 and TryOn.objects.get(public_id=job_id).attempts == 2
    assert client.post(f"/tryon/api/tryons/{job_id}/retry/").json()["error"]["code"] == "not_retryable"


# -- ownership -------------------------------------------------------------------------------------
def test_someone_elses_ids_are_404_everywhere(client, stranger, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    photo_id = client.post("/tryon/api/photos/", {"image": photo(), "consent": "true"}).json()["id"]
    for method, url in (("get", f"/tryon/api/tryons/{job_id}/"), ("delete", f"/tryon/api/tryons/{job_id}/"),
                        ("post", f"/tryon/api/tryons/{job_id}/retry/"), ("post", f"/tryon/api/tryons/{job_id}/cancel/"),
                        ("delete", f"/tryon/api/photos/{photo_id}/")):
        response = getattr(stranger, method)(url)
        assert response.status_code == 404 and response.json() == {
            "error": {"code": "not_found", "message": response.json()["error"]["message"], "field": None}}
    used = stranger.post("/tryon/api/tryons/", {"person_photo": photo_id, "product": top_garment.product.pk})
    assert used.status_code == 400 and used.json()["error"]["field"] == "person_photo"
    assert stranger.get("/tryon/api/tryons/").json()["count"] == 0 and stranger.get("/tryon/api/photos/").json() == []
    assert TryOn.objects.filter(public_id=job_id).exists()


def test_logged_in_shoppers_own_by_user(top_garment, django_user_model):
    alice, bob = (django_user_model.objects.create_user(n, password="pw") for n in ("alice", "bob"))
    a, b = APIClient(), APIClient()
    a.force_authenticate(alice)
    b.force_authenticate(bob)
    job_id = create(a, top_garment.product).json()["id"]
    assert TryOn.objects.get(public_id=job_id).user == alice
    assert b.get(f"/tryon/api/tryons/{job_id}/").status_code == 404 and a.get(f"/tryon/api/tryons/{job_id}/").status_code == 200


def test_anonymous_use_can_be_forbidden(client, top_garment):
    with override_settings(TRYON={**BASE, "ALLOW_ANONYMOUS": False}):
        response = create(client, top_garment.product)
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_required"


def test_session_auth_enforces_csrf_and_tokens_work(top_garment, django_user_model):
    from rest_framework.authtoken.models import Token

    browser = APIClient(enforce_csrf_checks=True)
    refused = create(browser, top_garment.product)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    browser.get("/tryon/api/tryons/")  # sets the session; fetch a CSRF token like the widget does
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    browser.cookies["csrftoken"] = token
    accepted = browser.post("/tryon/api/tryons/", {"person_image": photo(), "consent": "true",
                                                   "product": top_garment.product.pk}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202
    user = django_user_model.objects.create_user("app", password="pw")
    app = APIClient(enforce_csrf_checks=True)
    app.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert create(app, top_garment.product).status_code == 202


# -- photos and garments ---------------------------------------------------------------------------
def test_saved_photos_need_consent_and_are_reused(client, top_garment):
    refused = client.post("/tryon/api/photos/", {"image": photo(), "consent": "false"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "consent_required"
    assert refused.json()["error"]["field"] == "consent"
    saved = client.post("/tryon/api/photos/", {"image": photo(), "consent": "true"})
    assert saved.status_code == 201 and saved.json()["consent_at"]
    listed = client.get("/tryon/api/photos/").json()
    assert [p["id"] for p in listed] == [saved.json()["id"]] and client.get(listed[0]["image_url"]).status_code == 200
    job = client.post("/tryon/api/tryons/", {"person_photo": saved.json()["id"], "product": top_garment.product.pk})
    assert job.status_code == 202
    stored = PersonPhoto.objects.get()
    name = stored.image.name
    assert client.delete(f"/tryon/api/photos/{saved.json()['id']}/").status_code == 204
    assert not default_storage.exists(name) and TryOn.objects.get().person_photo is None


def test_product_garments(client, product):
    top = make_garment(product, "top")
    make_garment(product, "bottom", active=False)
    body = client.get(f"/tryon/api/products/{product.pk}/garments/").json()
    assert [(g["id"], g["kind"]) for g in body] == [(top.pk, "top")] and body[0]["image_url"].startswith("/tryon/files/")
    assert client.get("/tryon/api/products/999/garments/").status_code == 404


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, code, field",
    [
        ({"person_image": photo("tiny.jpg", images.jpeg(100, 400)), "consent": "true"}, "InvalidInputLength", "person_image"),
        ({"person_image": photo("x.gif", images.encode(images.noise_image(200, 200, mode="P"), "GIF")), "consent": "true"},
         "InvalidURL", "person_image"),
        ({"person_image": photo()}, "consent_required", "consent"),
        ({"consent": "true"}, "InvalidParameter", "person_image"),
        ({"person_image": photo(), "consent": "true", "resolution": 720}, "InvalidParameter", "resolution"),
    ],
)
def test_error_envelope(client, top_garment, data, code, field):
    response = client.post("/tryon/api/tryons/", {"product": top_garment.product.pk, **data})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and response.json()["error"]["field"] == field
    assert response.json()["error"]["message"]


def test_no_garment_is_invalid_garment(client, product):
    response = create(client, product)
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidGarment"


def test_error_messages_in_chinese(client, top_garment):
    response = client.post("/tryon/api/tryons/", {"product": top_garment.product.pk, "consent": "true",
                                                  "person_image": photo("tiny.jpg", images.jpeg(100, 400))},
                           HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert "像素" in response.json()["error"]["message"]


# -- cost control ----------------------------------------------------------------------------------
def test_daily_limit_per_session_answers_429_with_reset_time(client, top_garment):
    with override_settings(TRYON={**BASE, "DAILY_LIMIT_PER_SESSION": 2}):
        for r in (-1, 1024):
            assert create(client, top_garment.product, resolution=r).status_code == 202
        response = create(client, top_garment.product, resolution=1280)
    assert response.status_code == 429 and response.json()["error"]["code"] == "quota_exceeded"
    assert response.json()["error"]["reset_at"] and int(response["Retry-After"]) > 0
    assert TryOn.objects.count() == 2


def test_failed_attempts_count_and_only_a_cancel_before_submission_frees_the_slot(client, top_garment):
    with override_settings(TRYON={**BASE, "DAILY_LIMIT_PER_SESSION": 1}):
        first = create(client, top_garment.product).json()["id"]
        TryOn.objects.filter(public_id=first).update(status="failed")  # it may have been billed
        over = create(client, top_garment.product, resolution=1024)
        assert over.status_code == 429 and over.json()["error"]["code"] == "quota_exceeded"
        TryOn.objects.filter(public_id=first).delete()  # deleting a try-on gives nothing back
        assert create(client, top_garment.product, resolution=1024).status_code == 429
    with override_settings(TRYON={**BASE, "DAILY_LIMIT_PER_SESSION": 2}):
        second = create(client, top_garment.product, resolution=1024).json()["id"]
        assert client.post(f"/tryon/api/tryons/{second}/cancel/").status_code == 200  # still queued: released
        assert create(client, top_garment.product, resolution=1280).status_code == 202


def test_site_budget_in_images_and_money(client, stranger, top_garment):
    with override_settings(TRYON={**BASE, "DAILY_BUDGET_IMAGES": 1}):
        assert create(client, top_garment.product).status_code == 202
        over = create(stranger, top_garment.product)
    assert over.status_code == 429 and over.json()["error"]["code"] == "budget_exceeded"
    with override_settings(TRYON={**BASE, "DAILY_BUDGET_AMOUNT": "0.30", "PRICES": {"aitryon": "0.20"}}):
        assert create(stranger, top_garment.product, resolution=1024).status_code == 429  # 0.20 spent + 0.20 > 0.30


def test_the_same_request_returns_the_existing_job(client, top_garment):
    first = create(client, top_garment.product)
    second = create(client, top_garment.product)
    assert second.status_code == 202 and second.json()["id"] == first.json()["id"] and TryOn.objects.count() == 1
    with override_settings(TRYON={**BASE, "DEDUP_TTL": 0}):
        assert create(client, top_garment.product).json()["id"] != first.json()["id"]


# -- schema ----------------------------------------------------------------------------------------
def test_openapi_schema_validates(client):
    from drf_spectacular.validation import validate_schema

    response = client.get("/tryon/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    import json

    schema = json.loads(response.content)
    validate_schema(schema)
    paths = set(schema["paths"])
    assert {"/tryon/api/tryons/", "/tryon/api/tryons/{id}/", "/tryon/api/tryons/{id}/retry/", "/tryon/api/tryons/{id}/cancel/",
            "/tryon/api/photos/", "/tryon/api/photos/{id}/", "/tryon/api/products/{product_id}/garments/"} <= paths
    assert "202" in schema["paths"]["/tryon/api/tryons/"]["post"]["responses"]
