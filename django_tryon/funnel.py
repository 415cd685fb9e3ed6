"""Funnel analytics: daily counts per product and step, recorded without slowing a page.

Steps (``STEPS``) are counted where they are known: the server counts a created try-on ("photo
accepted"), a succeeded one and a purchase after a try-on (:func:`record_purchase`); the widget's small
script ``tryon-funnel.js`` reports what only the browser sees (the button shown, the dialog opened, the
result downloaded or shared, added to cart) to :func:`django_tryon.funnel_views.funnel_events`.

Counts go to a buffer of this process and are written after the response (``request_finished``) with
one atomic upsert per batch (``INSERT … ON CONFLICT DO UPDATE SET count = count + n`` on PostgreSQL and
SQLite; update-then-insert elsewhere). Outside a request (a Celery worker, a command) they are written
at once. ``FunnelDay`` holds aggregates only: the per-session facts (what this browser already reported
today, which products it tried on) live in the session, never in the analytics table.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from datetime import date
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone

from .conf import tryon_settings
from .models import FunnelDay, TryOn
from .owners import request_owner
from .signals import tryon_purchased, tryon_succeeded

logger = logging.getLogger(__name__)

SHOWN = "shown"
OPENED = "opened"
PHOTO_ACCEPTED = "photo_accepted"
SUCCEEDED = "succeeded"
KEPT = "downloaded_or_shared"
ADDED_TO_CART = "added_to_cart"
PURCHASED = "purchased"
#: The funnel, in order.
STEPS = (SHOWN, OPENED, PHOTO_ACCEPTED, SUCCEEDED, KEPT, ADDED_TO_CART, PURCHASED)
#: What the browser may report (the widget's event names) and the step each one counts.
CLIENT_STEPS = {
    "shown": SHOWN,
    "opened": OPENED,
    "download": KEPT,
    "share": KEPT,
    "add-to-cart": ADDED_TO_CART,
}
#: Steps that count only for a product this browser session has a succeeded try-on of.
AFTER_TRYON = frozenset({KEPT, ADDED_TO_CART, PURCHASED})
#: The browser's notice "this try-on succeeded here" (checked against the job; counts nothing itself).
RESULT = "result"

#: The session key of the funnel's per-browser facts (never copied into ``FunnelDay``).
SESSION_KEY = "django_tryon_funnel"
MAX_SEEN = 500  # steps remembered per session and day (beyond: not counted)
MAX_TRIED = 200  # products remembered as tried on per session

_lock = threading.Lock()
_pending: Counter[tuple[date, Any, str]] = Counter()
_local = threading.local()


def enabled() -> bool:
    """Whether the funnel is counted (``TRYON["FUNNEL"]``)."""
    return bool(tryon_settings.FUNNEL)


def today() -> date:
    """The day counts go to, in the site's time zone (as the daily limits)."""
    return timezone.localdate()


# -- recording --------------------------------------------------------------------------------------
def record(product_id: Any, step: str, count: int = 1, day: date | None = None) -> None:
    """Count ``count`` × ``step`` for a product today: buffered during a request, written after it.

    Raises:
        ValueError: ``step`` is not one of ``STEPS``.
    """
    if step not in STEPS:
        raise ValueError(f"Unknown funnel step {step!r}; use one of {', '.join(STEPS)}.")
    if not enabled() or product_id is None or count <= 0:
        return
    with _lock:
        _pending[(day or today(), product_id, step)] += int(count)
    if getattr(_local, "requests", 0) <= 0 and not _in_event_loop():
        flush()


def _in_event_loop() -> bool:
    """Django's own rule for the ORM (``async_unsafe``): not from a running event loop, unless allowed."""
    if os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True  # an async view: the database waits for request_finished


def pending() -> dict[tuple[date, Any, str], int]:
    """The counts not written yet (for tests and the benchmark)."""
    with _lock:
        return dict(_pending)


def flush() -> int:
    """Write the buffered counts (one upsert); returns how many rows were touched.

    A database error puts the counts back for the next flush and is logged, never raised: analytics
    must not break the page or the task that recorded them.
    """
    with _lock:
        batch = dict(_pending)
        _pending.clear()
    if not batch:
        return 0
    try:
        upsert(batch)
    except DatabaseError:
        logger.exception("funnel counts could not be written; kept for the next flush")
        with _lock:
            _pending.update(batch)
        return 0
    return len(batch)


def upsert(batch: dict[tuple[date, Any, str], int]) -> None:
    """Add each ``(day, product_id, step) → n`` to its row atomically, creating rows as needed.

    Safe with concurrent writers (other processes and hosts): one ``INSERT … ON CONFLICT DO UPDATE`` on
    PostgreSQL and SQLite, keys in a fixed order; elsewhere an ``F()`` update and an insert that retries
    as an update when another writer created the row first.
    """
    keys = sorted(batch, key=lambda k: (k[0], str(k[1]), k[2]))  # one lock order for every writer
    if connection.vendor in ("postgresql", "sqlite"):
        try:
            with transaction.atomic():
                _insert_on_conflict(keys, batch)
            return
        except IntegrityError:  # a product deleted meanwhile: write the others one by one
            logger.info("funnel batch refused; writing its rows one by one")
    for key in keys:
        _add_one(key, batch[key])


def _insert_on_conflict(keys: list[tuple[date, Any, str]], batch: dict[tuple[date, Any, str], int]) -> None:
    meta = FunnelDay._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = (FunnelDay.date.field, FunnelDay.product.field, FunnelDay.step.field, FunnelDay.count.field)
    columns = [quote(str(f.column)) for f in fields]
    date_col, product_col, step_col, count_col = columns
    product_field = FunnelDay.product.field.target_field
    params: list[Any] = []
    for day, product_id, step in keys:
        params += [
            connection.ops.adapt_datefield_value(day),
            product_field.get_db_prep_value(product_field.to_python(product_id), connection),
            step,
            batch[(day, product_id, step)],
        ]
    values = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "  # quoted names, values as parameters
        f"ON CONFLICT ({date_col}, {product_col}, {step_col}) "
        f"DO UPDATE SET {count_col} = {table}.{count_col} + excluded.{count_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _add_one(key: tuple[date, Any, str], n: int) -> None:
    day, product_id, step = key
    rows = FunnelDay.objects.filter(date=day, product_id=product_id, step=step)
    try:
        with transaction.atomic():
            if rows.update(count=F("count") + n):
                return
            with transaction.atomic():
                FunnelDay.objects.create(date=day, product_id=product_id, step=step, count=n)
            return
    except IntegrityError:
        pass  # another writer created the row first (or the product is gone)
    try:
        with transaction.atomic():
            if not rows.update(count=F("count") + n):
                logger.info("funnel count for product %s dropped: no such product", product_id)
    except IntegrityError:
        logger.info("funnel count for product %s dropped", product_id)


# -- when counts are written: after the response --------------------------------------------------
def _request_started(**kwargs: Any) -> None:
    _local.requests = getattr(_local, "requests", 0) + 1


def _request_finished(**kwargs: Any) -> None:
    _local.requests = max(0, getattr(_local, "requests", 0) - 1)
    if _pending:
        flush()


# -- server-side steps ------------------------------------------------------------------------------
def _is_shoppers(job: TryOn) -> bool:
    """A shopper's job (not the merchant's own admin or command runs) for a product."""
    return job.product_id is not None and (job.user_id is not None or bool(job.owner_key))


def _tryon_saved(sender: Any, instance: TryOn, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw and _is_shoppers(instance):
        product_id = instance.product_id
        transaction.on_commit(lambda: record(product_id, PHOTO_ACCEPTED))


def _tryon_succeeded(sender: Any, tryon: TryOn, **kwargs: Any) -> None:
    if _is_shoppers(tryon):
        record(tryon.product_id, SUCCEEDED)


def connect_receivers() -> None:
    """Connect the funnel's receivers (called from ``TryOnConfig.ready()``)."""
    request_started.connect(_request_started, dispatch_uid="django_tryon.funnel.started")
    request_finished.connect(_request_finished, dispatch_uid="django_tryon.funnel.finished")
    # Django closes the request's database connection in its own receiver (connected when django.db is
    # imported, so before this one): move it after the flush, which then uses the request's connection
    # instead of opening one more.
    if request_finished.disconnect(close_old_connections):
        request_finished.connect(close_old_connections)
    post_save.connect(_tryon_saved, sender=TryOn, dispatch_uid="django_tryon.funnel.created")
    tryon_succeeded.connect(_tryon_succeeded, dispatch_uid="django_tryon.funnel.succeeded")


# -- the browser session's facts ----------------------------------------------------------------------
def _state(session: SessionBase) -> dict[str, Any]:
    state = session.get(SESSION_KEY)
    if not isinstance(state, dict):
        state = {}
    day = today().isoformat()
    if state.get("day") != day:
        state = {"day": day, "seen": [], "tried": list(state.get("tried") or [])}
    return state


def _save_state(session: SessionBase, state: dict[str, Any]) -> None:
    session[SESSION_KEY] = state


def tried_on(session: SessionBase, product_id: Any) -> bool:
    """Whether this browser session had a succeeded try-on of the product (as the session remembers)."""
    return str(product_id) in (_state(session).get("tried") or [])


def mark_tried_on(session: SessionBase, product_id: Any) -> None:
    """Remember in the session that it had a succeeded try-on of the product."""
    state = _state(session)
    tried = [p for p in state["tried"] if p != str(product_id)] + [str(product_id)]
    state["tried"] = tried[-MAX_TRIED:]
    _save_state(session, state)


def countable(session: SessionBase, product_id: Any, step: str) -> bool:
    """Whether :func:`count_once` would count ``step`` for the product now (changes nothing)."""
    state = _state(session)
    if f"{step}:{product_id}" in state["seen"] or len(state["seen"]) >= MAX_SEEN:
        return False
    return step not in AFTER_TRYON or str(product_id) in state["tried"]


def count_once(session: SessionBase, product_id: Any, step: str) -> bool:
    """Count ``step`` for the product unless this session already did today; True when counted.

    ``AFTER_TRYON`` steps count only after a succeeded try-on of that product in this session.
    """
    if not countable(session, product_id, step):
        return False
    state = _state(session)
    state["seen"].append(f"{step}:{product_id}")
    _save_state(session, state)
    record(product_id, step)
    return True


def had_tryon(request_or_session: Any, product_id: Any) -> bool:
    """Whether the shopper behind a request (or a session) had a succeeded try-on of the product.

    The session's memory first (it outlives a deleted try-on); with a request, the shopper's own
    succeeded jobs too (a try-on made without the widget's script).
    """
    session = getattr(request_or_session, "session", request_or_session)
    if isinstance(session, SessionBase) and tried_on(session, product_id):
        return True
    if isinstance(request_or_session, SessionBase):
        return False
    owner = request_owner(request_or_session, create_session=False)
    mine = owner.scope(TryOn.objects.filter(product_id=product_id, status=TryOn.Status.SUCCEEDED))
    return bool(mine.exists())


def record_purchase(request_or_session: Any, product: Any, quantity: int = 1) -> bool:
    """Count a purchase of ``product`` when this shopper had a succeeded try-on of it; True when counted.

    Call it from the shop's order code, once per order line (``quantity`` units). Sends
    ``tryon_purchased`` when the purchase is attributed to a try-on.
    """
    product_id = getattr(product, "pk", product)
    if not enabled() or quantity <= 0 or not had_tryon(request_or_session, product_id):
        return False
    record(product_id, PURCHASED, quantity)
    tryon_purchased.send_robust(sender=FunnelDay, product=product, quantity=quantity)
    return True


def record_add_to_cart(request_or_session: Any, product: Any) -> bool:
    """Count "added to cart after a try-on" from the shop's own cart code (once per session, product and day).

    The widget's ``tryon:add-to-cart`` event counts the same step through the endpoint; both together still
    count once.
    """
    product_id = getattr(product, "pk", product)
    session = getattr(request_or_session, "session", request_or_session)
    if not enabled() or not isinstance(session, SessionBase):
        return False
    if not tried_on(session, product_id) and had_tryon(request_or_session, product_id):
        mark_tried_on(session, product_id)
    return count_once(session, product_id, ADDED_TO_CART)
