"""The admin: pages, privacy, actions, pre-flight, dashboard figures, and query counts."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_tryon import dashboard, services
from django_tryon.models import Garment, TryOn

from . import images
from .conftest import admit, make_garment, needs_engine, step

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_tryon/tryon/"


@pytest.fixture(autouse=True)
def _no_enqueue():
    with mock.patch("django_tryon.scheduling._send"):
        yield


@pytest.fixture
def job(person_bytes, top_garment):
    return services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_pages_render_for_staff(client, superuser, job):
    client.force_login(superuser)
    for url in (
        CHANGELIST,
        f"{CHANGELIST}{job.pk}/change/",
        f"{CHANGELIST}dashboard/",
        "/admin/django_tryon/garment/",
        f"/admin/django_tryon/garment/{job.top_garment.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert "provider: scheduled" in page and "Inputs and result" in page


def test_pages_are_refused_to_others(client, django_user_model, job):
    shopper = django_user_model.objects.create_user("shopper", password="pw")
    client.force_login(shopper)
    assert client.get(CHANGELIST).status_code == 302  # to the admin login
    client.force_login(staff(django_user_model))  # staff without the view permission
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}dashboard/").status_code == 403


def test_shoppers_images_need_the_dedicated_permission(client, django_user_model, job):
    client.force_login(staff(django_user_model, "view_tryon"))
    hidden = (
        client.get(CHANGELIST).content.decode() + client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    )
    assert "🔒" in hidden and "/tryon/files/" not in hidden.split("garments")[0]
    assert "hidden: you need the permission" in hidden
    Permission.objects.get(codename="view_tryon_images").user_set.add(
        *django_user_model.objects.filter(username="staff")
    )
    shown = client.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert "/tryon/files/" in shown and "hidden: you need" not in shown


# -- actions ---------------------------------------------------------------------------------------
def act(client, action, *jobs):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [j.pk for j in jobs]}, follow=True)


def test_retry_cancel_and_delete_images(client, superuser, job, person_bytes, top_garment):
    client.force_login(superuser)
    assert "1 try-on was canceled." in act(client, "cancel_selected", job).content.decode()
    assert TryOn.objects.get(pk=job.pk).status == "canceled"
    assert "1 try-on was queued again." in act(client, "retry_selected", job).content.decode()
    assert TryOn.objects.get(pk=job.pk).attempts == 2
    names = [job.person_image.name, job.top_image.name]
    response = act(client, "delete_images_selected", job)
    assert "2 images were deleted." in response.content.decode()
    from django.core.files.storage import default_storage

    assert not any(default_storage.exists(n) for n in names) and not TryOn.objects.get(pk=job.pk).person_image


def test_rerun_with_aitryon_plus(client, superuser, job):
    client.force_login(superuser)
    response = act(client, "rerun_plus_selected", job)
    assert "1 try-on was started again with aitryon-plus." in response.content.decode()
    rerun = TryOn.objects.exclude(pk=job.pk).get()
    assert (
        rerun.model_name == "aitryon-plus"
        and rerun.product == job.product
        and rerun.person_image.name != job.person_image.name
    )


def test_merchant_actions_respect_the_site_budget(client, superuser, job, settings):
    """The merchant's retry and re-run are paid attempts too: past the budget they explain, not crash."""
    settings.TRYON = {**settings.TRYON, "DAILY_BUDGET_IMAGES": 1}
    TryOn.objects.filter(pk=job.pk).update(status="failed")
    client.force_login(superuser)
    for action in ("retry_selected", "rerun_plus_selected"):
        response = act(client, action, job)
        assert response.status_code == 200 and "daily try-on budget is used up" in response.content.decode()
    assert TryOn.objects.get(pk=job.pk).status == "failed" and TryOn.objects.count() == 1


def test_refresh_polls_the_provider(client, superuser, job, dashscope):
    dashscope.submit_ok()
    dashscope.task("RUNNING")
    step(admit(job))
    client.force_login(superuser)
    assert "1 try-on was refreshed." in act(client, "refresh_selected", job).content.decode()
    refreshed = TryOn.objects.get(pk=job.pk)
    assert refreshed.status == "running" and refreshed.poll_count == 1


# -- pre-flight ------------------------------------------------------------------------------------
@needs_engine  # the pre-flight check analyses each garment with the engine
def test_preflight_action_and_command(client, superuser, product):
    good = make_garment(product, "top")
    bad = make_garment(product, "top", color=(20, 20, 200))
    bad.image.storage.delete(bad.image.name)
    bad.image.storage.save(bad.image.name, ContentFile(images.jpeg(120, 120)))  # replaced behind our back
    two = Garment.objects.create(
        product=product, kind="top", image=ContentFile(_two_garments(), name="two.jpg")
    )
    client.force_login(superuser)
    response = client.post(
        "/admin/django_tryon/garment/",
        {"action": "preflight_selected", "_selected_action": [good.pk, bad.pk, two.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "151 and 4096" in text and "one garment at a time" in text
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("tryon_preflight", stdout=out)
    assert info.value.returncode == 1
    report = out.getvalue()
    assert (
        f"ok    garment {good.pk}" in report
        and f"FIX   garment {bad.pk}" in report
        and "1 of 3 garments ready" in report
    )


def _two_garments() -> bytes:
    from PIL import Image

    canvas = Image.new("RGB", (800, 400), "white")
    canvas.paste(Image.open(io.BytesIO(images.garment_photo())), (0, 0))
    canvas.paste(Image.open(io.BytesIO(images.garment_photo((20, 120, 40)))), (400, 0))
    return images.encode(canvas, "JPEG", quality=92)


# -- dashboard -------------------------------------------------------------------------------------
def test_dashboard_figures(person_bytes, top_garment):
    now = timezone.now()
    rows = [
        ("succeeded", 10, 20, "", "aitryon"),
        ("succeeded", 30, 40, "", "aitryon-plus"),
        ("failed", 5, None, "InvalidPerson", "aitryon"),
        ("failed", 5, None, "InvalidPerson", "aitryon"),
        ("failed", 5, None, "Timeout", "aitryon"),
        ("running", 2, None, "", "aitryon"),
    ]
    for resolution, (status, wait, generation, code, model) in zip(
        [-1, 1024, 1280, -1, 1024, 1280], rows, strict=True
    ):
        job = services.create_tryon(
            person_image=person_bytes,
            top_garment=top_garment,
            dispatch_now=False,
            resolution=resolution,
            model=model,
        )
        created = now - timedelta(minutes=5)
        submitted = created + timedelta(seconds=wait)
        TryOn.objects.filter(pk=job.pk).update(
            status=status,
            error_code=code,
            created_at=created,
            submitted_at=submitted,
            image_count=1 if status == "succeeded" else 0,
            finished_at=submitted + timedelta(seconds=generation)
            if generation
            else (submitted if status == "failed" else None),
        )
    figures = dashboard.figures()
    assert figures["today"] == {"succeeded": 2, "failed": 3, "running": 1}
    assert figures["success_rate"] == pytest.approx(2 / 5)
    assert figures["queue_wait"]["p50"] == pytest.approx(5) and figures["queue_wait"]["p95"] == pytest.approx(
        30
    )
    assert figures["generation"] == {"p50": pytest.approx(20), "p95": pytest.approx(40)}
    assert figures["top_errors"][0] == ("InvalidPerson", 2)
    assert figures["images_today"] == 2 and figures["spend_today"] == Decimal("0.70")
    assert figures["in_flight"] == 1 and figures["concurrency"] == 5
    assert figures["days"][-1]["succeeded"] == 2 and figures["days"][-1]["succeeded_h"] == 47


def test_changelist_query_count_does_not_grow(
    client, superuser, person_bytes, top_garment, django_user_model
):
    client.force_login(superuser)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(CHANGELIST).status_code == 200
        return len(ctx.captured_queries)

    services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
    few = count_queries()
    for resolution in (1024, 1280):
        for restore in (True, False):
            services.create_tryon(
                person_image=person_bytes,
                top_garment=top_garment,
                resolution=resolution,
                restore_face=restore,
                dispatch_now=False,
                owner_key=f"k{resolution}{restore}",
            )
    assert TryOn.objects.count() == 5 and count_queries() == few


def test_admin_speaks_simplified_chinese(client, superuser, job):
    client.force_login(superuser)
    changelist = client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "重试所选试衣" in changelist
    assert (
        "试衣仪表盘" in client.get(f"{CHANGELIST}dashboard/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    )
