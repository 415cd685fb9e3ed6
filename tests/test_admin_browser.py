"""Screenshots of the try-on admin (changelist, change page, dashboard) in headless Chromium."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from django_tryon import services
from django_tryon.models import TryOn

from .test_browser import ARTIFACTS, browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync code."""
    import os

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def test_admin_screenshots(browser, live_server, client, django_user_model, person_bytes, top_garment):  # noqa: F811 - a pytest fixture imported from another test module
    from unittest import mock

    with mock.patch("django_tryon.scheduling._send"):
        for status, code in (("succeeded", ""), ("failed", "InvalidPerson"), ("queued", "")):
            job = services.create_tryon(
                person_image=person_bytes,
                top_garment=top_garment,
                dispatch_now=False,
                owner_key=f"k-{status}",
            )
            TryOn.objects.filter(pk=job.pk).update(
                status=status,
                error_code=code,
                result_image=job.top_image.name if status == "succeeded" else "",
            )
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    page = context.new_page()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(f"{live_server.url}/admin/django_tryon/tryon/")
        assert page.locator("#result_list tbody tr").count() == 3
        assert page.locator("#result_list img").count() >= 3  # thumbnails load through signed URLs
        page.screenshot(path=str(ARTIFACTS / "admin-changelist.png"), full_page=True)
        job = TryOn.objects.get(status="succeeded")
        page.goto(f"{live_server.url}/admin/django_tryon/tryon/{job.pk}/change/")
        figures = page.locator(".field-side_by_side figure img")
        assert figures.count() >= 2 and figures.first.evaluate("img => img.naturalWidth") > 0
        page.screenshot(path=str(ARTIFACTS / "admin-change.png"), full_page=True)
        page.goto(f"{live_server.url}/admin/django_tryon/tryon/dashboard/")
        assert page.locator("#card-week").is_visible() and page.locator("#tryon-days rect").count() == 21
        page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)
    finally:
        context.close()
