"""The abuse findings of docs/security.rst, each probed over real HTTP the way an attacker or a shopper
would (a live server, ``requests``, cookies and headers of our choosing)."""

from __future__ import annotations

import random
import string

import pytest
import requests
from django.contrib.sessions.models import Session
from django.core.files.storage import default_storage
from django.test import override_settings

from django_tryon.models import PersonPhoto, TryOn, TryOnAttempt

from . import images

pytestmark = pytest.mark.django_db(transaction=True)
BASE = {
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}


class Browser(requests.Session):
    """A client with a CSRF cookie of its own choosing (as any script can) that sends it back when asked."""

    def __init__(self, base: str, csrf: bool = True) -> None:
        super().__init__()
        self.base = base
        self.token = "".join(random.choices(string.ascii_letters + string.digits, k=32))
        if csrf:
            self.cookies.set("csrftoken", self.token)
        self.send_csrf = csrf

    def request(self, method, url, *args, **kwargs):
        headers = kwargs.pop("headers", None) or {}
        if self.send_csrf and method.upper() not in ("GET", "HEAD"):
            headers.setdefault("X-CSRFToken", self.token)
        return super().request(method, self.base + url, *args, headers=headers, timeout=20, **kwargs)


def photo_file(data: bytes | None = None) -> tuple[str, bytes, str]:
    return ("me.jpg", data or images.person_photo(), "image/jpeg")


def create(browser: Browser, product, headers=None, **extra):
    return browser.post(
        "/tryon/api/tryons/",
        data={"consent": "true", "product": product.pk, **extra},
        files={"person_image": photo_file()},
        headers=headers,
    )


@pytest.fixture
def site(live_server):
    return live_server.url


# -- 1. a retry is a paid attempt ------------------------------------------------------------------
def test_retry_goes_through_the_daily_limit(site, top_garment):
    shopper = Browser(site)
    with override_settings(TRYON={**BASE, "DAILY_LIMIT_PER_SESSION": 2}):
        job = create(shopper, top_garment.product).json()["id"]
        TryOn.objects.filter(public_id=job).update(status="failed")  # the provider tried, and billed
        assert shopper.post(f"/tryon/api/tryons/{job}/retry/").status_code == 202
        TryOn.objects.filter(public_id=job).update(status="failed")
        again = shopper.post(f"/tryon/api/tryons/{job}/retry/")
    assert again.status_code == 429 and again.json()["error"]["code"] == "quota_exceeded"
    assert int(again.headers["Retry-After"]) > 0 and TryOnAttempt.objects.count() == 2


def test_retry_goes_through_the_site_budget(site, top_garment):
    shopper = Browser(site)
    with override_settings(TRYON={**BASE, "DAILY_BUDGET_IMAGES": 1}):
        job = create(shopper, top_garment.product).json()["id"]
        TryOn.objects.filter(public_id=job).update(status="failed")
        refused = shopper.post(f"/tryon/api/tryons/{job}/retry/")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert TryOn.objects.get(public_id=job).status == "failed"


def test_cancel_before_submission_frees_the_slot_and_nothing_else_does(site, top_garment):
    shopper = Browser(site)
    with override_settings(TRYON={**BASE, "DAILY_LIMIT_PER_SESSION": 1}):
        job = create(shopper, top_garment.product).json()["id"]
        TryOn.objects.filter(public_id=job).update(status="queued")  # not yet sent to the provider
        assert shopper.post(f"/tryon/api/tryons/{job}/cancel/").json()["status"] == "canceled"
        assert shopper.post(f"/tryon/api/tryons/{job}/retry/").status_code == 202  # the freed slot
        TryOn.objects.filter(public_id=job).update(status="canceled")  # canceled at the provider: counted
        assert shopper.post(f"/tryon/api/tryons/{job}/retry/").status_code == 429
        assert shopper.delete(f"/tryon/api/tryons/{job}/").status_code == 204
        assert (
            create(shopper, top_garment.product, resolution=1024).status_code == 429
        )  # deleting gives nothing back


def test_the_gate_holds_under_concurrent_requests(site, top_garment):
    """16 shoppers press the button at the same moment against a budget of 3: exactly 3 attempts pass."""
    from concurrent.futures import ThreadPoolExecutor

    def press(n: int) -> int:
        return create(Browser(site), top_garment.product, resolution=(-1, 1024, 1280)[n % 3]).status_code

    with (
        override_settings(TRYON={**BASE, "THROTTLE_RATES": {}, "DAILY_BUDGET_IMAGES": 3}),
        ThreadPoolExecutor(16) as pool,
    ):
        codes = list(pool.map(press, range(16)))
    assert sorted(codes) == [202] * 3 + [429] * 13, codes
    assert TryOnAttempt.objects.count() == 3 and TryOn.objects.count() == 3


# -- 2. a ceiling by default -------------------------------------------------------------------------
def test_cookieless_creates_from_one_address_are_throttled(site, top_garment):
    """30 cookie-less creates (a fresh session and a self-chosen CSRF cookie each, a forged
    X-Forwarded-For each): the default per-address rate lets 6 through."""
    codes = []
    for n in range(30):
        attacker = Browser(site)
        response = attacker.post(
            "/tryon/api/tryons/",
            data={
                "consent": "true",
                "product": top_garment.product.pk,
                "resolution": (-1, 1024, 1280)[n % 3],
            },
            files={"person_image": photo_file(images.jpeg(400, 600, seed=n))},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
        codes.append(response.status_code)
        if response.status_code == 429:
            assert (
                response.json()["error"]["code"] == "rate_limited"
                and int(response.headers["Retry-After"]) >= 1
            )
    assert codes.count(202) == 6 and codes.count(429) == 24 and TryOnAttempt.objects.count() == 6


def test_trusted_proxies_are_counted_from_the_right(site, top_garment):
    """Behind one proxy the client is the last X-Forwarded-For entry; what the client wrote before it is ignored."""

    def attempt(forwarded: str, resolution: int) -> int:
        return create(
            Browser(site), top_garment.product, resolution=resolution, headers={"X-Forwarded-For": forwarded}
        ).status_code

    with override_settings(TRYON={**BASE, "NUM_PROXIES": 1, "THROTTLE_RATES": {"create": "1/min"}}):
        assert attempt("1.1.1.1, 198.51.100.1", -1) == 202
        assert attempt("2.2.2.2, 198.51.100.1", 1024) == 429  # a new spoofed entry, the same client
        assert attempt("198.51.100.2", 1280) == 202  # another client behind the same proxy


def test_queue_caps_per_shopper_and_site_wide(site, top_garment):
    shopper = Browser(site)
    with override_settings(TRYON={**BASE, "MAX_QUEUED_PER_OWNER": 2}):
        codes = [create(shopper, top_garment.product, resolution=r).status_code for r in (-1, 1024, 1280)]
    assert codes == [202, 202, 429]
    with override_settings(TRYON={**BASE, "MAX_QUEUED": 2}):
        refused = create(Browser(site), top_garment.product)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "queue_full"
    assert refused.headers["Retry-After"] == "30"


# -- 3. CSRF cannot be switched off by a header ------------------------------------------------------
@pytest.mark.parametrize("authorization", ["Basic c3RhZ2luZzpwYXNzd29yZA==", "Bearer xyz", "x", "Token"])
def test_an_authorization_header_does_not_lift_csrf(site, top_garment, authorization):
    victim = Browser(site)
    saved = victim.post("/tryon/api/photos/", data={"consent": "true"}, files={"image": photo_file()}).json()[
        "id"
    ]
    forged = {"Authorization": authorization, "Origin": "https://evil.example", "X-CSRFToken": ""}
    victim.send_csrf = False
    paid = victim.post(
        "/tryon/api/tryons/", data={"person_photo": saved, "product": top_garment.product.pk}, headers=forged
    )
    deleted = victim.delete(f"/tryon/api/photos/{saved}/", headers=forged)
    assert paid.status_code in (401, 403) and deleted.status_code in (401, 403)
    assert not TryOn.objects.exists() and PersonPhoto.objects.filter(public_id=saved).exists()


def test_a_logged_in_shopper_stays_themselves_behind_a_basic_auth_header(
    site, top_garment, django_user_model
):
    django_user_model.objects.create_user("alice", password="pw")
    browser = Browser(site)
    from django.test import Client

    client = Client()
    client.login(username="alice", password="pw")
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    response = browser.post(
        "/tryon/api/tryons/",
        data={"consent": "true", "product": top_garment.product.pk},
        files={"person_image": photo_file()},
        headers={"Authorization": "Basic c3RhZ2luZzpwYXNzd29yZA=="},
    )
    assert response.status_code == 202
    job = TryOn.objects.get(public_id=response.json()["id"])
    assert job.user.username == "alice" and job.owner_key == ""


def test_a_real_token_needs_no_csrf(site, top_garment, django_user_model):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=django_user_model.objects.create_user("app", password="pw")).key
    app = Browser(site, csrf=False)
    accepted = app.post(
        "/tryon/api/tryons/",
        data={"consent": "true", "product": top_garment.product.pk},
        files={"person_image": photo_file()},
        headers={"Authorization": f"Token {token}"},
    )
    assert accepted.status_code == 202
    wrong = app.post(
        "/tryon/api/tryons/",
        data={"consent": "true", "product": top_garment.product.pk},
        files={"person_image": photo_file()},
        headers={"Authorization": "Token nope"},
    )
    assert wrong.status_code == 401


# -- 4. malformed images never give a 500 --------------------------------------------------------------
def test_malformed_uploads_get_the_envelope_not_a_500(site, top_garment):
    from .test_validators import _mutations, _seeds

    rnd = random.Random(7)
    shopper = Browser(site)
    statuses = []
    with override_settings(
        TRYON={
            **BASE,
            "THROTTLE_RATES": {},
            "DAILY_LIMIT_PER_SESSION": None,
            "MAX_QUEUED_PER_OWNER": None,
            "MAX_PHOTOS_PER_OWNER": None,
        }
    ):
        for name, seed in _seeds().items():
            for n in range(6):
                data = _mutations(seed, rnd)
                url, field = (("/tryon/api/photos/", "image"), ("/tryon/api/tryons/", "person_image"))[n % 2]
                response = shopper.post(
                    url,
                    data={"consent": "true", "product": top_garment.product.pk},
                    files={field: (f"{name}.bin", data, "application/octet-stream")},
                )
                statuses.append(response.status_code)
                assert response.status_code in (201, 202, 400), (
                    name,
                    response.status_code,
                    response.text[:200],
                )
                assert response.headers["Content-Type"] == "application/json"
                if response.status_code == 400:
                    assert response.json()["error"]["code"] in ("InvalidURL", "InvalidInputLength")
    assert 400 in statuses


# -- 5. storage writes are bounded -------------------------------------------------------------------
def test_saved_photos_are_deduplicated_capped_and_referenced(site, top_garment):
    shopper = Browser(site)
    with override_settings(TRYON={**BASE, "THROTTLE_RATES": {}}):
        same = [
            shopper.post(
                "/tryon/api/photos/", data={"consent": "true"}, files={"image": photo_file()}
            ).json()["id"]
            for _ in range(3)
        ]
        assert len(set(same)) == 1 and PersonPhoto.objects.count() == 1
        others = [
            shopper.post(
                "/tryon/api/photos/",
                data={"consent": "true"},
                files={"image": photo_file(images.jpeg(400, 600, seed=s))},
            ).json()["id"]
            for s in range(6)
        ]
        kept = [p["id"] for p in shopper.get("/tryon/api/photos/").json()]
        assert kept == others[::-1][:5] and PersonPhoto.objects.count() == 5  # the oldest replaced
        files_before = sorted(p.image.name for p in PersonPhoto.objects.all())
        job = shopper.post(
            "/tryon/api/tryons/", data={"person_photo": others[-1], "product": top_garment.product.pk}
        )
        assert job.status_code == 202
        stored = TryOn.objects.get(public_id=job.json()["id"])
        assert (
            not stored.person_image
            and stored.person_file.name == PersonPhoto.objects.get(public_id=others[-1]).image.name
        )
        assert sorted(p.image.name for p in PersonPhoto.objects.all()) == files_before
        assert all(default_storage.exists(name) for name in files_before)


def test_photo_uploads_are_throttled_per_address(site):
    codes = [
        Browser(site)
        .post(
            "/tryon/api/photos/",
            data={"consent": "true"},
            files={"image": photo_file(images.jpeg(400, 600, seed=s))},
        )
        .status_code
        for s in range(8)
    ]
    assert codes == [201] * 6 + [429] * 2 and PersonPhoto.objects.count() == 6


# -- 7 and 8. links, caches and sessions -----------------------------------------------------------
def test_cookieless_reads_create_no_session(site, top_garment):
    before = Session.objects.count()
    for url in (
        "/tryon/api/tryons/",
        "/tryon/api/photos/",
        f"/tryon/api/products/{top_garment.product.pk}/garments/",
    ):
        response = requests.get(site + url, timeout=10)
        assert response.status_code == 200 and "sessionid" not in response.cookies
    assert Session.objects.count() == before


def test_personal_images_and_api_answers_are_never_cached(site, top_garment):
    shopper = Browser(site)
    saved = shopper.post("/tryon/api/photos/", data={"consent": "true"}, files={"image": photo_file()})
    assert saved.headers["Cache-Control"] == "private, no-store"
    image = shopper.get(saved.json()["image_url"])
    assert image.status_code == 200 and image.headers["Cache-Control"] == "private, no-store"
    assert saved.json()["image_url"].count("tryon/persons") == 0  # an opaque token, not the storage path
    assert shopper.delete(f"/tryon/api/photos/{saved.json()['id']}/").status_code == 204
    assert shopper.get(saved.json()["image_url"]).status_code == 404  # the link dies with the photo
