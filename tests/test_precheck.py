"""The person check before paying (``TRYON["PERSON_CHECK"]``): refuse, warn, off; once per photo; never a 500.

The engine really runs here, on drawn images: ``images.standing_person()`` is a figure it accepts, a
noise picture is one it finds no person in. Calls are counted through a wrapper around the engine.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import translation
from PIL import Image
from rest_framework.test import APIClient

from django_tryon import precheck, services
from django_tryon.checks import check_settings
from django_tryon.conf import DEFAULTS
from django_tryon.exceptions import TryOnPersonRefused
from django_tryon.models import PersonPhoto, TryOn, TryOnAttempt

from . import images

pytest.importorskip("django_tryon.engine", exc_type=ImportError)

pytestmark = pytest.mark.django_db
BASE = {
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}
NOBODY = images.jpeg(600, 400, seed=5)  # a landscape of noise: decodes fine, no person in it
NO_PERSON = "We could not find a person in this photo. Please use a photo of yourself."
NO_PERSON_ZH = "这张照片中没有找到人。请使用一张你本人的照片。"


def mode(value: str, **extra):
    return override_settings(TRYON={**BASE, "PERSON_CHECK": value, **extra})


@pytest.fixture(autouse=True)
def _no_enqueue():
    with mock.patch("django_tryon.scheduling._send"):
        yield


@pytest.fixture
def engine_calls(monkeypatch):
    """Every image ``check_person`` sees (as the array it got), while it still does the real work."""
    from django_tryon import engine

    seen = []
    real = engine.check_person

    def counting(image, body=None):
        seen.append(image)
        return real(image, body)

    monkeypatch.setattr(engine, "check_person", counting)
    return seen


@pytest.fixture
def client():
    return APIClient()


def upload(data: bytes, name: str = "me.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def stored_files() -> set[str]:
    root = default_storage.location
    return {
        os.path.relpath(os.path.join(d, f), root)
        for d, _, fs in os.walk(root)
        for f in fs
        if "persons" in d or "sent" in d
    }


# -- the setting -----------------------------------------------------------------------------------
def test_default_is_warn_and_a_bad_value_is_reported():
    assert DEFAULTS["PERSON_CHECK"] == "warn" and precheck.mode() == "warn"
    with mode("strict"):
        errors = check_settings()
    assert [e.id for e in errors] == ["django_tryon.E003"] and "PERSON_CHECK" in errors[0].msg
    for value in ("refuse", "warn", "off"):
        with mode(value):
            assert check_settings() == []


def test_the_drawn_person_passes_and_nobody_is_refused():
    """The two drawn pictures every test below relies on, judged by the real engine."""
    assert precheck.run(images.standing_person()) == {
        "ok": True,
        "verdict": "ok",
        "reasons": [],
        "details": mock.ANY,
    }
    nobody = precheck.run(NOBODY)
    assert nobody["ok"] is False and nobody["verdict"] == "no_person" and nobody["reasons"]


def test_the_engines_figures_are_stored_as_plain_json():
    """One helper for the person check's JSONField and the engine CLI's output."""
    import json
    from pathlib import Path

    import numpy as np

    figures = {
        "ratio": np.float64(1.5),
        "votes": np.int64(3),
        "front": np.bool_(True),
        "point": np.array([1.0, 2.5]),
        "nested": {"yaw": np.float32(0.25)},
        "none": None,
        "nan": float("nan"),
        "label": "x",
    }
    from django_tryon.engine.plain import jsonable

    figures["where"] = (np.int64(7), Path("a/b.png"))
    plain = jsonable(figures)
    assert plain.pop("where") == [7, "a/b.png"]
    assert plain == {
        "ratio": 1.5,
        "votes": 3,
        "front": True,
        "point": [1.0, 2.5],
        "nested": {"yaw": 0.25},
        "none": None,
        "nan": None,
        "label": "x",
    }
    assert type(plain["votes"]) is int and type(plain["front"]) is bool and json.dumps(plain)


# -- create_tryon ----------------------------------------------------------------------------------
def test_warn_creates_the_job_with_the_verdict(top_garment, engine_calls):
    job = services.create_tryon(person_image=NOBODY, top_garment=top_garment, dispatch_now=False)
    assert job.status == "queued" and len(engine_calls) == 1
    job.refresh_from_db()
    assert job.person_check["verdict"] == "no_person" and job.person_check["ok"] is False
    assert precheck.warnings(job.person_check) == [{"code": "no_person", "message": NO_PERSON}]
    fine = services.create_tryon(
        person_image=images.standing_person(), top_garment=top_garment, dispatch_now=False
    )
    assert fine.person_check["verdict"] == "ok" and precheck.warnings(fine.person_check) == []


def test_refuse_stores_nothing_and_charges_nothing(top_garment, engine_calls):
    before = stored_files()
    with mode("refuse"), pytest.raises(TryOnPersonRefused) as info:
        services.create_tryon(person_image=NOBODY, top_garment=top_garment, product=top_garment.product)
    err = info.value
    assert (err.code, err.verdict, err.field) == ("InvalidPerson", "no_person", "person_image")
    assert [str(r) for r in err.reasons] == [NO_PERSON]
    assert err.messages() == {"en": NO_PERSON, "zh-hans": NO_PERSON_ZH}
    assert err.details["reasons"] and err.details["brightness"] > 0  # the engine's own words and figures
    assert not TryOn.objects.exists() and not TryOnAttempt.objects.exists() and stored_files() == before
    with mode("refuse", DAILY_LIMIT_PER_SESSION=1):  # the refusal took no slot of the day
        job = services.create_tryon(
            person_image=images.standing_person(),
            top_garment=top_garment,
            owner_key="shopper",
            dispatch_now=False,
        )
    assert job.person_check["ok"] and TryOnAttempt.objects.count() == 1


def test_off_runs_nothing(top_garment, engine_calls):
    with mode("off"):
        job = services.create_tryon(person_image=NOBODY, top_garment=top_garment, dispatch_now=False)
        photo = services.save_photo(image=NOBODY, owner_key="k", consent=True)
    assert engine_calls == [] and job.person_check is None and photo.person_check is None
    assert precheck.warnings(job.person_check) == []


def test_off_also_silences_a_verdict_stored_before(top_garment, engine_calls):
    photo = services.save_photo(image=NOBODY, owner_key="k", consent=True)  # "warn": checked, stored
    assert precheck.warnings(photo.person_check) != []
    with mode("off"):
        job = services.create_tryon(
            person_photo=photo, top_garment=top_garment, owner_key="k", dispatch_now=False
        )
        assert precheck.warnings(photo.person_check) == []
    assert job.person_check is None and len(engine_calls) == 1


def test_a_large_photo_is_checked_on_a_copy_of_at_most_1024_px(top_garment, engine_calls):
    big = images.standing_person(1260, 2100)
    assert Image.open(io.BytesIO(big)).size == (1260, 2100)
    job = services.create_tryon(person_image=big, top_garment=top_garment, dispatch_now=False)
    assert max(engine_calls[0].shape[:2]) == 1024 and job.person_check["verdict"] == "ok"
    assert Image.open(job.person_image.open("rb")).size == (1260, 2100)  # the photo itself is sent whole


def test_rerun_and_refine_reuse_the_jobs_verdict(top_garment, engine_calls):
    job = services.create_tryon(person_image=NOBODY, top_garment=top_garment, dispatch_now=False)
    again = services.rerun(job, model="aitryon-plus")
    job.result_image.save("result.jpg", ContentFile(images.jpeg(400, 600, seed=3)), save=False)
    TryOn.objects.filter(pk=job.pk).update(status="succeeded", result_image=job.result_image.name)
    job.refresh_from_db()
    refined = services.refine_result(job, gender="woman")
    assert len(engine_calls) == 1 and again.person_check == refined.person_check == job.person_check
    assert job.person_check["verdict"] == "no_person"


# -- saved photos: checked once --------------------------------------------------------------------
def test_saved_photo_is_checked_once_and_its_verdict_reused(
    product, top_garment, bottom_garment, engine_calls
):
    photo = services.save_photo(image=NOBODY, owner_key="k", consent=True)
    assert len(engine_calls) == 1 and photo.person_check["verdict"] == "no_person"
    assert services.save_photo(image=NOBODY, owner_key="k", consent=True) == photo  # the same photo again
    first = services.create_tryon(
        person_photo=photo, top_garment=top_garment, owner_key="k", dispatch_now=False
    )
    second = services.create_tryon(
        person_photo=photo, bottom_garment=bottom_garment, owner_key="k", resolution=1280, dispatch_now=False
    )
    assert len(engine_calls) == 1
    assert first.person_check == second.person_check == PersonPhoto.objects.get().person_check
    with (
        mode("refuse"),
        pytest.raises(TryOnPersonRefused) as info,
    ):  # the stored verdict decides, no new check
        services.create_tryon(person_photo=photo, top_garment=top_garment, owner_key="k", resolution=1024)
    assert info.value.field == "person_photo" and len(engine_calls) == 1 and TryOn.objects.count() == 2


def test_photo_saved_before_the_check_is_checked_at_its_first_tryon(top_garment, engine_calls):
    with mode("off"):
        photo = services.save_photo(image=images.standing_person(), owner_key="k", consent=True)
    assert photo.person_check is None
    job = services.create_tryon(
        person_photo=photo, top_garment=top_garment, owner_key="k", dispatch_now=False
    )
    services.create_tryon(
        person_photo=photo, top_garment=top_garment, owner_key="k", resolution=1024, dispatch_now=False
    )
    photo.refresh_from_db()
    assert (
        len(engine_calls) == 1
        and photo.person_check["verdict"] == "ok"
        and job.person_check == photo.person_check
    )


def test_refused_photo_is_not_kept(engine_calls):
    before = stored_files()
    with mode("refuse"), pytest.raises(TryOnPersonRefused) as info:
        services.save_photo(image=NOBODY, owner_key="k", consent=True)
    assert info.value.field == "image" and not PersonPhoto.objects.exists() and stored_files() == before


# -- no engine, a failing engine -------------------------------------------------------------------
def test_without_the_engine_extra_the_check_is_skipped(top_garment, monkeypatch):
    monkeypatch.setitem(sys.modules, "django_tryon.engine", None)  # import django_tryon.engine → ImportError
    with mode("refuse"):
        job = services.create_tryon(person_image=NOBODY, top_garment=top_garment, dispatch_now=False)
        photo = services.save_photo(image=NOBODY, owner_key="k", consent=True)
    assert job.person_check is None and photo.person_check is None


def test_an_engine_failure_is_no_verdict_and_no_500(client, top_garment, monkeypatch, caplog):
    from django_tryon import engine

    def broken(image, body=None):
        raise RuntimeError("graph crashed")

    monkeypatch.setattr(engine, "check_person", broken)
    with mode("refuse"), caplog.at_level(logging.WARNING, logger="django_tryon"):
        saved = client.post("/tryon/api/photos/", {"image": upload(NOBODY), "consent": "true"})
        created = client.post(
            "/tryon/api/tryons/",
            {"person_image": upload(NOBODY), "consent": "true", "product": top_garment.product.pk},
        )
    assert saved.status_code == 201 and saved.json()["warnings"] == []
    assert created.status_code == 202 and created.json()["warnings"] == []
    assert PersonPhoto.objects.get().person_check is None and TryOn.objects.get().person_check is None
    failures = [r for r in caplog.records if "person check failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.levelno == logging.WARNING for r in failures)
    assert "RuntimeError" in failures[0].getMessage() and not any(r.exc_info for r in failures)


# -- over REST -------------------------------------------------------------------------------------
def test_rest_photo_warn_answers_201_with_warnings_in_the_shoppers_language(client):
    saved = client.post("/tryon/api/photos/", {"image": upload(NOBODY), "consent": "true"})
    assert saved.status_code == 201
    assert saved.json()["warnings"] == [{"code": "no_person", "message": NO_PERSON}]
    listed = client.get("/tryon/api/photos/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    assert listed[0]["warnings"] == [{"code": "no_person", "message": NO_PERSON_ZH}]
    fine = client.post("/tryon/api/photos/", {"image": upload(images.standing_person()), "consent": "true"})
    assert fine.status_code == 201 and fine.json()["warnings"] == []


def test_rest_photo_refuse_answers_400_in_the_error_envelope(client):
    before = stored_files()
    with mode("refuse"):
        english = client.post("/tryon/api/photos/", {"image": upload(NOBODY), "consent": "true"})
        chinese = client.post(
            "/tryon/api/photos/", {"image": upload(NOBODY), "consent": "true"}, HTTP_ACCEPT_LANGUAGE="zh-Hans"
        )
        fine = client.post(
            "/tryon/api/photos/", {"image": upload(images.standing_person()), "consent": "true"}
        )
    assert english.status_code == chinese.status_code == 400
    error = english.json()["error"]
    assert error == {
        "code": "InvalidPerson",
        "field": "image",
        "verdict": "no_person",
        "message": NO_PERSON,
        "reasons": [NO_PERSON],
        "details": mock.ANY,
    }
    assert (
        error["details"]["reasons"] and "brightness" in error["details"]
    )  # the engine's own words and figures
    zh = chinese.json()["error"]
    assert zh["verdict"] == "no_person" and zh["reasons"] == [NO_PERSON_ZH]
    assert zh["message"] == zh["reasons"][0]
    assert fine.status_code == 201 and PersonPhoto.objects.count() == 1
    assert len(stored_files() - before) == 1


def test_rest_tryon_refuse_is_400_and_not_charged(client, top_garment):
    data = {"consent": "true", "product": top_garment.product.pk}
    with mode("refuse", DAILY_LIMIT_PER_SESSION=1):
        refused = client.post("/tryon/api/tryons/", {**data, "person_image": upload(NOBODY)})
        accepted = client.post(
            "/tryon/api/tryons/", {**data, "person_image": upload(images.standing_person())}
        )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"], error["verdict"]) == ("InvalidPerson", "person_image", "no_person")
    assert accepted.status_code == 202, accepted.json()  # the refusal used none of the day's one try-on
    assert accepted.json()["warnings"] == [] and TryOn.objects.count() == TryOnAttempt.objects.count() == 1


def test_rest_tryon_from_a_saved_photo(client, top_garment, engine_calls):
    photo_id = client.post("/tryon/api/photos/", {"image": upload(NOBODY), "consent": "true"}).json()["id"]
    created = client.post("/tryon/api/tryons/", {"person_photo": photo_id, "product": top_garment.product.pk})
    assert created.status_code == 202 and len(engine_calls) == 1
    assert [w["code"] for w in created.json()["warnings"]] == ["no_person"]
    read = client.get(f"/tryon/api/tryons/{created.json()['id']}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    assert read["warnings"] == [{"code": "no_person", "message": NO_PERSON_ZH}]
    with mode("refuse"):
        refused = client.post(
            "/tryon/api/tryons/",
            {"person_photo": photo_id, "product": top_garment.product.pk, "resolution": 1024},
        )
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "person_photo"
    assert len(engine_calls) == 1 and TryOn.objects.count() == TryOnAttempt.objects.count() == 1


def test_rest_tryon_off_has_no_warnings(client, top_garment, engine_calls):
    with mode("off"):
        created = client.post(
            "/tryon/api/tryons/",
            {"person_image": upload(NOBODY), "consent": "true", "product": top_garment.product.pk},
        )
    assert created.status_code == 202 and created.json()["warnings"] == [] and engine_calls == []


def test_warnings_are_in_the_schema(client):
    import json

    schema = json.loads(client.get("/tryon/api/schema/", HTTP_ACCEPT="application/json").content)
    components = schema["components"]["schemas"]
    for name in ("TryOn", "Photo"):
        field = components[name]["properties"]["warnings"]
        assert field["type"] == "array" and field["items"] == {"$ref": "#/components/schemas/PersonWarning"}
    assert set(components["PersonWarning"]["properties"]) == {"code", "message"}


# -- messages --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "verdict",
    [
        "no_person",
        "several_people",
        "not_full_body",
        "not_front_facing",
        "too_dark",
        "blurry",
        "a_verdict_from_a_newer_engine",
    ],
)
def test_every_verdict_has_an_english_and_a_chinese_message(verdict):
    english = str(precheck.verdict_message(verdict))
    with translation.override("zh-hans"):
        chinese = str(precheck.verdict_message(verdict))
    assert english.endswith(".") and chinese != english and any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
