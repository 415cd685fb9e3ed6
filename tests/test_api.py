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
BASE = {
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}


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
    response = client.post(
        "/tryon/api/tryons/",
        {
            "person_image": photo(),
            "consent": "true",
            "top_garment": top.pk,
            "bottom_garment": bottom.pk,
            "resolution": 1280,
            "restore_face": "false",
        },
    )
    assert response.status_code == 202
    job = TryOn.objects.get(public_id=response.json()["id"])
    assert (job.top_garment, job.bottom_garment, job.resolution, job.restore_face) == (
        top,
        bottom,
        1280,
        False,
    )


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
    name = default_storage.save(
        "tryon/results/2026/11/" + "a" * 32 + ".jpg", SimpleUploadedFile("r.jpg", images.jpeg())
    )
    TryOn.objects.filter(public_id=job_id).update(status="succeeded", result_image=name)
    url = client.get(f"/tryon/api/tryons/{job_id}/").json()["result_url"]
    assert url.startswith("/tryon/files/") and client.get(url).status_code == 200


def test_failed_job_error_in_the_shoppers_language(client, top_garment):
    job_id = create(client, top_garment.product).json()["id"]
    TryOn.objects.filter(public_id=job_id).update(
        status="failed", error_code="InvalidPerson", error_message="no human"
    )
    english = client.get(f"/tryon/api/tryons/{job_id}/").json()["error"]
    chinese = client.get(f"/tryon/api/tryons/{job_id}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()["error"]
    assert english == {
        "code": "InvalidPerson",
        "message": "The photo must show exactly one person, full body, facing the camera.",
    }
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
    for method, url in (
        ("get", f"/tryon/api/tryons/{job_id}/"),
        ("delete", f"/tryon/api/tryons/{job_id}/"),
        ("post", f"/tryon/api/tryons/{job_id}/retry/"),
        ("post", f"/tryon/api/tryons/{job_id}/cancel/"),
        ("delete", f"/tryon/api/photos/{photo_id}/"),
    ):
        response = getattr(stranger, method)(url)
        assert response.status_code == 404 and response.json() == {
            "error": {"code": "not_found", "message": response.json()["error"]["message"], "field": None}
        }
    used = stranger.post("/tryon/api/tryons/", {"person_photo": photo_id, "product": top_garment.product.pk})
    assert (
        used.status_code == 404 and used.json()["error"]["field"] == "person_photo"
    )  # not yours: as if it did not exist
    assert (
        stranger.get("/tryon/api/tryons/").json()["count"] == 0
        and stranger.get("/tryon/api/photos/").json() == []
    )
    assert TryOn.objects.filter(public_id=job_id).exists()


def test_logged_in_shoppers_own_by_user(top_garment, django_user_model):
    alice, bob = (django_user_model.objects.create_user(n, password="pw") for n in ("alice", "bob"))
    a, b = APIClient(), APIClient()
    a.force_authenticate(alice)
    b.force_authenticate(bob)
    job_id = create(a, top_garment.product).json()["id"]
    assert TryOn.objects.get(public_id=job_id).user == alice
    assert (
        b.get(f"/tryon/api/tryons/{job_id}/").status_code == 404
        and a.get(f"/tryon/api/tryons/{job_id}/").status_code == 200
    )


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
    accepted = browser.post(
        "/tryon/api/tryons/",
        {"person_image": photo(), "consent": "true", "product": top_garment.product.pk},
        HTTP_X_CSRFTOKEN=token,
    )
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
    assert [p["id"] for p in listed] == [saved.json()["id"]] and client.get(
        listed[0]["image_url"]
    ).status_code == 200
    job = client.post(
        "/tryon/api/tryons/", {"person_photo": saved.json()["id"], "product": top_garment.product.pk}
    )
    assert job.status_code == 202
    stored = PersonPhoto.objects.get()
    name = stored.image.name
    assert client.delete(f"/tryon/api/photos/{saved.json()['id']}/").status_code == 204
    assert not default_storage.exists(name) and TryOn.objects.get().person_photo is None


def test_product_garments(client, product):
    top = make_garment(product, "top")
    make_garment(product, "bottom", active=False)
    body = client.get(f"/tryon/api/products/{product.pk}/garments/").json()
    assert [(g["id"], g["kind"]) for g in body] == [(top.pk, "top")] and body[0]["image_url"].startswith(
        "/tryon/files/"
    )
    assert client.get("/tryon/api/products/999/garments/").status_code == 404


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, code, field",
    [
        (
            {"person_image": photo("tiny.jpg", images.jpeg(100, 400)), "consent": "true"},
            "InvalidInputLength",
            "person_image",
        ),
        (
            {
                "person_image": photo("x.gif", images.encode(images.noise_image(200, 200, mode="P"), "GIF")),
                "consent": "true",
            },
            "InvalidURL",
            "person_image",
        ),
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
    response = client.post(
        "/tryon/api/tryons/",
        {
            "product": top_garment.product.pk,
            "consent": "true",
            "person_image": photo("tiny.jpg", images.jpeg(100, 400)),
        },
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )
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
        assert (
            create(stranger, top_garment.product, resolution=1024).status_code == 429
        )  # 0.20 spent + 0.20 > 0.30


def test_the_same_request_returns_the_existing_job(client, top_garment):
    first = create(client, top_garment.product)
    second = create(client, top_garment.product)
    assert (
        second.status_code == 202 and second.json()["id"] == first.json()["id"] and TryOn.objects.count() == 1
    )
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
    assert paths == {
        "/tryon/api/tryons/",
        "/tryon/api/tryons/{id}/",
        "/tryon/api/tryons/{id}/retry/",
        "/tryon/api/tryons/{id}/cancel/",
        "/tryon/api/tryons/{id}/share/",
        "/tryon/api/photos/",
        "/tryon/api/photos/{id}/",
        "/tryon/api/products/{product_id}/garments/",
    }  # the try-on API's own operations, not the schema's
    assert "202" in schema["paths"]["/tryon/api/tryons/"]["post"]["responses"]


def schema_of(client, **tryon):
    import json

    with override_settings(TRYON={**BASE, **tryon}):
        return json.loads(client.get("/tryon/api/schema/", HTTP_ACCEPT="application/json").content)


def test_schema_is_titled_by_the_package_unless_the_project_says(client):
    from django_tryon import __version__
    from django_tryon.api.schema import TryOnSchemaView

    info = schema_of(client)["info"]
    assert (
        info["title"] == "django-tryon"
        and info["version"] == __version__
        and "ErrorEnvelope" in info["description"]
    )
    with override_settings(
        SPECTACULAR_SETTINGS={"TITLE": "Shop API", "PREPROCESSING_HOOKS": ["shop.hooks.keep"]}
    ):
        own = TryOnSchemaView().custom_settings
    assert "TITLE" not in own and own["VERSION"] == __version__  # the project's TITLE stands
    assert own["PREPROCESSING_HOOKS"] == ["shop.hooks.keep", "django_tryon.api.schema.only_tryon_endpoints"]


def test_schema_documents_every_error_with_the_envelope(client):
    schema = schema_of(client)
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert schema["components"]["schemas"]["ErrorEnvelope"]["required"] == ["error"]
    assert set(schema["components"]["schemas"]["ErrorDetail"]["required"]) == {"code", "message", "field"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {status for status in responses if status >= "400"}
            expected = {"401"} | ({"403"} if method != "get" else set()) | ({"404"} if "{" in path else set())
            assert expected <= errors, (method, path, errors)
            for status in errors:
                assert responses[status]["content"]["application/json"]["schema"] == envelope, (
                    method,
                    path,
                    status,
                )
                assert "Codes: `" in responses[status]["description"], (method, path, status)
    create = schema["paths"]["/tryon/api/tryons/"]["post"]["responses"]
    assert {"400", "404", "429", "503"} <= set(create) and "`InvalidInputLength`" in create["400"][
        "description"
    ]
    assert (
        create["429"]["headers"]["Retry-After"]["required"]
        and create["202"]["headers"]["Location"]["required"]
    )
    cancel = schema["paths"]["/tryon/api/tryons/{id}/cancel/"]["post"]["responses"]
    assert (
        "`not_cancelable`" in cancel["409"]["description"]
        and "`already_finished`" in cancel["409"]["description"]
    )


def test_schema_ids_are_uuids_and_anonymous_use_is_declared(client):
    schema = schema_of(client)
    for path in ("/tryon/api/tryons/{id}/", "/tryon/api/tryons/{id}/cancel/", "/tryon/api/photos/{id}/"):
        for operation in schema["paths"][path].values():
            (parameter,) = operation["parameters"]
            assert parameter["schema"] == {"type": "string", "format": "uuid"}
    security = schema["paths"]["/tryon/api/tryons/"]["post"]["security"]
    assert security == [{"tokenAuth": []}, {"sessionCookie": []}, {}]
    assert schema["components"]["securitySchemes"]["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "sessionid",
        "description": mock.ANY,
    }
    signed_in_only = schema_of(client, ALLOW_ANONYMOUS=False)["paths"]["/tryon/api/tryons/"]["post"][
        "security"
    ]
    assert signed_in_only == [{"tokenAuth": []}, {"sessionCookie": []}]


def test_schema_says_what_a_tryon_needs(client):
    """An empty POST tryons/ is not schema-valid; the person and garment rules are (JSON Schema of OpenAPI 3.0)."""
    import jsonschema

    schema = schema_of(client)
    content = schema["paths"]["/tryon/api/tryons/"]["post"]["requestBody"]
    assert content["required"] is True
    multipart = content["content"]["multipart/form-data"]
    assert (
        multipart["encoding"]["person_image"]["contentType"] == "image/jpeg, image/png, image/bmp, image/webp"
    )

    components = schema["components"]["schemas"]

    def valid(component, body):  # OpenAPI 3.0 schema objects are JSON Schema (draft 4 family) plus keywords
        return jsonschema.Draft4Validator(
            {**components[component], "components": {"schemas": components}}
        ).is_valid(body)

    image = {"person_image": "<bytes>", "consent": True}
    assert not valid("TryOnCreate", {})
    assert not valid("TryOnCreate", {"product": 1})  # no photo
    assert not valid("TryOnCreate", {"person_image": "<bytes>", "product": 1})  # no consent
    assert not valid("TryOnCreate", {"person_image": "<bytes>", "consent": False, "product": 1})
    assert not valid(
        "TryOnCreate", {**image, "person_photo": "5f0c2e4a-4f53-4a57-9a6e-0d3c1c1b7d2e", "product": 1}
    )
    assert not valid("TryOnCreate", image)  # no garment
    assert not valid(
        "TryOnCreate", {**image, "product": 1, "refine": True}
    )  # the second pass needs the gender
    assert not valid(
        "TryOnCreate", {**image, "bottom_garment": 2, "refine": True, "gender": "man"}
    )  # and a top
    assert not valid(
        "TryOnCreate", {**image, "product": 1, "refine": True, "gender": "man", "resolution": 1024}
    )
    assert valid("TryOnCreate", {**image, "product": 1})
    assert valid(
        "TryOnCreate", {**image, "top_garment": 1, "bottom_garment": 2, "refine": True, "gender": "woman"}
    )
    assert valid("TryOnCreate", {"person_photo": "5f0c2e4a-4f53-4a57-9a6e-0d3c1c1b7d2e", "bottom_garment": 2})
    json_body = content["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert (
        json_body == "TryOnCreateFromPhoto"
        and "person_image" not in schema["components"]["schemas"][json_body]["properties"]
    )
    assert not valid(json_body, {"product": 1}) and valid(
        json_body, {"person_photo": "5f0c2e4a-4f53-4a57-9a6e-0d3c1c1b7d2e", "product": 1}
    )
    photos = schema["paths"]["/tryon/api/photos/"]["post"]["requestBody"]["content"]
    assert set(photos) == {"multipart/form-data"} and not valid(
        "PhotoCreate", {"image": "<bytes>", "consent": False}
    )


def test_malformed_ids_and_unknown_api_urls_are_the_envelopes_404(client, top_garment):
    from django.urls import reverse

    job_id = create(client, top_garment.product).json()["id"]
    for method, url in (
        ("get", "/tryon/api/tryons/42/"),
        ("delete", "/tryon/api/tryons/not-a-uuid/"),
        ("post", "/tryon/api/tryons/a.b/cancel/"),
        ("post", "/tryon/api/tryons/%0A/retry/"),
        ("delete", "/tryon/api/photos/0/"),
        ("get", "/tryon/api/products/x/garments/"),
        ("post", "/tryon/api/nothing/here/"),
        ("get", "/tryon/api/"),
    ):
        response = getattr(client, method)(url)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", (method, url)
        assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "field": None}}
    assert (
        client.get(f"/tryon/api/tryons/{job_id.upper()}/").status_code == 404
    )  # ids are written as the API gives them
    assert reverse("django_tryon:tryon-detail", args=[job_id]) == f"/tryon/api/tryons/{job_id}/"


def test_unknown_references_are_404_and_bad_page_sizes_400(client, top_garment):
    missing = client.post(
        "/tryon/api/tryons/", {"person_image": photo(), "consent": "true", "product": 999_999}
    )
    assert missing.status_code == 404 and missing.json()["error"] == {
        "code": "not_found",
        "message": "No such product.",
        "field": "product",
    }
    assert client.get("/tryon/api/tryons/?page_size=20").status_code == 200
    for size in ("0", "-1", "x", ""):
        response = client.get(f"/tryon/api/tryons/?page_size={size}")
        assert response.status_code == 400 and response.json()["error"]["field"] == "page_size", size
    assert client.get("/tryon/api/tryons/?page=9").json()["error"]["code"] == "not_found"


def test_a_bad_token_is_401_with_its_challenge(client):
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get("/tryon/api/tryons/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "authentication_required"
