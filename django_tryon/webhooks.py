"""Webhooks: signed try-on events for the shop's endpoints, retried for a day, one at a time per endpoint and event.

A finished job (signals ``tryon_succeeded``, ``tryon_failed``, ``tryon_canceled``) becomes one
:class:`~django_tryon.models.WebhookDelivery` row per endpoint that wants it: every active ``send_all``
endpoint subscribed to the event, plus the endpoint the job's API client named. The row holds what is
next and when (``state``, ``next_attempt_at``, ``lease_until``), so a lost broker message only delays a
delivery until the tick (``django_tryon.tick_tryons``) sends it again. Deliveries of one endpoint and
event go out in creation order, one at a time: the head of that queue is claimed under a named lock.
See docs/webhooks.rst.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation

from . import __version__, locks, outbound
from .conf import tryon_settings
from .models import (
    WEBHOOK_EVENTS,
    TryOn,
    TryOnWebhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from .storage import public_signed_url

logger = logging.getLogger("django_tryon")

SUCCEEDED, FAILED, CANCELED = WEBHOOK_EVENTS
#: The headers of every delivery.
SIGNATURE_HEADER = "X-Tryon-Signature"
EVENT_HEADER = "X-Tryon-Event"
DELIVERY_HEADER = "X-Tryon-Delivery"
ATTEMPT_HEADER = "X-Tryon-Attempt"
#: At most this much of a receiver's answer is read, and this much of it kept in the attempt log.
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 500
#: A delivery's head position is held this long past the timeouts when a worker dies mid-send.
LEASE_MARGIN = 30
#: Deliveries sent by one task run before it hands the rest of the queue to a new message.
BATCH = 20

State = WebhookDelivery.State


# -- signing -----------------------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Tryon-Signature`` value: ``t=<unix time>,v1=<hex signature>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(
    body: bytes, header: str, secret: str, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """Whether ``header`` (``X-Tryon-Signature``) signs ``body`` (the raw request body) with ``secret``.

    The timestamp must be within ``tolerance`` seconds of ``now`` (replays of an old delivery are refused).
    Several ``v1=`` values are accepted (any one matching is enough).
    """
    try:
        items = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(next(value for key, value in items if key.strip() == "t"))
        signatures = [value.strip() for key, value in items if key.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


# -- endpoints ---------------------------------------------------------------------------------------
def _allow_private() -> bool:
    return bool(tryon_settings.WEBHOOK_ALLOW_PRIVATE)


def _require_https() -> bool:
    return not (settings.DEBUG or _allow_private())


def validate_url(url: str) -> None:
    """Raise ``ValidationError`` for a URL that may not receive webhooks (the model field's validator)."""
    try:
        parts = outbound.check_url(url, allow_private=_allow_private(), require_https=_require_https())
        outbound.resolve(parts, allow_private=_allow_private())
    except outbound.UnsafeURLError as err:
        raise ValidationError(str(err), code="unsafe_url") from err


def endpoint_for_client(name: str, user: Any) -> WebhookEndpoint | None:
    """The active endpoint ``name`` that ``user`` (the API client) may name in a request, or None."""
    if not name or user is None or not getattr(user, "is_authenticated", False):
        return None
    return WebhookEndpoint.objects.filter(name=name, user=user, is_active=True).first()


def attach(job: TryOn, endpoint: WebhookEndpoint) -> None:
    """Send ``job``'s events to ``endpoint`` too (the endpoint its API client named). Call it in the create's
    transaction, so that no event of the job can come before the link."""
    TryOnWebhook.objects.update_or_create(job=job, defaults={"endpoint": endpoint})


def endpoints_for(job: TryOn, event: str) -> list[WebhookEndpoint]:
    """The active endpoints that get ``job``'s ``event``: every ``send_all`` one, and the one the job named."""
    named = TryOnWebhook.objects.filter(job_id=job.pk).values_list("endpoint_id", flat=True)
    candidates = WebhookEndpoint.objects.filter(Q(send_all=True) | Q(pk__in=named), is_active=True)
    return [endpoint for endpoint in candidates.order_by("pk") if event in (endpoint.events or [])]


# -- events ------------------------------------------------------------------------------------------
def job_data(job: TryOn) -> dict[str, Any]:
    """The job as the REST API shows it to its owner, with an absolute, signed, expiring ``result_url``.

    The API's serializer is the one description of a job (imported here, late: it is the API's module).
    """
    from .api.serializers import TryOnSerializer

    with translation.override(settings.LANGUAGE_CODE):
        data = json.loads(json.dumps(TryOnSerializer(job, context={}).data, cls=DjangoJSONEncoder))
    data["result_url"] = result_url(job)
    return data


def result_url(job: TryOn) -> str | None:
    """An absolute signed URL of the job's picture under ``PUBLIC_BASE_URL``, or None without one."""
    return public_signed_url(job.result_image) if job.has_result else None


def enqueue(job: TryOn, event: str, *, now: datetime | None = None) -> list[WebhookDelivery]:
    """Create the deliveries of ``job``'s ``event`` and schedule them (after the transaction commits)."""
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}")
    endpoints = endpoints_for(job, event)
    if not endpoints:
        return []
    now = now or timezone.now()
    payload: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event,
        "created": now.isoformat().replace("+00:00", "Z"),
        "data": job_data(job),
    }
    window = timedelta(seconds=float(tryon_settings.WEBHOOK_RETRY_WINDOW))
    with transaction.atomic():
        deliveries = [
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                event_id=payload["id"],
                job=job,
                payload=payload,
                next_attempt_at=now,
                give_up_at=now + window,
            )
            for endpoint in endpoints
        ]
        for delivery in deliveries:
            _schedule(delivery.endpoint_id, event)
    return deliveries


def redeliver(delivery: WebhookDelivery, *, now: datetime | None = None) -> bool:
    """Send a delivery again (the admin's "Redeliver"), with a new retry window; False while it is being sent.

    It keeps its event id, so a receiver that stores ids sees a repeat; it goes out before the later
    deliveries of its endpoint and event.
    """
    now = now or timezone.now()
    window = timedelta(seconds=float(tryon_settings.WEBHOOK_RETRY_WINDOW))
    with transaction.atomic():
        done = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(state=State.SENDING, lease_until__gt=now)
            .update(state=State.PENDING, next_attempt_at=now, lease_until=None, give_up_at=now + window)
        )
        if done:
            _schedule(delivery.endpoint_id, delivery.event)
    delivery.refresh_from_db()
    return bool(done)


def _schedule(endpoint_pk: int, event: str, at: datetime | None = None) -> None:
    from .scheduling import schedule_webhooks

    schedule_webhooks(endpoint_pk, event, at)


# -- sending -----------------------------------------------------------------------------------------
def deliver_due(endpoint_pk: int, event: str, *, now: datetime | None = None) -> int:
    """Send the due deliveries of one endpoint and event, oldest first, one at a time; returns how many.

    What is not due yet is scheduled for its time; a queue longer than ``BATCH`` goes on in a new message.
    """
    sent = 0
    while sent < BATCH:
        delivery, wait_until = _claim_head(endpoint_pk, event, now or timezone.now())
        if delivery is None:
            if wait_until is not None:
                _schedule_now(endpoint_pk, event, wait_until)
            return sent
        _attempt(delivery)
        sent += 1
    _schedule_now(endpoint_pk, event, None)
    return sent


def _schedule_now(endpoint_pk: int, event: str, at: datetime | None) -> None:
    with transaction.atomic():  # outside any transaction: on_commit runs it at once
        _schedule(endpoint_pk, event, at)


def _claim_head(
    endpoint_pk: int, event: str, now: datetime
) -> tuple[WebhookDelivery | None, datetime | None]:
    """Take the oldest unfinished delivery of (endpoint, event) if it is due and nobody is sending it.

    Returns (the claimed delivery, None), or (None, when the head is due) when it is not due yet,
    or (None, None) when there is nothing to do or the head is in flight elsewhere.
    """
    with transaction.atomic():
        locks.hold(f"webhook:{endpoint_pk}:{event}")  # one claimer at a time; SQLite and PostgreSQL alike
        head = (
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_pk, event=event, state__in=(State.PENDING, State.SENDING)
            )
            .select_related("endpoint")
            .order_by("created_at", "pk")
            .first()
        )
        if head is None:
            return None, None
        if head.state == State.SENDING and head.lease_until is not None and head.lease_until > now:
            return None, None  # in flight: its sender schedules the next one when it is done
        if not head.endpoint.is_active:  # switched off: its queue is dropped (the admin can redeliver)
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_pk, event=event, state__in=(State.PENDING, State.SENDING)
            ).update(
                state=State.FAILED,
                next_attempt_at=None,
                lease_until=None,
                last_error="The endpoint is inactive.",
            )
            return None, None
        if head.next_attempt_at is not None and head.next_attempt_at > now:
            return None, head.next_attempt_at
        timeouts = float(tryon_settings.WEBHOOK_CONNECT_TIMEOUT) + float(tryon_settings.WEBHOOK_READ_TIMEOUT)
        claimed = WebhookDelivery.objects.filter(pk=head.pk, state=head.state, attempts=head.attempts).update(
            state=State.SENDING,
            attempts=head.attempts + 1,
            lease_until=now + timedelta(seconds=timeouts + LEASE_MARGIN),
        )
        if not claimed:
            return None, None
        head.state, head.attempts = State.SENDING, head.attempts + 1
        return head, None


def _attempt(delivery: WebhookDelivery) -> WebhookAttempt:
    """Make one HTTP attempt of a claimed delivery, log it, and move the delivery on."""
    endpoint = delivery.endpoint
    payload = dict(delivery.payload)
    if delivery.job_id is not None and payload.get("data", {}).get("result_url"):
        job = TryOn.objects.filter(pk=delivery.job_id).first()
        # a fresh signed URL for each attempt (a retry may come hours after the event); gone with the result
        payload["data"] = {**payload["data"], "result_url": result_url(job) if job else None}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"django-tryon/{__version__} (webhooks)",
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.public_id),
        ATTEMPT_HEADER: str(delivery.attempts),
        SIGNATURE_HEADER: signature_header(endpoint.secret, body),
    }
    started, clock = timezone.now(), time.monotonic()
    status: int | None = None
    error, excerpt, address = "", "", ""
    try:
        response = outbound.post(
            endpoint.url,
            body,
            headers,
            allow_private=_allow_private(),
            require_https=_require_https(),
            connect_timeout=float(tryon_settings.WEBHOOK_CONNECT_TIMEOUT),
            read_timeout=float(tryon_settings.WEBHOOK_READ_TIMEOUT),
            max_bytes=MAX_RESPONSE_BYTES,
        )
        status, address = response.status, response.address
        excerpt = response.body.decode("utf-8", "replace")[:EXCERPT_CHARS]
        if 300 <= status < 400:
            error = f"Redirect to {response.location[:200]} not followed."
    except outbound.UnsafeURLError as err:
        error = f"Refused: {err}"
    except Exception as err:  # noqa: BLE001 - urllib3/socket/ssl errors: logged on the attempt, retried
        error = f"{type(err).__name__}: {err}"
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started,
        duration=round(time.monotonic() - clock, 4),
        address=address,
        status_code=status,
        error=error[:300],
        response_excerpt=excerpt,
    )
    _after_attempt(delivery, status, error)
    return attempt


def _after_attempt(delivery: WebhookDelivery, status: int | None, error: str) -> None:
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        _finish(delivery, State.DELIVERED, status=status, delivered_at=now)
        logger.info("webhook %s %s delivered to %s", delivery.event, delivery.event_id, delivery.endpoint)
        return
    if status == 410:  # the receiver says the endpoint is gone for good: stop sending to it
        reason = f"The receiver answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC."
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(
            is_active=False, disabled_reason=reason
        )
        _finish(delivery, State.FAILED, status=status, error="410 Gone: endpoint disabled.")
        logger.warning("webhook endpoint %s answered 410 Gone: disabled", delivery.endpoint)
        return
    error = error or f"HTTP {status}"
    delay = retry_delay(delivery.attempts)
    if now + timedelta(seconds=delay) > delivery.give_up_at:
        _finish(delivery, State.FAILED, status=status, error=error)
        logger.warning("webhook %s to %s failed for good: %s", delivery.event_id, delivery.endpoint, error)
        return
    _finish(
        delivery, State.PENDING, status=status, error=error, next_attempt_at=now + timedelta(seconds=delay)
    )


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling, capped."""
    base = float(tryon_settings.WEBHOOK_RETRY_DELAY)
    return min(float(tryon_settings.WEBHOOK_RETRY_MAX_DELAY), base * 2 ** max(0, attempts - 1))


def _finish(
    delivery: WebhookDelivery,
    state: str,
    *,
    status: int | None = None,
    error: str = "",
    next_attempt_at: datetime | None = None,
    delivered_at: datetime | None = None,
) -> None:
    """Record the outcome of the claimed attempt (a redelivery asked for meanwhile is not overwritten)."""
    fields: dict[str, Any] = {
        "state": state,
        "lease_until": None,
        "last_status": status,
        "last_error": error[:300],
        "next_attempt_at": next_attempt_at,
    }
    if delivered_at is not None:
        fields["delivered_at"] = delivered_at
    WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).exclude(
        state__in=(State.DELIVERED, State.FAILED)
    ).update(**fields)


# -- the tick, and the signals -----------------------------------------------------------------------
def tick(*, now: datetime | None = None) -> int:
    """Schedule the queues whose head is overdue (a lost message, a worker that died while sending).

    Returns how many queues (endpoint and event) were scheduled.
    """
    now = now or timezone.now()
    late = now - timedelta(seconds=float(tryon_settings.TICK_GRACE))
    unfinished = (State.PENDING, State.SENDING)
    ahead = WebhookDelivery.objects.filter(  # an older unfinished delivery of the same queue
        Q(created_at__lt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")),
        endpoint_id=OuterRef("endpoint_id"),
        event=OuterRef("event"),
        state__in=unfinished,
    )
    due = (
        WebhookDelivery.objects.filter(
            Q(state=State.PENDING, next_attempt_at__lt=late) | Q(state=State.SENDING, lease_until__lt=now)
        )
        .exclude(Exists(ahead))  # only heads: a queue waiting behind its head's back-off is not due
        .values_list("endpoint_id", "event")
        .order_by()
        .distinct()[:1000]
    )
    pairs = list(due)
    for endpoint_pk, event in pairs:
        _schedule_now(endpoint_pk, event, None)
    return len(pairs)


def _receiver(event: str) -> Any:
    def receive(sender: Any, tryon: TryOn, **kwargs: Any) -> None:
        enqueue(tryon, event)

    return receive


#: The domain signal (in ``django_tryon.signals``) behind each event, and its receiver.
RECEIVERS = {
    "tryon_succeeded": _receiver(SUCCEEDED),
    "tryon_failed": _receiver(FAILED),
    "tryon_canceled": _receiver(CANCELED),
}


def connect_receivers() -> None:
    """Turn the domain signals into deliveries (called from ``TryOnConfig.ready()``)."""
    from . import signals

    for name, receiver in RECEIVERS.items():
        getattr(signals, name).connect(receiver, dispatch_uid=f"django_tryon.webhooks.{name}")


def disconnect_receivers() -> None:
    from . import signals

    for name in RECEIVERS:
        getattr(signals, name).disconnect(dispatch_uid=f"django_tryon.webhooks.{name}")
