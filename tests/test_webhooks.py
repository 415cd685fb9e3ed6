"""Webhooks: signed deliveries to a receiver in its own process over real HTTP, retries, redelivery, the
one-in-flight rule, the REST ``webhook`` field, and the refusal of internal addresses."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from django_tryon import outbound, pipeline, services, signals, webhooks
from django_tryon.models import TryOn, TryOnWebhook, WebhookAttempt, WebhookDelivery, WebhookEndpoint

from . import images
from .conftest import admit, step

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "sk-test-secret-key"  # tests/settings.py
BASE = {
    "OPTIONS": {"api_key": PROVIDER_KEY, "base_url": "https://dashscope.test/api/v1"},
    "PUBLIC_BASE_URL": "https://shop.test",
}
LOCAL = {**BASE, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_READ_TIMEOUT": 5}


class Receiver:
    """A receiver process (tests/webhook_receiver.py): checks signatures with the documented snippet."""

    def __init__(self, tmp_path: Path, secret: str, mode: str, tls: tuple[str, str] | None = None) -> None:
        self.log = tmp_path / f"receiver-{mode.replace(':', '-')}-{time.monotonic_ns()}.jsonl"
        self.log.touch()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests/webhook_receiver.py"),
                str(self.log),
                secret,
                mode,
                *(tls or ()),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/hooks/tryon?shop=1"

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


@pytest.fixture(autouse=True)
def _english():
    """Messages are checked in English (a Chinese request earlier in the thread leaves Chinese active)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def receiver(tmp_path):
    started: list[Receiver] = []

    def start(mode: str = "ok", secret: str = "whsec_test", tls: tuple[str, str] | None = None) -> Receiver:
        started.append(Receiver(tmp_path, secret, mode, tls))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def sent():
    """Messages to the broker are recorded, not sent (the tests run the task's service function themselves)."""
    from types import SimpleNamespace

    now = SimpleNamespace(
        on_commit=lambda callback, using=None: callback()
    )  # the test's transaction never commits
    with (
        mock.patch("django_tryon.scheduling._send") as send,
        mock.patch("django_tryon.scheduling.transaction", now),
    ):
        yield send


@pytest.fixture
def local():
    with override_settings(TRYON=LOCAL):
        yield


def endpoint(url: str, **fields) -> WebhookEndpoint:
    defaults = {
        "name": f"hook-{WebhookEndpoint.objects.count() + 1}",
        "secret": "whsec_test",
        "send_all": True,
    }
    return WebhookEndpoint.objects.create(url=url, **{**defaults, **fields})


def finished_job(status: str = "succeeded", **fields) -> TryOn:
    job = TryOn.objects.create(
        backend="dashscope",
        model_name="aitryon",
        status=status,
        finished_at=timezone.now(),
        error_code="" if status == "succeeded" else "InvalidGarment",
        **fields,
    )
    if status == "succeeded":
        job.result_image.save("result.jpg", ContentFile(images.garment_photo((10, 200, 10))), save=True)
    return job


def deliver(delivery_or_endpoint, event: str = "tryon.succeeded", **kwargs) -> int:
    pk = getattr(delivery_or_endpoint, "endpoint_id", None) or delivery_or_endpoint.pk
    return webhooks.deliver_due(pk, event, **kwargs)


# -- signing -----------------------------------------------------------------------------------------
def test_signature_helper_and_documented_snippet_agree():
    snippet: dict = {}
    exec((ROOT / "docs/snippets/verify_webhook.py").read_text(), snippet)
    body, secret = b'{"id":"evt_1"}', "whsec_abc"
    header = webhooks.signature_header(secret, body)
    assert header.startswith("t=") and ",v1=" in header
    assert webhooks.verify_signature(body, header, secret)
    assert snippet["verify_tryon_webhook"](body, header, secret)
    assert not webhooks.verify_signature(body + b" ", header, secret)
    assert not webhooks.verify_signature(body, header, "whsec_other")
    assert not snippet["verify_tryon_webhook"](body, header, "whsec_other")
    old = webhooks.signature_header(secret, body, timestamp=int(time.time()) - 301)
    assert not webhooks.verify_signature(body, old, secret)
    assert not snippet["verify_tryon_webhook"](body, old, secret)
    assert webhooks.verify_signature(body, old, secret, tolerance=600)
    assert not webhooks.verify_signature(body, "garbage", secret)
    # a rotated secret: the receiver may be sent several v1 values
    assert webhooks.verify_signature(body, f"{header},v1=deadbeef", secret)


# -- delivery over HTTP ------------------------------------------------------------------------------
def test_a_delivery_is_signed_and_carries_the_job_as_the_api_shows_it(receiver, sent, local):
    hook = receiver("ok")
    target = endpoint(hook.url)
    job = finished_job()
    [delivery] = webhooks.enqueue(job, "tryon.succeeded")
    assert sent.call_args.args[0].name == "django_tryon.deliver_webhooks"
    assert sent.call_args.args[1] == (target.pk, "tryon.succeeded")
    assert deliver(target) == 1
    [got] = hook.records()
    assert got["verified"] is True
    assert got["path"] == "/hooks/tryon?shop=1"
    headers = got["headers"]
    assert headers["X-Tryon-Event"] == "tryon.succeeded"
    assert headers["X-Tryon-Delivery"] == str(delivery.public_id)
    assert headers["X-Tryon-Attempt"] == "1"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("django-tryon/")
    assert headers["Host"] == f"127.0.0.1:{hook.port}"
    body = json.loads(got["body"])
    assert set(body) == {"id", "type", "created", "data"}
    assert body["id"] == delivery.event_id and body["id"].startswith("evt_")
    assert body["type"] == "tryon.succeeded"
    data = body["data"]
    assert data["id"] == str(job.public_id) and data["status"] == "succeeded" and data["model"] == "aitryon"
    assert data["result_url"].startswith("https://shop.test/")  # absolute, signed, expiring
    assert data["error"] is None and "queue_position" in data and "warnings" in data
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 1 and delivery.last_status == 204
    [attempt] = delivery.attempt_log.all()
    assert attempt.status_code == 204 and attempt.error == "" and attempt.address == "127.0.0.1"
    assert 0 <= attempt.duration < 5


def test_the_provider_key_and_credentials_never_go_out(receiver, sent, local):
    hook = receiver("ok")
    endpoint(hook.url)
    webhooks.enqueue(finished_job("failed"), "tryon.failed")
    deliver(WebhookEndpoint.objects.get(), "tryon.failed")
    [got] = hook.records()
    assert got["verified"]
    everything = json.dumps(got["headers"]) + got["body"]
    assert PROVIDER_KEY not in everything
    assert not {"authorization", "cookie", "proxy-authorization"} & {h.lower() for h in got["headers"]}
    assert json.loads(got["body"])["data"]["error"]["code"] == "InvalidGarment"


def test_a_receiver_that_fails_twice_then_accepts_gets_three_logged_attempts(receiver, sent, local):
    hook = receiver("fail:2")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    with override_settings(TRYON={**LOCAL, "WEBHOOK_RETRY_DELAY": 60}):
        assert deliver(target) == 1
        delivery = WebhookDelivery.objects.get()
        assert (
            delivery.state == "pending" and delivery.last_status == 500 and delivery.last_error == "HTTP 500"
        )
        first_wait = delivery.next_attempt_at - delivery.attempt_log.get().started_at
        assert 59 < first_wait.total_seconds() < 62
        assert deliver(target) == 0  # not due yet: scheduled for then
        assert sent.call_args.kwargs == {} and sent.call_args.args[2] == delivery.next_attempt_at
        assert deliver(target, now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
        delivery.refresh_from_db()
        second_wait = delivery.next_attempt_at - delivery.attempt_log.get(number=2).started_at
        assert 119 < second_wait.total_seconds() < 122  # doubled
        assert deliver(target, now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 3 and delivery.delivered_at
    log = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 204)]
    assert log[0].response_excerpt == "receiver down"
    records = hook.records()
    assert [r["verified"] for r in records] == [True, True, True]
    assert [r["headers"]["X-Tryon-Attempt"] for r in records] == ["1", "2", "3"]
    assert len({json.loads(r["body"])["id"] for r in records}) == 1  # one event, three attempts


def test_retries_stop_after_the_window(receiver, sent):
    hook = receiver("fail:99")
    target = endpoint(hook.url)
    with override_settings(TRYON={**LOCAL, "WEBHOOK_RETRY_DELAY": 60, "WEBHOOK_RETRY_WINDOW": 100}):
        webhooks.enqueue(finished_job(), "tryon.succeeded")
        deliver(target)
        delivery = WebhookDelivery.objects.get()
        assert delivery.state == "pending"
        deliver(target, now=delivery.next_attempt_at)  # the next wait (120 s) would pass the window
    delivery.refresh_from_db()
    assert delivery.state == "failed" and delivery.attempts == 2 and delivery.last_status == 500
    assert delivery.next_attempt_at is None


def test_retry_delay_doubles_up_to_the_cap():
    with override_settings(TRYON={"WEBHOOK_RETRY_DELAY": 30, "WEBHOOK_RETRY_MAX_DELAY": 3600}):
        assert [webhooks.retry_delay(n) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_410_gone_disables_the_endpoint(receiver, sent, local):
    hook = receiver("gone")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    deliver(target)
    target.refresh_from_db()
    assert not target.is_active and "410" in target.disabled_reason
    states = list(WebhookDelivery.objects.order_by("created_at", "pk").values_list("state", flat=True))
    assert states == ["failed", "failed"]  # the second is dropped with its inactive endpoint
    assert len(hook.records()) == 1


def test_no_redirect_is_followed(receiver, sent, local):
    hook = receiver("redirect")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    deliver(target)
    delivery = WebhookDelivery.objects.get()
    attempt = delivery.attempt_log.get()
    assert attempt.status_code == 302 and "not followed" in attempt.error
    assert delivery.state == "pending"  # a redirect is not a delivery: retried later
    assert [r["path"] for r in hook.records()] == ["/hooks/tryon?shop=1"]


def test_a_slow_receiver_times_out(receiver, sent):
    hook = receiver("slow:3")
    target = endpoint(hook.url)
    with override_settings(TRYON={**LOCAL, "WEBHOOK_READ_TIMEOUT": 0.5}):
        webhooks.enqueue(finished_job(), "tryon.succeeded")
        started = time.monotonic()
        deliver(target)
    assert time.monotonic() - started < 2.5
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "Timeout" in attempt.error
    assert WebhookDelivery.objects.get().state == "pending"


def test_a_big_answer_is_read_only_in_part(receiver, sent, local):
    hook = receiver("big")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    deliver(target)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200 and len(attempt.response_excerpt) == webhooks.EXCERPT_CHARS
    assert WebhookDelivery.objects.get().state == "delivered"


def test_the_tick_leaves_a_queue_alone_while_its_head_waits(sent, local):
    target = endpoint("https://hooks.example.com/")
    first = webhooks.enqueue(finished_job(), "tryon.succeeded")[0]
    webhooks.enqueue(finished_job(), "tryon.succeeded")  # due now, but behind the first
    WebhookDelivery.objects.filter(pk=first.pk).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(seconds=600)
    )
    sent.reset_mock()
    assert pipeline.tick(now=timezone.now() + timedelta(seconds=60))["webhooks"] == 0
    assert not sent.called
    assert pipeline.tick(now=timezone.now() + timedelta(seconds=610))["webhooks"] == 1
    assert sent.call_args.args[1] == (target.pk, "tryon.succeeded")


def test_a_lost_message_is_sent_again_by_the_tick(receiver, sent, local):
    hook = receiver("ok")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")  # its message is "lost" (recorded, never run)
    sent.reset_mock()
    assert pipeline.tick()["webhooks"] == 0  # not late yet
    later = timezone.now() + timedelta(seconds=10)
    assert pipeline.tick(now=later)["webhooks"] == 1
    assert sent.call_args.args[0].name == "django_tryon.deliver_webhooks"
    assert sent.call_args.args[1] == (target.pk, "tryon.succeeded")
    # a worker died while sending: once its lease is over the tick hands the delivery out again
    WebhookDelivery.objects.update(state="sending", lease_until=timezone.now() + timedelta(seconds=60))
    assert deliver(target) == 0 and hook.records() == []
    assert pipeline.tick(now=timezone.now() + timedelta(seconds=61))["webhooks"] == 1
    assert deliver(target, now=timezone.now() + timedelta(seconds=61)) == 1
    assert WebhookDelivery.objects.get().state == "delivered" and len(hook.records()) == 1


# -- one in flight per endpoint and event ------------------------------------------------------------
def test_the_next_delivery_waits_for_the_one_in_flight(receiver, sent, local):
    hook = receiver("ok")
    target = endpoint(hook.url)
    first = webhooks.enqueue(finished_job(), "tryon.succeeded")[0]
    second = webhooks.enqueue(finished_job(), "tryon.succeeded")[0]
    other_event = webhooks.enqueue(finished_job("failed"), "tryon.failed")[0]
    WebhookDelivery.objects.filter(pk=first.pk).update(
        state="sending", attempts=1, lease_until=timezone.now() + timedelta(seconds=60)
    )
    assert deliver(target) == 0  # the head is in flight: the second waits behind it
    assert deliver(target, "tryon.failed") == 1  # another event has its own queue
    WebhookDelivery.objects.filter(pk=first.pk).update(state="pending", lease_until=None)
    assert deliver(target) == 2
    bodies = [json.loads(r["body"]) for r in hook.records()]
    assert [b["id"] for b in bodies] == [other_event.event_id, first.event_id, second.event_id]


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_send_one_at_a_time_in_order(receiver, sent):
    """Three workers race for the same queue: requests never overlap, and go out oldest first."""
    hook = receiver("slow:0.4")
    with override_settings(TRYON=LOCAL):
        target = endpoint(hook.url)
        events = [webhooks.enqueue(finished_job(), "tryon.succeeded")[0].event_id for _ in range(3)]
        errors: list[BaseException] = []

        def worker() -> None:
            from django.db import connection

            try:
                deliver(target)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors
    records = hook.records()
    assert [json.loads(r["body"])["id"] for r in records] == events
    starts = [r["at"] for r in records]
    assert all(later - earlier >= 0.35 for earlier, later in itertools.pairwise(starts))
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
    assert WebhookAttempt.objects.count() == 3


# -- redeliver ---------------------------------------------------------------------------------------
def test_the_admin_redeliver_action(receiver, sent, local, admin_client):
    hook = receiver("ok")
    target = endpoint(hook.url)
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    deliver(target)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "delivered"
    page = admin_client.get(f"/admin/django_tryon/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"204" in page.content  # the attempts inline
    response = admin_client.post(
        "/admin/django_tryon/webhookdelivery/",
        {"action": "redeliver_selected", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert b"1 delivery was queued again." in response.content
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert sent.call_args.args[1] == (target.pk, "tryon.succeeded")
    deliver(target)
    records = hook.records()
    assert len(records) == 2 and all(r["verified"] for r in records)
    assert json.loads(records[0]["body"])["id"] == json.loads(records[1]["body"])["id"]
    assert [a.status_code for a in delivery.attempt_log.order_by("number")] == [204, 204]


def test_the_delivery_log_is_read_only_in_the_admin(admin_client, sent, local):
    target = endpoint("https://hooks.example.com/x")
    webhooks.enqueue(finished_job(), "tryon.succeeded")
    delivery = WebhookDelivery.objects.get(endpoint=target)
    assert admin_client.get("/admin/django_tryon/webhookdelivery/add/").status_code == 403
    page = admin_client.get(f"/admin/django_tryon/webhookdelivery/{delivery.pk}/change/")
    assert b'name="state"' not in page.content and b"evt_" in page.content


# -- which endpoints get what ------------------------------------------------------------------------
def test_send_all_endpoints_and_the_named_one_get_the_event(
    sent, person_bytes, top_garment, dashscope, django_capture_on_commit_callbacks, django_user_model
):
    client = django_user_model.objects.create_user("client")
    everything = endpoint("https://a.example.com/")
    only_failures = endpoint("https://b.example.com/", events=["tryon.failed"])
    named = endpoint("https://c.example.com/", send_all=False, user=client)
    not_named = endpoint("https://d.example.com/", send_all=False, user=client)
    off = endpoint("https://e.example.com/", is_active=False)
    dashscope.submit_ok()
    dashscope.task("SUCCEEDED")
    dashscope.result()
    job = services.create_tryon(
        person_image=person_bytes, top_garment=top_garment, user=client, webhook=named, dispatch_now=False
    )
    assert TryOnWebhook.objects.get(job=job).endpoint == named
    admit(job)
    with django_capture_on_commit_callbacks(execute=True):
        step(job)
        step(job)
    job.refresh_from_db()
    assert job.status == "succeeded"
    got = set(WebhookDelivery.objects.values_list("endpoint__name", "event"))
    assert got == {(everything.name, "tryon.succeeded"), (named.name, "tryon.succeeded")}
    assert only_failures.name and not_named.name and off.name


def test_a_canceled_job_sends_tryon_canceled(
    sent, person_bytes, top_garment, django_capture_on_commit_callbacks
):
    target = endpoint("https://a.example.com/")
    received = []

    def receiver_fn(sender, tryon, **kwargs):
        received.append(tryon.status)

    signals.tryon_canceled.connect(receiver_fn, dispatch_uid="test-canceled")
    try:
        job = services.create_tryon(person_image=person_bytes, top_garment=top_garment, dispatch_now=False)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert services.cancel(job)
        assert received == []  # after commit only
        for callback in callbacks:
            callback()
    finally:
        signals.tryon_canceled.disconnect(dispatch_uid="test-canceled")
    assert received == ["canceled"]
    delivery = WebhookDelivery.objects.get(endpoint=target)
    assert delivery.event == "tryon.canceled" and delivery.payload["data"]["status"] == "canceled"
    assert delivery.payload["data"]["error"]["code"] == "Canceled"


# -- the REST field ----------------------------------------------------------------------------------
@pytest.fixture
def api_user(django_user_model):
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user("headless-shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return user, client


def create_via_api(client, product, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    photo = SimpleUploadedFile("me.jpg", images.person_photo(), content_type="image/jpeg")
    data = {"person_image": photo, "consent": "true", "product": product.pk, **extra}
    return client.post("/tryon/api/tryons/", data, format="multipart")


def test_an_api_client_names_its_own_endpoint(api_user, top_garment, sent):
    user, client = api_user
    mine = endpoint("https://hooks.example.com/mine", name="mine", user=user, send_all=False)
    response = create_via_api(client, top_garment.product, webhook="mine")
    assert response.status_code == 202, response.json()
    job = TryOn.objects.get(public_id=response.json()["id"])
    assert TryOnWebhook.objects.get(job=job).endpoint == mine


@pytest.mark.parametrize("case", ["foreign", "inactive", "unknown", "anonymous"])
def test_an_endpoint_the_client_may_not_name_is_refused(case, api_user, top_garment, sent, django_user_model):
    user, client = api_user
    other = django_user_model.objects.create_user("someone-else")
    endpoint("https://hooks.example.com/a", name="theirs", user=other)
    endpoint("https://hooks.example.com/b", name="asleep", user=user, is_active=False)
    name = {"foreign": "theirs", "inactive": "asleep", "unknown": "nope", "anonymous": "theirs"}[case]
    if case == "anonymous":
        client = APIClient()
    response = create_via_api(client, top_garment.product, webhook=name, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_webhook" and error["field"] == "webhook"
    assert not TryOn.objects.exists() and not TryOnWebhook.objects.exists()


def test_the_refusal_speaks_chinese(api_user, top_garment, sent):
    _, client = api_user
    response = client.post(
        "/tryon/api/tryons/",
        {
            "product": top_garment.product.pk,
            "webhook": "nope",
            "person_photo": "00000000-0000-0000-0000-000000000000",
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "您的账户下没有该名称的有效 Webhook 端点。"


# -- outbound safety ---------------------------------------------------------------------------------
FORBIDDEN = [
    ("http://127.0.0.1:{port}/", "loopback"),
    ("http://127.8.9.10:{port}/", "loopback"),
    ("http://[::1]:{port}/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://172.31.255.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fd12:3456::1]/", "private"),  # IPv6 unique local (ULA)
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # the cloud metadata service
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:127.0.0.1]:{port}/", "IPv4-mapped loopback"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped private"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped link-local"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "not globally routable"),  # carrier-grade NAT
    ("http://localhost:{port}/", "loopback"),  # a name that resolves to loopback
]


@pytest.mark.parametrize(("template", "reason"), FORBIDDEN)
def test_internal_addresses_are_refused(template, reason, receiver, sent):
    hook = receiver("ok")
    url = template.format(port=hook.port)
    with override_settings(TRYON={**BASE, "WEBHOOK_ALLOW_PRIVATE": False}, DEBUG=True):
        with pytest.raises(ValidationError) as refused:
            webhooks.validate_url(url)
        assert reason in str(refused.value)
        # saved around the validation (or before the rules changed): refused again at send time
        target = endpoint(url)
        webhooks.enqueue(finished_job(), "tryon.succeeded")
        deliver(target)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("Refused:") and reason in attempt.error
    assert hook.records() == []  # nothing reached the receiver listening on 127.0.0.1


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    import ipaddress

    assert outbound.forbidden_reason(ipaddress.ip_address(address)) is None


def test_a_name_with_one_internal_address_among_public_ones_is_refused():
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
    ]
    with (
        mock.patch("socket.getaddrinfo", return_value=answers),
        pytest.raises(outbound.UnsafeURLError, match=r"10\.0\.0\.7"),
    ):
        outbound.resolve(urlsplit("https://mixed.example.com/"), allow_private=False)


def test_the_request_goes_to_the_checked_address_with_the_urls_host(receiver, sent):
    """No DNS-rebinding gap: the host is resolved once, and the connection goes to that address."""
    hook = receiver("ok")
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake_dns(host, *args, **kwargs):
        lookups.append(host)
        if host == "hooks.shop.example":  # first answer checked; a second lookup would get another address
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", hook.port))]
        return real(host, *args, **kwargs)

    with override_settings(TRYON=LOCAL), mock.patch("socket.getaddrinfo", side_effect=fake_dns):
        target = endpoint(f"http://hooks.shop.example:{hook.port}/in")
        webhooks.enqueue(finished_job(), "tryon.succeeded")
        deliver(target)
    [got] = hook.records()
    assert got["headers"]["Host"] == f"hooks.shop.example:{hook.port}" and got["verified"]
    assert lookups.count("hooks.shop.example") == 1


@pytest.mark.parametrize(
    ("url", "settings", "message"),
    [
        ("ftp://hooks.example.com/", {}, "https://"),
        ("http://93.184.216.34/", {}, "must use https://"),
        ("https://user:pw@93.184.216.34/", {}, "user name or password"),
        ("https://[::1/", {}, "not valid"),
    ],
)
def test_url_rules(url, settings, message):
    with override_settings(TRYON={**BASE, **settings}), pytest.raises(ValidationError, match=message):
        webhooks.validate_url(url)


def test_http_and_private_addresses_with_the_allow_setting_or_debug():
    with override_settings(TRYON={**BASE, "WEBHOOK_ALLOW_PRIVATE": True}):
        webhooks.validate_url("http://127.0.0.1:9/")
    with override_settings(TRYON=BASE, DEBUG=True):
        webhooks.validate_url("http://93.184.216.34/")  # http in development, a public address still needed
        with pytest.raises(ValidationError):
            webhooks.validate_url("http://127.0.0.1:9/")


def test_the_admin_form_says_why_a_url_is_refused(admin_client):
    response = admin_client.post(
        "/admin/django_tryon/webhookendpoint/add/",
        {
            "name": "metadata",
            "url": "https://169.254.169.254/",
            "secret": "whsec_x",
            "events": ["tryon.failed"],
        },
    )
    assert response.status_code == 200
    assert b"link-local address: refused." in response.content
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_creates_an_endpoint_with_a_generated_secret(admin_client):
    page = admin_client.get("/admin/django_tryon/webhookendpoint/add/")
    assert page.status_code == 200 and b"whsec_" in page.content  # the generated secret is shown
    with override_settings(TRYON={**BASE, "WEBHOOK_ALLOW_PRIVATE": True}):
        response = admin_client.post(
            "/admin/django_tryon/webhookendpoint/add/",
            {
                "name": "crm",
                "url": "http://127.0.0.1:9/hook",
                "secret": WebhookEndpoint._meta.get_field("secret").default(),
                "events": ["tryon.succeeded", "tryon.canceled"],
                "send_all": "on",
                "is_active": "on",
            },
        )
    assert response.status_code == 302, response.content[-3000:]
    created = WebhookEndpoint.objects.get(name="crm")
    assert created.events == ["tryon.succeeded", "tryon.canceled"] and created.secret.startswith("whsec_")


def test_refusals_are_translated():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        webhooks.validate_url("https://[::ffff:169.254.169.254]/")
    assert "IPv4 映射的链路本地地址" in str(refused.value)


def make_certificates(directory: Path, name: str) -> tuple[str, str, str]:
    """A CA, and a server certificate for ``name`` signed by it: (ca file, certificate file, key file)."""
    cryptography = pytest.importorskip("cryptography")  # installed with moto (the test group)
    del cryptography
    from datetime import datetime
    from datetime import timezone as tz

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def build(subject: str, key, issuer_name, issuer_key, ca: bool):
        now = datetime.now(tz.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(issuer_key or key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("tests CA", ca_key, None, None, True)
    cert = build(name, key, ca.subject, ca_key, False)
    paths = [directory / "ca.pem", directory / "cert.pem", directory / "key.pem"]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


@pytest.mark.parametrize("certificate_for", ["hooks.shop.example", "someone.else.example"])
def test_https_goes_to_the_checked_address_with_the_urls_host_in_tls(
    certificate_for, receiver, sent, tmp_path
):
    """TLS names the URL's host (SNI) and checks the certificate against it, not against the address."""
    ca, cert, key = make_certificates(tmp_path, certificate_for)
    hook = receiver("ok", tls=(cert, key))
    real = socket.getaddrinfo

    def fake_dns(host, *args, **kwargs):
        if host == "hooks.shop.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", hook.port))]
        return real(host, *args, **kwargs)

    with (
        override_settings(TRYON=LOCAL),
        mock.patch("socket.getaddrinfo", side_effect=fake_dns),
        mock.patch("django_tryon.outbound.ca_certs", return_value=ca),
    ):
        target = endpoint(f"https://hooks.shop.example:{hook.port}/in")
        webhooks.enqueue(finished_job(), "tryon.succeeded")
        deliver(target)
    attempt = WebhookAttempt.objects.get()
    if certificate_for == "hooks.shop.example":
        [got] = hook.records()
        assert attempt.status_code == 204 and got["verified"]
        assert (
            got["sni"] == "hooks.shop.example" and got["headers"]["Host"] == f"hooks.shop.example:{hook.port}"
        )
    else:  # a certificate for another name is refused, whatever address answered
        assert attempt.status_code is None and "SSLError" in attempt.error
        assert "'hooks.shop.example' doesn't match" in attempt.error
        assert hook.records() == []


def test_the_allow_setting_in_production_is_warned_about():
    from django_tryon.checks import check_settings

    with override_settings(TRYON={**BASE, "WEBHOOK_ALLOW_PRIVATE": True}, DEBUG=False):
        assert "django_tryon.W009" in [m.id for m in check_settings()]
    with override_settings(TRYON={**BASE, "WEBHOOK_ALLOW_PRIVATE": True}, DEBUG=True):
        assert "django_tryon.W009" not in [m.id for m in check_settings()]
    with override_settings(TRYON=BASE, DEBUG=False):
        assert "django_tryon.W009" not in [m.id for m in check_settings()]
