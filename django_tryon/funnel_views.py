"""The funnel endpoint: ``tryon-funnel.js`` reports the steps only the browser sees (docs/analytics.rst).

``POST /tryon/funnel/`` (form-encoded, as ``navigator.sendBeacon`` sends it) with ``csrfmiddlewaretoken``
and ``events``: a JSON list of ``{"step": "shown", "product": "12"}`` (steps: ``shown``, ``opened``,
``download``, ``share``, ``add-to-cart``, and ``result`` with ``"job": "<id>"`` for a succeeded try-on
of this browser). Abuse limits: Django's CSRF check, the per-address throttle scope ``"funnel"``, at most
``FUNNEL_MAX_EVENTS`` events per request and ``FUNNEL_DAILY_EVENTS_PER_ADDRESS`` counted per address and
day, each step counted once per session, product and day, and the after-try-on steps only for a product
this session really tried on (its own succeeded job). A visitor without a session gets none from here.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from . import funnel
from .api.throttling import client_address, throttle_wait
from .conf import tryon_settings
from .messages import active_language, message_for
from .models import TryOn, get_product_model
from .owners import request_owner


def _error(code: str, status: int, message: str = "") -> JsonResponse:
    text = message if message and active_language() == "en" else message_for(code, active_language())
    response = JsonResponse({"error": {"code": code, "message": text, "field": "events"}}, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _events(request: HttpRequest) -> Any:
    if request.content_type == "application/json":
        return json.loads(request.body or b"null")
    return json.loads(request.POST.get("events") or "null")


def _clean(events: Any) -> list[tuple[str, str, str]]:
    """``(step, product, job)`` of each event; raises ValueError for anything malformed."""
    if not isinstance(events, list) or not events:
        raise ValueError("events must be a non-empty list")
    if len(events) > int(tryon_settings.FUNNEL_MAX_EVENTS):
        raise ValueError(f"at most {tryon_settings.FUNNEL_MAX_EVENTS} events per request")
    cleaned = []
    for event in events:
        if not isinstance(event, dict):
            raise ValueError("each event is an object")
        step, product, job = event.get("step"), event.get("product"), event.get("job") or ""
        if step != funnel.RESULT and step not in funnel.CLIENT_STEPS:
            raise ValueError(f"unknown step {step!r}")
        if not isinstance(product, (str, int)) or isinstance(product, bool) or not str(product).strip():
            raise ValueError("each event names a product")
        if step == funnel.RESULT:
            uuid.UUID(str(job))  # ValueError when malformed
        cleaned.append((step, str(product).strip(), str(job)))
    return cleaned


def _existing_products(ids: set[str]) -> dict[str, Any]:
    """The given ids that name a product, each mapped to its pk (one query)."""
    field = get_product_model()._meta.pk
    valid = {}
    for raw in ids:
        try:
            valid[raw] = field.to_python(raw)
        except Exception:  # noqa: BLE001 - a malformed id is no product
            continue
    found = set(
        get_product_model()._default_manager.filter(pk__in=list(valid.values())).values_list("pk", flat=True)
    )
    return {raw: pk for raw, pk in valid.items() if pk in found}


def _address_allows(request: HttpRequest, n: int) -> int:
    """How many of ``n`` events this address may still have counted today."""
    cap = tryon_settings.FUNNEL_DAILY_EVENTS_PER_ADDRESS
    if cap is None or n <= 0:
        return n
    key = f"django_tryon:funnel:{funnel.today().isoformat()}:{client_address(request)}"
    cache.add(key, 0, 24 * 3600)
    try:
        total = cache.incr(key, n)
    except ValueError:  # expired between add and incr
        cache.set(key, n, 24 * 3600)
        total = n
    return max(0, min(n, int(cap) - (total - n)))


@require_POST
def funnel_events(request: HttpRequest) -> JsonResponse:
    """Count a batch of the browser's funnel events; answers ``{"recorded": n, "ignored": m}``."""
    if not funnel.enabled():
        return _error("not_found", 404)
    wait = throttle_wait(request, "funnel")
    if wait is not None:
        response = _error("rate_limited", 429)
        response["Retry-After"] = str(math.ceil(wait))
        return response
    try:
        events = _clean(_events(request))
    except ValueError as err:  # json.JSONDecodeError is a ValueError
        return _error("InvalidParameter", 400, str(err))
    products = _existing_products({product for _, product, _ in events})
    session = request.session
    new = {  # the batch's steps, in order, once each
        (funnel.CLIENT_STEPS[s], products[p]): None
        for s, p, _ in events
        if s in funnel.CLIENT_STEPS and p in products
    }
    if not session.session_key:
        # No session, and none is made here: it could race the widget's first request (which creates the
        # shopper's session) and replace its cookie. The browser's sessionStorage keeps such a visitor to
        # once per tab; the address cap bounds the rest. Nothing after a try-on without a session.
        fresh = [(step, pk) for step, pk in new if step not in funnel.AFTER_TRYON]
        allowed = _address_allows(request, len(fresh))
        for step, pk in fresh[:allowed]:
            funnel.record(pk, step)
        recorded = min(allowed, len(fresh))
    else:
        results = [(products[p], job) for step, p, job in events if step == funnel.RESULT and p in products]
        if results:  # the browser saw a result: believe it only for this shopper's own succeeded job
            jobs = request_owner(request, create_session=False).scope(
                TryOn.objects.filter(
                    public_id__in=[job for _, job in results[:10]], status=TryOn.Status.SUCCEEDED
                )
            )
            for product_id in set(jobs.values_list("product_id", flat=True)) & {pk for pk, _ in results}:
                funnel.mark_tried_on(session, product_id)
        fresh = [(step, pk) for step, pk in new if funnel.countable(session, pk, step)]
        allowed = _address_allows(request, len(fresh))
        recorded = sum(funnel.count_once(session, pk, step) for step, pk in fresh[:allowed])
    response = JsonResponse({"recorded": recorded, "ignored": len(events) - recorded})
    response["Cache-Control"] = "private, no-store"
    return response
