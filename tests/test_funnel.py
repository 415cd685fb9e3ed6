"""Funnel analytics: the aggregates table, atomic upserts, the browser's endpoint and its abuse limits, the
purchase helper, the dashboard's funnel, its CSV export and its query count."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from django_tryon import dashboard, funnel, signals
from django_tryon.models import FunnelDay, TryOn, TryOnAttempt
from django_tryon.owners import owner_key_for_session
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db
ENDPOINT = "/tryon/funnel/"
BASE = {
    "BACKEND": "django_tryon.backends.dashscope.DashScopeBackend",
    "OPTIONS": {"api_key": "sk-test-secret-key", "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}


@pytest.fixture(autouse=True)
def _empty_buffer():
    funnel._pending.clear()
    yield
    funnel._pending.clear()


def counts(product=None, day=None) -> dict[str, int]:
    rows = FunnelDay.objects.filter(date=day or funnel.today())
    if product is not None:
        rows = rows.filter(product=product)
    return dict(rows.values_list("step", "count"))


def send(client, *events, **extra):
    return client.post(ENDPOINT, {"events": json.dumps(list(events))}, **extra)


def shopper(client) -> str:
    """Give the test client a session (as the widget's first upload does); returns its owner key."""
    session = client.session
    session.save()
    return owner_key_for_session(session.session_key)


def succeeded_job(product, owner_key: str = "", **fields) -> TryOn:
    fields.setdefault("status", TryOn.Status.SUCCEEDED)
    return TryOn.objects.create(
        product=product, owner_key=owner_key, backend="dashscope", model_name="aitryon", **fields
    )


# -- the table -------------------------------------------------------------------------------------
def test_the_table_holds_aggregates_only():
    names = {field.name for field in FunnelDay._meta.get_fields()}
    assert names == {"id", "date", "product", "step", "count"}  # no user, session, address, photo or job
    columns = {field.column for field in FunnelDay._meta.concrete_fields}
    assert columns == {"id", "date", "product_id", "step", "count"}
    constraint = FunnelDay._meta.constraints[0]
    assert constraint.fields == ("date", "product", "step")


@pytest.mark.parametrize("vendor", ["native", "generic"])
def test_upsert_adds_to_existing_rows(product, vendor):
    other = Product.objects.create(name="Blue jeans")
    day = funnel.today()
    patch = mock.patch.object(connection, "vendor", "other") if vendor == "generic" else mock.MagicMock()
    with patch:
        funnel.upsert({(day, product.pk, "shown"): 2, (day, other.pk, "shown"): 1})
        funnel.upsert({(day, product.pk, "shown"): 3, (day, product.pk, "opened"): 1})
        funnel.upsert({(day - timedelta(days=1), product.pk, "shown"): 7})
    assert counts(product) == {"shown": 5, "opened": 1}
    assert counts(other) == {"shown": 1}
    assert counts(product, day - timedelta(days=1)) == {"shown": 7}
    assert FunnelDay.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_deleted_product_does_not_lose_the_others():
    """A product deleted after its counts were buffered: its foreign key fails at commit, the rest is kept."""
    product = Product.objects.create(name="Red tee")
    day = funnel.today()
    funnel.upsert({(day, product.pk, "shown"): 1, (day, 987654, "shown"): 1})
    assert counts() == {"shown": 1}


def test_recorded_outside_a_request_is_written_at_once(product):
    funnel.record(product.pk, "succeeded")
    assert counts(product) == {"succeeded": 1} and funnel.pending() == {}
    with pytest.raises(ValueError, match="Unknown funnel step"):
        funnel.record(product.pk, "visited")


def test_recorded_during_a_request_is_written_after_it(product):
    funnel._request_started()
    try:
        funnel.record(product.pk, "shown")
        funnel.record(product.pk, "shown")
        assert counts(product) == {}  # nothing written while the request runs
        assert funnel.pending() == {(funnel.today(), product.pk, "shown"): 2}
    finally:
        funnel._request_finished()
    assert counts(product) == {"shown": 2} and funnel.pending() == {}


def test_the_flush_runs_before_django_closes_the_connection():
    from django.core.signals import request_finished
    from django.db import close_old_connections

    keys = [receiver[0] for receiver in request_finished.receivers]
    mine = next(i for i, key in enumerate(keys) if key[0] == "django_tryon.funnel.finished")
    django = next(i for i, key in enumerate(keys) if key[0] == id(close_old_connections))
    assert mine < django


def test_a_failed_write_keeps_the_counts_for_the_next_flush(product):
    from django.db import DatabaseError

    funnel._request_started()
    funnel.record(product.pk, "opened")
    with mock.patch("django_tryon.funnel.upsert", side_effect=DatabaseError("down")):
        funnel._request_finished()  # logged, never raised
    assert funnel.pending() == {(funnel.today(), product.pk, "opened"): 1}
    assert funnel.flush() == 1 and counts(product) == {"opened": 1}


def test_nothing_is_counted_when_switched_off(product):
    with override_settings(TRYON={**BASE, "FUNNEL": False}):
        funnel.record(product.pk, "shown")
        assert counts() == {}
        assert Client().post(ENDPOINT, {"events": "[]"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_lose_no_count():
    """Threads with connections of their own add to the same rows at once (PostgreSQL under
    DJANGO_TRYON_TEST_DB=postgres; SQLite serializes them)."""
    product = Product.objects.create(name="Red tee")
    day = funnel.today()
    threads, errors, per_thread, n_threads = [], [], 25, 6
    start = threading.Barrier(n_threads)

    def writer(generic: bool) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with mock.patch.object(connection, "vendor", "other") if generic else mock.MagicMock():
                    funnel.upsert({(day, product.pk, "shown"): 1, (day, product.pk, "opened"): 2})
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            connection.close()

    for index in range(n_threads):
        threads.append(threading.Thread(target=writer, args=(index % 2 == 1,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counts(product) == {"shown": n_threads * per_thread, "opened": 2 * n_threads * per_thread}


# -- server-side steps ------------------------------------------------------------------------------
def test_a_shoppers_new_tryon_counts_photo_accepted(product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = succeeded_job(product, owner_key="a" * 64)
        succeeded_job(product)  # the merchant's own run (admin, command): not the shop's funnel
        succeeded_job(None, owner_key="b" * 64)  # garments without a product
    job.save()  # an update is no new try-on
    assert counts(product) == {"photo_accepted": 1}


def test_the_succeeded_signal_counts(product):
    job = succeeded_job(product, owner_key="a" * 64)
    signals.tryon_succeeded.send_robust(sender=TryOn, tryon=job)
    signals.tryon_succeeded.send_robust(sender=TryOn, tryon=succeeded_job(product))  # merchant's
    assert counts(product) == {"succeeded": 1}


# -- the endpoint -----------------------------------------------------------------------------------
def test_browser_steps_count_once_per_session_product_and_day(client, product):
    other = Product.objects.create(name="Blue jeans")
    shopper(client)
    response = send(
        client,
        {"step": "shown", "product": str(product.pk)},
        {"step": "shown", "product": other.pk},
        {"step": "opened", "product": str(product.pk)},
        {"step": "shown", "product": str(product.pk)},  # the same again in one batch
    )
    assert response.status_code == 200 and response.json() == {"recorded": 3, "ignored": 1}
    assert response["Cache-Control"] == "private, no-store"
    assert send(client, {"step": "shown", "product": str(product.pk)}).json()["recorded"] == 0
    assert counts(product) == {"shown": 1, "opened": 1} and counts(other) == {"shown": 1}
    tomorrow = funnel.today() + timedelta(days=1)
    with mock.patch("django_tryon.funnel.today", return_value=tomorrow):
        assert send(client, {"step": "shown", "product": str(product.pk)}).json()["recorded"] == 1
    assert counts(product, tomorrow) == {"shown": 1}
    state = client.session[funnel.SESSION_KEY]  # the session knows what it reported; the table does not
    assert state["seen"] == [f"shown:{product.pk}"]


def test_a_visitor_without_a_session_gets_none(client, product):
    """Creating one could race the widget's own first request and replace its session cookie."""
    response = send(
        client,
        {"step": "shown", "product": str(product.pk)},
        {"step": "download", "product": str(product.pk)},
    )
    assert response.json() == {"recorded": 1, "ignored": 1}  # nothing after a try-on without a session
    assert "sessionid" not in response.cookies
    assert counts(product) == {"shown": 1}


def test_steps_after_a_tryon_need_the_sessions_own_succeeded_job(client, product):
    key = shopper(client)
    p = str(product.pk)
    download = {"step": "download", "product": p}
    assert send(client, download).json()["recorded"] == 0  # no try-on yet
    strangers = succeeded_job(product, owner_key="c" * 64)
    failed = succeeded_job(product, owner_key=key, status=TryOn.Status.FAILED)
    for job in (strangers, failed, uuid.uuid4()):
        job_id = str(getattr(job, "public_id", job))
        assert send(client, {"step": "result", "product": p, "job": job_id}, download).json()["recorded"] == 0
    mine = succeeded_job(product, owner_key=key)
    response = send(
        client,
        {"step": "result", "product": p, "job": str(mine.public_id)},
        download,
        {"step": "share", "product": p},  # the same step: downloaded or shared
        {"step": "add-to-cart", "product": p},
    )
    assert response.json() == {"recorded": 2, "ignored": 2}
    assert counts(product) == {"downloaded_or_shared": 1, "added_to_cart": 1}


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"events": "not json"}, "Expecting value"),
        ({"events": "{}"}, "non-empty list"),
        ({"events": "[]"}, "non-empty list"),
        ({"events": json.dumps([{"step": "visited", "product": "1"}])}, "unknown step"),
        ({"events": json.dumps([{"step": "shown"}])}, "names a product"),
        ({"events": json.dumps([{"step": "shown", "product": True}])}, "names a product"),
        ({"events": json.dumps([{"step": "result", "product": "1", "job": "x"}])}, "badly formed"),
        ({"events": json.dumps([["shown", "1"]])}, "is an object"),
        ({"events": json.dumps([{"step": "shown", "product": "1"}] * 51)}, "at most 50"),
    ],
)
def test_malformed_batches_are_refused(client, product, body, detail):
    response = client.post(ENDPOINT, body)
    assert response.status_code == 400
    assert (
        response.json()["error"]["code"] == "InvalidParameter"
        and detail in response.json()["error"]["message"]
    )
    assert FunnelDay.objects.count() == 0


def test_unknown_products_are_ignored(client, product):
    shopper(client)
    response = send(
        client,
        {"step": "shown", "product": "999999"},
        {"step": "shown", "product": "not-a-number"},
        {"step": "shown", "product": str(product.pk)},
    )
    assert response.json() == {"recorded": 1, "ignored": 2}
    assert list(FunnelDay.objects.values_list("product_id", flat=True)) == [product.pk]


def test_json_bodies_and_other_methods(client, product):
    shopper(client)
    body = json.dumps([{"step": "opened", "product": product.pk}])
    assert client.post(ENDPOINT, body, content_type="application/json").json()["recorded"] == 1
    assert client.get(ENDPOINT).status_code == 405


def test_csrf_is_checked(product):
    strict = Client(enforce_csrf_checks=True)
    events = json.dumps([{"step": "shown", "product": str(product.pk)}])
    assert strict.post(ENDPOINT, {"events": events}).status_code == 403
    strict.get("/admin/login/")  # any page that sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    assert strict.post(ENDPOINT, {"events": events, "csrfmiddlewaretoken": token}).status_code == 200
    assert counts(product) == {"shown": 1}


def test_throttled_per_address(product):
    with override_settings(TRYON={**BASE, "THROTTLE_RATES": {"funnel": "2/min"}}):
        responses = [send(Client(), {"step": "shown", "product": str(product.pk)}) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2]["Retry-After"] and responses[2].json()["error"]["code"] == "rate_limited"
    assert counts(product) == {"shown": 2}


def test_a_stranger_with_fresh_sessions_is_capped_per_address(product):
    """Each new session may count "shown" again; the address's daily cap bounds what that buys."""
    with override_settings(TRYON={**BASE, "THROTTLE_RATES": {}, "FUNNEL_DAILY_EVENTS_PER_ADDRESS": 5}):
        recorded = []
        for _ in range(4):
            client = Client()
            shopper(client)
            events = ({"step": step, "product": str(product.pk)} for step in ("shown", "opened"))
            recorded.append(send(client, *events).json()["recorded"])
        other = Client(REMOTE_ADDR="10.0.0.9")
        shopper(other)
        assert send(other, {"step": "shown", "product": str(product.pk)}).json()["recorded"] == 1
    assert recorded == [2, 2, 1, 0]
    assert counts(product) == {"shown": 4, "opened": 2}


def test_the_endpoint_adds_little_time(client, product):
    """The endpoint's own cost, figures printed (docs/analytics.rst): a batch of 10 events."""
    products = [Product.objects.create(name=f"P{i}") for i in range(5)]
    shopper(client)
    timings = []
    for round_ in range(20):
        events = [{"step": "shown", "product": str(p.pk)} for p in products] + [
            {"step": "opened", "product": str(p.pk)} for p in products
        ]
        if round_ % 2:
            client.cookies.pop("sessionid", None)
            shopper(client)
        start = time.perf_counter()
        assert send(client, *events).status_code == 200
        timings.append(time.perf_counter() - start)
    timings.sort()
    print(f"funnel endpoint, 10 events: median {timings[10] * 1000:.1f} ms, max {timings[-1] * 1000:.1f} ms")
    assert timings[10] < 0.25


# -- purchases and the shop's cart -----------------------------------------------------------------
def test_a_purchase_counts_only_after_a_tryon_in_that_session(rf, product):
    from django.contrib.sessions.backends.db import SessionStore

    received = []

    def on_purchase(sender, product, quantity, **kwargs):
        received.append((product, quantity))

    signals.tryon_purchased.connect(on_purchase)
    try:
        session = SessionStore()
        assert funnel.record_purchase(session, product) is False
        funnel.mark_tried_on(session, product.pk)
        assert funnel.record_purchase(session, product, quantity=2) is True
        assert funnel.record_purchase(session, product.pk) is True
        assert funnel.record_purchase(session, product, quantity=0) is False
    finally:
        signals.tryon_purchased.disconnect(on_purchase)
    assert counts(product) == {"purchased": 3}
    assert received == [(product, 2), (product.pk, 1)]


def test_a_purchase_by_a_shopper_with_a_succeeded_job_counts(rf, product, django_user_model):
    """Without the widget's script (the no-JavaScript form) the shopper's own jobs tell."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.post("/checkout/")
    request.session, request.user = SessionStore(), AnonymousUser()
    assert funnel.record_purchase(request, product) is False  # no session key: owns nothing
    request.session.save()
    succeeded_job(product, owner_key=owner_key_for_session(request.session.session_key))
    assert funnel.record_purchase(request, product) is True
    user = django_user_model.objects.create_user("ann")
    request.user = user
    assert funnel.record_purchase(request, product) is False  # signed in: the user's own jobs
    succeeded_job(product, user=user)
    assert funnel.record_purchase(request, product) is True
    assert counts(product) == {"purchased": 2}


def test_the_shops_own_cart_code_counts_once(rf, product):
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.post("/cart/")
    request.session, request.user = SessionStore(), AnonymousUser()
    assert funnel.record_add_to_cart(request, product) is False
    request.session.save()
    succeeded_job(product, owner_key=owner_key_for_session(request.session.session_key))
    assert funnel.record_add_to_cart(request, product) is True
    assert funnel.record_add_to_cart(request, product) is False  # once per session, product and day
    assert counts(product) == {"added_to_cart": 1}


# -- the widget's assets --------------------------------------------------------------------------
def test_the_assets_load_the_funnel_script(rf):
    from django.template import Context, Template

    html = Template("{% load tryon_tags %}{% tryon_assets %}").render(Context({"request": rf.get("/")}))
    assert 'src="/static/django_tryon/tryon-funnel.js" data-tryon-funnel="/tryon/funnel/" defer' in html
    with override_settings(TRYON={**BASE, "FUNNEL": False}):
        html = Template("{% load tryon_tags %}{% tryon_assets %}").render(Context({"request": rf.get("/")}))
    assert "tryon.js" in html and "tryon-funnel" not in html


# -- the dashboard ----------------------------------------------------------------------------------
@pytest.fixture
def shop_data(product):
    """A week of counts for two products, an old row out of range, and paid attempts."""
    jeans = Product.objects.create(name='=HYPERLINK("http://x")')
    today = funnel.today()
    rows = {
        (product, today): {"shown": 40, "opened": 20, "photo_accepted": 10, "succeeded": 8},
        (product, today - timedelta(days=3)): {"downloaded_or_shared": 4, "added_to_cart": 2, "purchased": 1},
        (jeans, today - timedelta(days=6)): {"shown": 10, "opened": 5, "photo_accepted": 4, "succeeded": 4},
        (jeans, today - timedelta(days=20)): {"shown": 100, "added_to_cart": 3},  # only in the 30 days
    }
    for (item, day), steps in rows.items():
        for step, n in steps.items():
            FunnelDay.objects.create(date=day, product=item, step=step, count=n)
    for item, price in ((product, "0.20"), (product, "0.20"), (jeans, "0.50")):
        job = succeeded_job(item, owner_key="a" * 64)
        TryOnAttempt.objects.create(job=job, backend="dashscope", model_name="aitryon", price=Decimal(price))
    released = succeeded_job(product, owner_key="a" * 64)
    TryOnAttempt.objects.create(
        job=released,
        backend="dashscope",
        model_name="aitryon",
        price=Decimal("9"),
        released_at=timezone.now(),
    )
    return product, jeans


def test_dashboard_figures(shop_data):
    tee, jeans = shop_data
    week = dashboard.funnel_figures(7)
    steps = {s["step"]: (s["count"], s["conversion"]) for s in week["steps"]}
    assert steps == {
        "shown": (50, None),
        "opened": (25, 0.5),
        "photo_accepted": (14, 14 / 25),
        "succeeded": (12, 12 / 14),
        "downloaded_or_shared": (4, 4 / 12),
        "added_to_cart": (2, 0.5),
        "purchased": (1, 0.5),
    }
    assert [s["step"] for s in week["steps"]] == list(funnel.STEPS)
    assert week["steps"][0]["width"] == 360 and week["steps"][1]["width"] == 180
    table = {row["product_id"]: row for row in week["products"]}
    assert [row["product_id"] for row in week["products"]] == [tee.pk, jeans.pk]  # most try-ons first
    assert table[tee.pk] | {} == {
        "product_id": tee.pk,
        "product": "Red tee",
        "shown": 40,
        "opened": 20,
        "tryons": 10,
        "succeeded": 8,
        "success_rate": 0.8,
        "downloaded_or_shared": 4,
        "added_to_cart": 2,
        "add_to_cart_rate": 0.25,
        "purchased": 1,
        "spend": Decimal("0.40"),  # the released attempt does not count
    }
    assert table[jeans.pk]["add_to_cart_rate"] == 0 and table[jeans.pk]["spend"] == Decimal("0.50")
    month = dashboard.funnel_figures(30)
    assert month["steps"][0]["count"] == 150 and month["first"] == funnel.today() - timedelta(days=29)
    assert (
        dashboard.funnel_days("30") == 30
        and dashboard.funnel_days("9") == 7
        and dashboard.funnel_days(None) == 7
    )


def test_dashboard_queries_do_not_grow_with_products(shop_data):
    with CaptureQueriesContext(connection) as few:
        dashboard.funnel_figures(30)
    for i in range(20):
        item = Product.objects.create(name=f"Product {i}")
        FunnelDay.objects.create(date=funnel.today(), product=item, step="shown", count=i + 1)
        TryOnAttempt.objects.create(
            job=succeeded_job(item, owner_key="a" * 64), backend="x", model_name="m", price=1
        )
    with CaptureQueriesContext(connection) as many:
        figures = dashboard.funnel_figures(30)
    assert len(figures["products"]) == 22
    assert len(few) == len(many) == 3


def test_dashboard_page_shows_the_funnel(client, django_user_model, shop_data):
    tee, _ = shop_data
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get("/admin/django_tryon/tryon/dashboard/").content.decode()
    assert 'id="tryon-funnel"' in page and "Button shown" in page and "Add-to-cart rate" in page
    assert '<tspan class="funnel-count">50</tspan></text>' in page  # the first step has no share
    assert '<tspan class="funnel-count">25</tspan> <tspan fill="#555">(50 %)</tspan>' in page
    assert f'<tr data-product="{tee.pk}"><td>Red tee</td><td>10</td>' in page
    assert 'href="/admin/django_tryon/tryon/dashboard/funnel.csv?days=7"' in page
    month = client.get("/admin/django_tryon/tryon/dashboard/?days=30").content.decode()
    assert '<tspan class="funnel-count">150</tspan>' in month and "funnel.csv?days=30" in month
    with translation.override("zh-hans"):
        chinese = client.get("/admin/django_tryon/tryon/dashboard/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = chinese.content.decode()
    assert "按钮展示" in text and "加购率" in text and "导出 CSV" in text


def test_csv_export(client, django_user_model, shop_data):
    tee, jeans = shop_data
    jeans.name = '=HYPERLINK("http://x") 牛仔裤'
    jeans.save()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    response = client.get("/admin/django_tryon/tryon/dashboard/funnel.csv?days=7")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tryon-funnel-')
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == list(dashboard.CSV_COLUMNS)
    assert rows[1] == [
        str(tee.pk),
        "Red tee",
        "40",
        "20",
        "10",
        "8",
        "0.8000",
        "4",
        "2",
        "0.2500",
        "1",
        "0.40",
        "CNY",
    ]
    assert rows[2][1] == '\'=HYPERLINK("http://x") 牛仔裤'  # never a formula in a spreadsheet
    assert rows[2][9] == "0.0000" and len(rows) == 3
    for name in ("+1", "-1", "@SUM(A1)", "\tx"):
        assert dashboard._csv_safe(name) == "'" + name
    assert dashboard._csv_safe("Red tee") == "Red tee" and dashboard._csv_safe(5) == 5


def test_csv_export_needs_the_view_permission(client, django_user_model, shop_data):
    url = "/admin/django_tryon/tryon/dashboard/funnel.csv"
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    assert client.get(url).status_code == 403


def test_funnel_day_str(product):
    row = FunnelDay.objects.create(date=date(2026, 12, 1), product=product, step="shown", count=3)
    assert str(row) == f"2026-12-01 {product.pk} shown: 3"
