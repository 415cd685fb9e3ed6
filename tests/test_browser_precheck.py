"""The widget and the person check (``TRYON["PERSON_CHECK"]``) in headless Chromium, on the example shop.

"warn": the findings are shown before anything is paid, with "Use this photo anyway" and "Choose another
photo" (the shop renders with the offline engine in its worker, told not to refuse, so a photo used anyway
gets its picture). "refuse": the reasons, and only another photo. Fixtures come from ``test_browser``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from . import images
from .test_browser import DESKTOP, PHONE, browser, new_page, open_dialog, screenshot, wait_for_result  # noqa: F401 - browser and new_page are fixtures
from .test_example_project import demo_server, free_port, shop_env

HALF_BODY = "Your whole body is not in this photo. Please show yourself standing, from head to feet."


def shop_settings(var_dir: Path, **tryon: object) -> dict[str, str]:
    """The demo shop's environment with these TRYON keys (and no per-address throttle for the test shoppers)."""
    return shop_env(
        var_dir,
        SHOP_DEMO_PORT=str(free_port()),
        SHOP_SANDBOX_PORT=str(free_port()),
        SHOP_SANDBOX_LATENCY="1",
        SHOP_TRYON_JSON=json.dumps({"THROTTLE_RATES": {}, **tryon}),
    )


@pytest.fixture(scope="module")
def warn_shop(browser, tmp_path_factory):  # noqa: F811 - a pytest fixture imported from another test module
    """The shop in the default mode ("warn"), rendering in its worker with the offline engine."""
    var_dir = tmp_path_factory.mktemp("shop-warn")
    options = {"work_dir": str(var_dir / "tryon-work"), "check_person": False}
    env = shop_settings(var_dir, OPTIONS=options)
    env["SHOP_TRYON_BACKEND"] = "local"
    with demo_server(env) as (_, base):
        yield base


@pytest.fixture(scope="module")
def refuse_shop(browser, tmp_path_factory):  # noqa: F811 - a pytest fixture imported from another test module
    var_dir = tmp_path_factory.mktemp("shop-refuse")
    with demo_server(shop_settings(var_dir, PERSON_CHECK="refuse")) as (_, base):
        yield base


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """A drawn person the check accepts, the same cut off at the hips (not full body), and nobody."""
    folder = tmp_path_factory.mktemp("photos")
    whole = Image.open(io.BytesIO(images.standing_person()))
    files = {
        "person": images.standing_person(),
        "nobody": images.jpeg(400, 600, seed=9),
        "half": images.encode(whole.crop((0, 0, 480, 520)), "JPEG", quality=92),
    }
    for name, data in files.items():
        (folder / f"{name}.jpg").write_bytes(data)
    return {name: folder / f"{name}.jpg" for name in files}


def tryon_posts(page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and "/tryons/" in r.url and posts.append(r.url))
    return posts


def test_warnings_before_the_paid_tryon_then_use_the_photo_anyway(warn_shop, new_page, photos):  # noqa: F811 - a pytest fixture imported from another test module
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    posts = tryon_posts(page)
    open_dialog(page, warn_shop)
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(photos["half"]))
    check = page.locator("[data-tryon-view=photo-check]")
    expect(check).to_be_visible(timeout=30_000)
    expect(page.locator("#tryon-photo-check-title")).to_have_text("Check your photo")
    expect(page.locator("[data-tryon=check-lead]")).to_have_text(
        "Your picture may not come out well with this photo:"
    )
    expect(page.locator("[data-tryon=reasons] li")).to_have_text([HALF_BODY])
    expect(page.locator("[data-tryon=check-image]")).to_have_attribute(
        "src", re.compile("^blob:")
    )  # their own photo
    page.wait_for_timeout(500)
    assert posts == []  # nothing is paid while the shopper decides
    screenshot(page, "desktop-photo-check-warn")
    page.get_by_role("button", name="Use this photo anyway").click()
    wait_for_result(page)
    assert len(posts) == 1
    jobs = page.evaluate("fetch('/tryon/api/tryons/').then(r => r.json())")
    jobs = jobs["results"] if isinstance(jobs, dict) else jobs
    assert [(job["status"], [w["code"] for w in job["warnings"]]) for job in jobs] == [
        ("succeeded", ["not_full_body"])
    ]
    assert not page.errors


def test_choose_another_photo_in_chinese_then_a_good_one_goes_straight_on(warn_shop, new_page, photos):  # noqa: F811 - a pytest fixture imported from another test module
    from playwright.sync_api import expect

    page = new_page(PHONE, "zh-Hans")
    posts = tryon_posts(page)
    open_dialog(page, warn_shop, product=1)
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(photos["half"]))
    expect(page.locator("[data-tryon=reasons] li")).to_have_text(
        ["这张照片没有拍到你的全身。请站立拍摄，从头到脚完整入镜。"], timeout=30_000
    )
    expect(page.locator("[data-tryon=check-lead]")).to_have_text("用这张照片生成的效果可能不理想：")
    expect(page.get_by_role("button", name="仍然使用这张照片")).to_be_visible()
    screenshot(page, "phone-zh-photo-check-warn")
    page.get_by_role("button", name="选择其他照片").click()
    expect(page.locator("[data-tryon-view=start]")).to_be_visible()
    page.wait_for_function("() => fetch('/tryon/api/photos/').then(r => r.json()).then(p => p.length === 0)")
    assert posts == []
    expect(page.locator("[data-tryon=saved]")).to_be_hidden()  # the photo left behind is not offered
    page.locator("[data-tryon=file]").set_input_files(str(photos["person"]))  # accepted: no stop on the way
    wait_for_result(page)
    assert len(posts) == 1
    assert not page.errors


def test_refuse_mode_shows_the_reasons_and_only_another_photo(refuse_shop, new_page, photos):  # noqa: F811 - a pytest fixture imported from another test module
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    posts = tryon_posts(page)
    open_dialog(page, refuse_shop)
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(photos["nobody"]))
    expect(page.locator("[data-tryon-view=photo-check]")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-tryon=check-lead]")).to_have_text("We cannot use this photo:")
    expect(page.locator("[data-tryon=reasons] li")).to_have_text(
        ["We could not find a person in this photo. Please use a photo of yourself."]
    )
    expect(page.get_by_role("button", name="Use this photo anyway")).to_be_hidden()
    screenshot(page, "desktop-photo-check-refused")
    assert page.evaluate("fetch('/tryon/api/photos/').then(r => r.json())") == []  # never kept
    page.get_by_role("button", name="Choose another photo").click()
    expect(page.locator("[data-tryon-view=start]")).to_be_visible()
    assert posts == [] and not page.errors
