"""Funnel analytics end to end: a scripted shopper in headless Chromium on the example shop, then the
merchant's dashboard shows exactly what that shopper did."""

from __future__ import annotations

import re
import time

import pytest

from .test_browser import (  # noqa: F401 - pytest fixtures imported from the browser tests
    ARTIFACTS,
    DESKTOP,
    browser,
    new_page,
    person_photo,
    shop,
    wait_for_result,
)
from .test_example_project import manage, shop_env

STEPS = (
    "shown",
    "opened",
    "photo_accepted",
    "succeeded",
    "downloaded_or_shared",
    "added_to_cart",
    "purchased",
)


@pytest.fixture(scope="module")
def shop_admin(shop, tmp_path_factory):  # noqa: F811 - a fixture imported from the browser tests
    """A superuser of the running shop: (username, password).

    The ``shop`` fixture keeps its data in the newest ``shop<N>`` folder of this run's temporary
    directory (``tmp_path_factory.mktemp("shop")``); the account is created there with manage.py.
    """
    folders = [p for p in tmp_path_factory.getbasetemp().glob("shop*") if (p / "db.sqlite3").exists()]
    var_dir = max(folders, key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    create = (
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_superuser('merchant', 'm@example.com', 'pw-merchant')"
    )
    done = manage(shop_env(var_dir), "shell", "-c", create)
    assert done.returncode == 0, done.stderr
    return "merchant", "pw-merchant"


def funnel_counts(page, base: str, days: int = 7) -> dict[str, int]:
    page.goto(f"{base}/admin/django_tryon/tryon/dashboard/?days={days}")
    counts = {}
    for step in STEPS:
        counts[step] = int(page.locator(f"#tryon-funnel [data-step={step}] .funnel-count").text_content())
    return counts


def test_a_shoppers_session_shows_on_the_dashboard(shop, shop_admin, new_page, person_photo):  # noqa: F811
    from playwright.sync_api import expect

    merchant = new_page(DESKTOP)
    merchant.goto(f"{shop}/admin/login/")
    merchant.fill("#id_username", shop_admin[0])
    merchant.fill("#id_password", shop_admin[1])
    merchant.click("input[type=submit]")
    before = funnel_counts(merchant, shop)
    assert before == dict.fromkeys(STEPS, 0)

    page = new_page(DESKTOP)
    beacons = []
    page.on("request", lambda r: "/tryon/funnel/" in r.url and beacons.append(r.post_data or ""))
    page.goto(f"{shop}/p/1/")
    assert page.evaluate("typeof window.djangoTryonFunnel") == "object"
    page.locator("main .tryon-button").click()
    page.locator("dialog.tryon-dialog").wait_for(state="visible")
    page.locator("[data-tryon=consent]").check()
    page.locator("[data-tryon=file]").set_input_files(str(person_photo))
    wait_for_result(page)
    with page.expect_download():
        page.locator("[data-tryon=download]").click()
    # The result view's own buttons: share is the same step as the download (counted once); add to cart
    # posts to the example shop's session cart (TRYON["ADD_TO_CART_URL"]).
    page.locator("[data-tryon-action=share]").click()
    expect(page.locator("[data-tryon=share-box]")).to_be_visible()
    page.locator("[data-tryon-action=add-to-cart]").click()
    expect(page.locator("#cart-count")).to_have_text("1")
    # A cart event for a product this session never tried on counts nothing (checked by the server).
    page.evaluate(
        """() => {
          const button = document.querySelector("main .tryon-button");
          const job = { id: "00000000-0000-0000-0000-000000000000", product: 2 };
          const detail = { product: "2", garments: [], job: job };
          button.dispatchEvent(new CustomEvent("tryon:add-to-cart", { bubbles: true, cancelable: true, detail }));
        }"""
    )
    page.evaluate("window.djangoTryonFunnel.send()")
    page.goto(f"{shop}/p/1/")  # the same tab again: its button was counted already
    page.locator("main .tryon-button").click()  # and so was the dialog, today
    page.evaluate("window.djangoTryonFunnel.send()")
    page.goto(f"{shop}/cart/")  # leaving the page sends what is left (pagehide)
    page.locator("#checkout button[type=submit]").click()  # the demo order: funnel.record_purchase
    expect(page.locator("#ordered")).to_be_visible()

    expected = {**dict.fromkeys(STEPS, 0), "shown": 1, "opened": 1, "photo_accepted": 1, "succeeded": 1}
    expected.update(downloaded_or_shared=1, added_to_cart=1, purchased=1)
    deadline = time.monotonic() + 20
    while (counts := funnel_counts(merchant, shop)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)  # beacons travel after the page has moved on
    assert counts == expected, beacons
    assert any('"step":"result"' in b.replace("%22", '"').replace("%3A", ":") for b in beacons)
    row = merchant.locator("#funnel-products tr[data-product='1'] td")
    expect(row.nth(1)).to_have_text("1")  # try-ons
    expect(row.nth(2)).to_have_text("100 %")  # success rate
    expect(row.nth(3)).to_have_text("1")  # added to cart after the try-on
    expect(row.nth(4)).to_have_text("100 %")  # ÷ succeeded
    expect(row.nth(5)).to_have_text("1")  # purchased after the try-on
    expect(row.nth(6)).to_have_text("0.20 CNY")  # spend: the attempt ledger (aitryon's list price)
    expect(merchant.locator("#funnel-products tr[data-product='2']")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    merchant.locator("#funnel").scroll_into_view_if_needed()
    merchant.screenshot(path=str(ARTIFACTS / "admin-funnel.png"), full_page=True)
    assert not page.errors
