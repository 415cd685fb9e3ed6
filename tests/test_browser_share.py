"""After the picture, in a real browser: "Add to cart" into the example shop's session cart, "Share" (a link
that a stranger opens: the picture and its OpenGraph tags) and "Stop sharing", and the JavaScript API
(``window.djangoTryon``) from the cart page's own buttons; at desktop and phone widths, in English and
Chinese. One try-on is rendered; every later result is the same request handed back by the API (dedup).

Headless Chromium on the demo shop (web + Celery worker + the DashScope sandbox), as tests/test_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest

from .test_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    DESKTOP,
    PHONE,
    browser,
    open_dialog,
    person_photo,
    shop,
    wait_for_result,
)

EVENTS = [
    "open",
    "close",
    "uploaded",
    "photo-check",
    "queued",
    "result",
    "succeeded",
    "failed",
    "canceled",
    "error",
    "deleted",
    "download",
    "share",
    "unshare",
    "add-to-cart",
    "added-to-cart",
]
#: Records every widget event with its detail and target, before the page's own scripts run.
RECORD_EVENTS = (
    """
window.__tryonEvents = [];
for (const name of NAMES) {
  document.addEventListener("tryon:" + name, (event) => window.__tryonEvents.push({
    name: name, detail: JSON.parse(JSON.stringify(event.detail)), target: event.target.tagName,
    cancelable: event.cancelable,
  }));
}
"""
).replace("NAMES", json.dumps(EVENTS))
#: The desktop browser has no share sheet (the widget copies the link); the phone's records what it is given.
NO_SHARE_SHEET = (
    "Object.defineProperty(Navigator.prototype, 'share', {value: undefined, configurable: true});"
)
SHARE_SHEET = (
    "Object.defineProperty(Navigator.prototype, 'share', {configurable: true, "
    "value: (data) => { window.__shared = data; return Promise.resolve(); }});"
)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"share-{name}.png"))


def events(page, name: str) -> list[dict]:
    return [event for event in page.evaluate("window.__tryonEvents") if event["name"] == name]


@pytest.fixture
def context_for(browser):  # noqa: F811
    contexts = []

    def make(viewport, language, *scripts, **options):
        context = browser.new_context(
            viewport=viewport, extra_http_headers={"Accept-Language": language}, **options
        )
        for script in scripts:
            context.add_init_script(script)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def new_page(context):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def check_shared_page(context_for, url: str, language: str) -> None:
    """A stranger (a new browser, no cookies) opens the link: the picture and its preview tags, nothing else."""
    from playwright.sync_api import expect

    stranger = new_page(context_for(PHONE, language))
    response = stranger.goto(url)
    assert response.status == 200
    token = re.search(r"/tryon/s/([^/]+)/$", url).group(1)
    image_url = url + "image"
    meta = stranger.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('meta[property], meta[name]')]"
        ".map(m => [m.getAttribute('property') || m.getAttribute('name'), m.content]))"
    )
    assert meta["og:image"] == image_url and meta["twitter:image"] == image_url and token in image_url
    assert meta["og:type"] == "website" and meta["twitter:card"] == "summary_large_image"
    assert meta["og:title"] in ("Trying on Red cotton tee", "试穿 Red cotton tee")
    picture = stranger.locator("img[data-tryon-shared]")
    expect(picture).to_have_attribute("src", image_url)
    stranger.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    html = stranger.content()
    assert "/tryon/files/" not in html and "persons" not in html  # no signed file URL, no photo path
    assert stranger.locator("img").count() == 1
    shot(stranger, f"page-{language}")
    assert not stranger.errors
    stranger.context.close()


def test_from_the_result_to_the_cart_and_a_shared_link(shop, context_for, person_photo):  # noqa: F811
    from playwright.sync_api import expect

    # -- desktop, English: one real try-on ----------------------------------------------------------
    context = context_for(
        DESKTOP, "en", RECORD_EVENTS, NO_SHARE_SHEET, permissions=["clipboard-read", "clipboard-write"]
    )
    page = new_page(context)
    posts = []
    page.on(
        "request",
        lambda request: (
            request.method == "POST"
            and "/cart/add/" in request.url
            and posts.append((request.post_data, request.headers))
        ),
    )
    open_dialog(page, shop, product=1)
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(person_photo))
    wait_for_result(page)
    queued, succeeded = events(page, "queued"), events(page, "succeeded")
    assert len(queued) == 1 and len(succeeded) == 1 and events(page, "result")
    job = succeeded[0]["detail"]["job"]
    assert job["status"] == "succeeded" and queued[0]["detail"]["job"]["id"] == job["id"]
    assert succeeded[0]["detail"]["product"] == "1" and succeeded[0]["detail"]["garments"] == [
        job["top_garment"]
    ]
    assert succeeded[0]["target"] == "BUTTON"  # from the button that opened the dialog
    assert not events(page, "failed") and not events(page, "canceled")

    add = page.locator("[data-tryon-action=add-to-cart]")
    expect(add).to_have_text("Add to cart")
    expect(page.locator("[data-tryon=share-note]")).to_contain_text("only this picture, never your photo")
    shot(page, "desktop-en-result")
    add.click()
    status = page.locator("[data-tryon=action-status]")
    expect(status).to_contain_text("Red cotton tee is in your cart.")
    expect(status.get_by_role("link", name="View your cart")).to_have_attribute("href", "/cart/")
    expect(page.locator("#cart-count")).to_have_text("1")  # the shop's header, from tryon:added-to-cart
    [cart_event] = events(page, "add-to-cart")
    assert cart_event["cancelable"] and cart_event["detail"]["product"] == "1"
    assert (
        cart_event["detail"]["garments"] == [job["top_garment"]]
        and cart_event["detail"]["job"]["id"] == job["id"]
    )
    [(body, headers)] = posts
    assert body == f"product=1&garment={job['top_garment']}&tryon={job['id']}"
    assert headers["x-csrftoken"] and headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert events(page, "added-to-cart")[0]["detail"]["response"]["count"] == 1

    page.locator("[data-tryon=download]").click()  # the browser downloads; the event says so
    assert events(page, "download") and events(page, "download")[0]["detail"]["job"]["id"] == job["id"]

    page.locator("[data-tryon-action=share]").click()
    box = page.locator("[data-tryon=share-box]")
    expect(box).to_be_visible()
    url = page.locator("[data-tryon=share-url]").input_value()
    assert re.fullmatch(rf"{re.escape(shop)}/tryon/s/[\w-]{{43}}/", url)
    expect(page.locator("[data-tryon=share-status]")).to_contain_text("Link copied. The link works until")
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert events(page, "share")[0]["detail"]["url"] == url
    shot(page, "desktop-en-shared")
    check_shared_page(context_for, url, "en")

    page.get_by_role("button", name="Stop sharing").click()
    expect(page.locator("[data-tryon=action-status]")).to_have_text("This picture is no longer shared.")
    expect(box).to_be_hidden()
    assert events(page, "unshare")[0]["detail"]["url"] == url
    for address in (url, url + "image"):  # enforced by the server, for anyone
        assert context_for(PHONE, "en").request.get(address).status == 410

    forged = context_for(PHONE, "en").request.post(f"{shop}/cart/add/", form={"product": "1"})
    assert forged.status == 403  # the shop's cart view is CSRF-protected: only the widget's post gets in
    page.goto(f"{shop}/cart/")
    row = page.locator("#cart tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Red cotton tee")
    expect(row.locator(".tried")).to_have_text("Tried on")
    shot(page, "desktop-en-cart")
    assert not page.errors

    # -- phone, Chinese: the same shopper, the same result (handed back by the API) --------------------
    page.set_viewport_size(PHONE)
    page.goto(f"{shop}/p/1/")
    with page.expect_navigation():
        page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state("load")
    page.evaluate(
        "Object.defineProperty(Navigator.prototype, 'share', {configurable: true, "
        "value: (data) => { window.__shared = data; return Promise.resolve(); }})"
    )
    page.locator("main .tryon-button").click()
    page.locator("[data-tryon-action=use-saved]").click()
    wait_for_result(page)
    expect(page.locator("#tryon-result-title")).to_have_text("试衣效果")
    expect(add).to_have_text("加入购物车")
    expect(page.locator("[data-tryon-action=share]")).to_have_text("分享")
    expect(page.locator("[data-tryon=share-note]")).to_contain_text("只显示这张效果图")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-zh-result")
    add.click()
    expect(status).to_contain_text("Red cotton tee 已加入你的购物车。")
    expect(page.locator("#cart-count")).to_have_text("2")
    page.locator("[data-tryon-action=share]").click()
    expect(box).to_be_visible()
    expect(page.locator("[data-tryon=share-status]")).to_contain_text("链接有效期至")
    new_url = page.locator("[data-tryon=share-url]").input_value()
    assert new_url != url and page.evaluate("window.__shared.url") == new_url  # the system's share sheet
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-zh-shared")
    check_shared_page(context_for, new_url, "zh-Hans")
    page.get_by_role("button", name="停止分享").click()
    expect(page.locator("[data-tryon=action-status]")).to_have_text("这张图片已不再分享。")
    assert context_for(PHONE, "zh-Hans").request.get(new_url).status == 410

    # -- the JavaScript API, from the cart page's own buttons (no {% tryon_button %} there) ------------
    page.goto(f"{shop}/cart/")
    expect(page.locator("#cart tbody tr td").nth(1)).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-zh-cart")
    assert page.evaluate(
        "window.djangoTryon === window.djangoTryOn && typeof djangoTryon.open === 'function'"
    )
    assert page.locator(".tryon-button").count() == 0
    page.get_by_role("button", name="看看我穿上的样子").click()
    dialog = page.locator("dialog.tryon-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("[data-tryon=product-name]")).to_have_text("Red cotton tee")
    assert events(page, "open")[-1]["target"] == "DIALOG"  # no button opened it: the dialog dispatches
    page.locator("[data-tryon-action=use-saved]").click()
    wait_for_result(page)
    assert page.evaluate("djangoTryon.job().status") == "succeeded"
    # The shop's own cart script takes over: preventDefault() and the widget posts nothing.
    page.evaluate(
        "() => { window.__off = djangoTryon.on('add-to-cart', (event) => event.preventDefault()); }"
    )
    posts.clear()
    add.click()
    assert events(page, "add-to-cart")[-1]["detail"]["job"]["id"] == job["id"]
    page.wait_for_timeout(300)
    assert posts == [] and page.locator("#cart-count").text_content() == "2"
    shot(page, "phone-zh-api")
    page.evaluate("() => { window.__off(); }")  # stop handling the cart: the widget posts again
    add.click()
    expect(page.locator("#cart-count")).to_have_text("3")
    page.evaluate("() => djangoTryon.close()")
    expect(dialog).to_be_hidden()
    assert not page.errors
