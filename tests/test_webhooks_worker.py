"""End to end: a REST client names its webhook, a real Celery worker on Redis runs the try-on through the
sandbox process, and a receiver process gets the signed event (after one failed attempt, retried by the
worker), whose signed result URL serves the picture."""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django_tryon.models import TryOn, WebhookDelivery, WebhookEndpoint

from .conftest import make_garment
from .test_e2e_sandbox import KEY, sandbox  # noqa: F401 (fixture)
from .test_engine import shared
from .test_webhooks import Receiver
from .test_worker import celery_app, redis_broker, worker_process  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_end_to_end"


def test_a_try_on_ends_in_a_signed_webhook(
    celery_app,  # noqa: F811 - a pytest fixture imported from another test module
    live_server,
    sandbox,  # noqa: F811
    product,
    tmp_path,
    django_user_model,
):
    requests.post(f"{sandbox}/_sandbox/reset", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    receiver = Receiver(tmp_path, SECRET, "fail:1")
    user = django_user_model.objects.create_user("headless-shop")
    WebhookEndpoint.objects.create(name="app-backend", url=receiver.url, secret=SECRET, user=user)
    WebhookEndpoint.objects.create(name="other-client", url=receiver.url + "&other=1", secret=SECRET)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    tryon = {
        "OPTIONS": {"api_key": KEY, "base_url": f"{sandbox}/api/v1", "timeout": [3, 20]},
        "INPUT_URLS": "signed",
        "PUBLIC_BASE_URL": live_server.url,
        "FIRST_POLL_DELAY": 0.3,
        "POLL_INTERVAL": 0.3,
        "WEBHOOK_ALLOW_PRIVATE": True,  # the receiver listens on 127.0.0.1
        "WEBHOOK_RETRY_DELAY": 1,
    }
    try:
        with worker_process(celery_app, tryon, pool="threads", concurrency=2) as worker:
            make_garment(product, "top")
            photo = shared("person", "fitdit_model_1.jpg").read_bytes()
            response = client.post(
                "/tryon/api/tryons/",
                {
                    "person_image": SimpleUploadedFile("me.jpg", photo, content_type="image/jpeg"),
                    "consent": "true",
                    "product": product.pk,
                    "webhook": "app-backend",
                },
                format="multipart",
            )
            assert response.status_code == 202, response.json()
            job_id = response.json()["id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert worker.poll() is None, "the worker process died"
                if WebhookDelivery.objects.filter(state="delivered").exists():
                    break
                time.sleep(0.3)
    finally:
        receiver.stop()
    job = TryOn.objects.get(public_id=job_id)
    assert job.status == "succeeded", (job.error_code, job.error_message)
    delivery = WebhookDelivery.objects.get()  # only the endpoint the client named (not send_all)
    assert delivery.endpoint.name == "app-backend" and delivery.state == "delivered"
    assert [a.status_code for a in delivery.attempt_log.order_by("number")] == [500, 204]
    records = receiver.records()
    assert len(records) == 2 and all(r["verified"] for r in records)
    event = json.loads(records[-1]["body"])
    assert event["type"] == "tryon.succeeded" and event["data"]["id"] == job_id
    assert event["data"]["status"] == "succeeded"
    assert records[-1]["headers"]["X-Tryon-Event"] == "tryon.succeeded"
    picture = requests.get(event["data"]["result_url"], timeout=10)  # the signed result URL works
    assert picture.status_code == 200
    assert Image.open(io.BytesIO(picture.content)).size == (768, 1024)
    assert KEY not in json.dumps(records)
