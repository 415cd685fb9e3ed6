"""The "Try it on" widget in a real browser: headless Chromium (Debian's) driven by Playwright against
the example shop as ``make demo`` runs it (web + Celery worker + the DashScope sandbox).

Screenshots go to ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from django_tryon.messages import message_for

from . import images
from .test_example_project import ROOT, demo_server, free_port, shop_env

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
RESULT_TIMEOUT = 120_000  # ms: queue + the sandbox's render + the worker's first poll


def _require_browser() -> None:
    """Skip locally without Chromium or Playwright; under CI=true either missing is a failure."""
    problem = ""
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401 - only: is it installed?
        except ImportError:
            problem = "the playwright package is missing (dependency group 'test')"
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"{problem}; required under CI")
    if problem:
        pytest.skip(f"{problem} (required under CI=true)")


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shop(browser, tmp_path_factory):
    """The demo shop's base URL (on the bundled sandbox: no key, no network)."""
    env = shop_env(
        tmp_path_factory.mktemp("shop"),
        SHOP_DEMO_PORT=str(free_port()),
        SHOP_SANDBOX_PORT=str(free_port()),
        SHOP_SANDBOX_LATENCY="1",
        # Every test shopper comes from 127.0.0.1: the per-address throttle is for strangers, not for this run.
        SHOP_TRYON_JSON='{"THROTTLE_RATES": {}}',
    )
    with demo_server(env) as (_, base):
        yield base


@pytest.fixture(scope="module")
def person_photo() -> Path:
    from .test_engine import shared

    return shared("person", "fitdit_model_1.jpg")


@pytest.fixture
def new_page(browser):
    """Open pages in fresh browser contexts (a new shopper each: new session, new cookies)."""
    contexts = []

    def open_page(viewport=DESKTOP, language="en"):
        context = browser.new_context(viewport=viewport, extra_http_headers={"Accept-Language": language})
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))


def open_dialog(page, base: str, product: int = 1):
    page.goto(f"{base}/p/{product}/", wait_until="load")
    page.locator("main .tryon-button").click()
    dialog = page.locator("dialog.tryon-dialog")
    dialog.wait_for(state="visible")
    return dialog


def wait_for_result(page):
    """The result picture is shown and decoded; returns its URL."""
    from playwright.sync_api import expect

    result = page.locator("[data-tryon=result]")
    expect(result).to_be_visible(timeout=RESULT_TIMEOUT)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle(), timeout=20_000
    )
    return result.get_attribute("src")


@pytest.mark.parametrize(
    "name, viewport, language, label, done",
    [
        ("desktop", DESKTOP, "en", "Try it on", "Here you are"),
        ("phone", PHONE, "en", "Try it on", "Here you are"),
        ("desktop-zh", DESKTOP, "zh-Hans", "试穿", "试衣效果"),
    ],
)
def test_a_shopper_tries_a_product_on(shop, new_page, person_photo, name, viewport, language, label, done):
    from playwright.sync_api import expect

    page = new_page(viewport, language)
    page.goto(f"{shop}/p/1/")
    button = page.locator("main .tryon-button")
    expect(button).to_have_text(label)
    button.click()
    dialog = page.locator("dialog.tryon-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".tryon-garments img")).to_have_count(1)  # the tee's flat-lay, from the API
    upload = page.locator("[data-tryon=file]")
    expect(upload).to_be_disabled()  # consent first
    assert upload.get_attribute("accept") == "image/*" and upload.get_attribute("capture") == "user"
    screenshot(page, f"{name}-1-dialog")
    page.locator("[data-tryon=consent]").check()
    expect(upload).to_be_enabled()
    upload.set_input_files(str(person_photo))
    expect(page.locator("[data-tryon-view=progress]")).to_be_visible()
    expect(page.locator("[data-tryon-step][aria-current=step]")).not_to_have_text(
        re.compile("Upload|上传"), timeout=30_000
    )
    screenshot(page, f"{name}-2-progress")
    src = wait_for_result(page)
    expect(page.locator("#tryon-result-title")).to_have_text(done)
    assert (
        src.startswith("/tryon/files/") and page.locator("[data-tryon=download]").get_attribute("href") == src
    )
    if viewport is PHONE:  # nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = dialog.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, f"{name}-3-result")
    assert not page.errors


def test_language_switcher_changes_the_widget(shop, new_page):
    from playwright.sync_api import expect

    page = new_page(PHONE)
    page.goto(f"{shop}/p/2/")
    with page.expect_navigation():
        page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state("load")  # the widget's script and the JS catalog are in before we click
    expect(page.locator("main .tryon-button")).to_have_text("试穿")
    page.locator("main .tryon-button").click()
    page.locator("dialog.tryon-dialog").wait_for(state="visible")
    expect(page.locator("[data-tryon=upload-hint]")).to_have_text("请先勾选上方的同意框。")
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(
        files=[{"name": "me.heic", "mimeType": "image/heic", "buffer": b"x" * 9000}]
    )
    expect(page.locator("[data-tryon=check]")).to_contain_text(
        "不支持 HEIC 照片"
    )  # the JS catalog is Chinese too
    screenshot(page, "phone-zh-check")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.get_by_role("button", name="English").click()
    expect(page.locator("main .tryon-button")).to_have_text("Try it on")


def test_photo_checked_in_the_browser_before_any_upload(shop, new_page, tmp_path):
    from playwright.sync_api import expect

    page = new_page(PHONE)
    uploads = []
    page.on("request", lambda request: request.method == "POST" and uploads.append(request.url))
    open_dialog(page, shop)
    page.locator("[data-tryon=consent]").check()
    tiny = tmp_path / "tiny.jpg"
    tiny.write_bytes(images.jpeg(100, 100))
    assert len(tiny.read_bytes()) >= 5 * 1024  # over the size floor: the pixel rule is what refuses it
    page.locator("[data-tryon=file]").set_input_files(str(tiny))
    check = page.locator("[data-tryon=check]")
    expect(check).to_have_text(
        "This photo is too small (100 × 100 pixels). Each side must be more than 150 pixels."
    )
    assert check.get_attribute("role") == "alert"
    page.locator("[data-tryon=file]").set_input_files(
        files=[
            {
                "name": "cat.gif",
                "mimeType": "image/gif",
                "buffer": images.encode(images.noise_image(300, 300), "GIF"),
            }
        ]
    )
    expect(check).to_contain_text("GIF images cannot be used")
    expect(page.locator("[data-tryon-view=start]")).to_be_visible()
    screenshot(page, "phone-browser-check")
    assert uploads == []  # refused without a server round trip
    assert not page.errors


def test_photo_the_provider_refuses_gets_a_plain_message(shop, new_page, tmp_path):
    """A noise picture passes every browser and server check; the person check warns (the shop's default,
    "warn"), the shopper uses it anyway, and the provider finds no person in it."""
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    open_dialog(page, shop)
    page.locator("[data-tryon=consent]").check()
    nobody = tmp_path / "nobody.jpg"
    nobody.write_bytes(images.jpeg(400, 600))
    page.locator("[data-tryon=file]").set_input_files(str(nobody))
    expect(page.locator("[data-tryon=reasons]")).to_have_text(
        "We could not find a person in this photo. Please use a photo of yourself."
    )
    page.get_by_role("button", name="Use this photo anyway").click()
    error = page.locator("[data-tryon=error]")
    expect(error).to_be_visible(timeout=RESULT_TIMEOUT)
    assert error.get_attribute("data-code") == "InvalidPerson"
    expect(error).to_have_text(message_for("InvalidPerson", "en"))  # the server's own message, in one table
    detail = page.locator("[data-tryon=error-detail]")
    expect(detail).to_have_text("We did not keep this photo.")  # the job's message is that same sentence
    expect(page.locator("[data-tryon-action=retry]")).to_be_hidden()  # the same photo would fail again
    screenshot(page, "desktop-provider-refused")
    page.locator("[data-tryon-view=error] [data-tryon-action=another]").click()
    expect(page.locator("[data-tryon-view=start]")).to_be_visible()
    expect(page.locator("[data-tryon=saved]")).to_be_hidden()  # the refused photo is not offered again
    assert not page.errors


def test_saved_photo_is_offered_on_the_next_product_and_can_be_deleted(shop, new_page, person_photo):
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    open_dialog(page, shop, product=1)
    expect(page.locator("[data-tryon=saved]")).to_be_hidden()
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(person_photo))
    first = wait_for_result(page)

    open_dialog(page, shop, product=3)  # another product, later: the photo is offered again
    saved = page.locator("[data-tryon=saved]")
    expect(saved).to_be_visible()
    expect(page.locator("[data-tryon=saved-image]")).to_have_attribute("src", re.compile("^/tryon/files/"))
    screenshot(page, "desktop-saved-photo")
    page.get_by_role("button", name="Use my saved photo").click()
    second = wait_for_result(page)
    assert second != first

    page.goto(f"{shop}/my-tryons/")  # the shop's "My try-ons" page lists both, with their pictures
    thumbs = page.locator("#my-tryons img")
    expect(thumbs).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#my-tryons img')].every(i => i.naturalWidth > 0)"
    )
    screenshot(page, "desktop-my-tryons")

    open_dialog(page, shop, product=3)
    expect(page.locator("[data-tryon=result]")).to_be_hidden()  # a new page starts from the photo step
    page.get_by_role("button", name="Use my saved photo").click()
    wait_for_result(page)  # the same request again: the API hands back the same job
    page.locator("[data-tryon-view=result] [data-tryon-action=delete]").click()
    expect(page.locator("[data-tryon=notice]")).to_have_text("Your photo and the picture were deleted.")
    expect(saved).to_be_hidden()
    photos = page.evaluate("fetch('/tryon/api/photos/').then(r => r.json())")
    assert photos == []
    page.goto(f"{shop}/my-tryons/")
    expect(page.locator("#my-tryons img")).to_have_count(1)  # the deleted job is gone, the other stays
    assert not page.errors


def test_dialog_is_keyboard_accessible(shop, new_page):
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    page.goto(f"{shop}/p/1/")
    button = page.locator("main .tryon-button")
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.tryon-dialog")
    expect(dialog).to_be_visible()
    assert dialog.get_attribute("aria-labelledby") == "tryon-title"
    inside = "document.querySelector('dialog.tryon-dialog').contains(document.activeElement)"
    for _ in range(12):  # Tab keeps cycling inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(inside)
    page.locator("[data-tryon=consent]").focus()
    page.keyboard.press("Space")
    expect(page.locator("[data-tryon=file]")).to_be_enabled()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('tryon-button')")  # focus goes back


def test_options_keep_own_clothes_and_sharper_picture(shop, new_page, person_photo):
    """One garment: the shopper may keep the other half; the second pass asks for the gender first."""
    from playwright.sync_api import expect

    page = new_page(DESKTOP)
    for product, garments in (
        (3, 1),
        (4, 2),
    ):  # a dress; a top and a bottom: nothing of the shopper's own to keep
        open_dialog(page, shop, product=product)
        expect(page.locator(".tryon-garments img")).to_have_count(garments)
        expect(page.locator("[data-tryon=keep-own-row]")).to_be_hidden()

    open_dialog(page, shop, product=2)  # trousers alone: no second pass (the refiner needs a top)
    expect(page.locator(".tryon-garments img")).to_have_count(1)
    expect(page.locator("[data-tryon=keep-own-row]")).to_have_text("Keep my own top")
    expect(page.locator("[data-tryon=refine-row]")).to_be_hidden()

    open_dialog(page, shop, product=1)  # the tee alone
    keep_own = page.locator("[data-tryon=keep-own-row]")
    expect(keep_own).to_be_visible()
    expect(keep_own).to_have_text("Keep my own trousers or skirt")
    gender = page.locator("[data-tryon=gender]")
    expect(gender).to_be_hidden()
    page.locator("[data-tryon=refine]").check()
    expect(gender).to_be_visible()
    page.get_by_label("Woman").check()
    page.locator("[data-tryon=keep-own]").check()
    screenshot(page, "desktop-options")
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(person_photo))
    wait_for_result(page)
    jobs = page.evaluate("fetch('/tryon/api/tryons/').then(r => r.json())")
    jobs = jobs["results"] if isinstance(jobs, dict) else jobs
    assert [(job["keep_own"], job["refine"], job["stage"], job["status"]) for job in jobs] == [
        (True, True, "refine", "succeeded")
    ]
    assert not page.errors
