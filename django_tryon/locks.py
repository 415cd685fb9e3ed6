"""Named database locks: serialize a short critical section across processes and hosts.

The database is the source of truth, so the lock is a row: ``hold(name)`` updates it, which takes a row
lock on PostgreSQL and MySQL and the single writer lock on SQLite, until the transaction ends.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import TryOnLock


def hold(name: str, *, using: str | None = None) -> None:
    """Take the lock ``name`` until the current transaction commits or rolls back.

    Call it first in a ``transaction.atomic()`` block, before the reads it protects.
    """
    if not transaction.get_connection(using).in_atomic_block:
        raise RuntimeError("locks.hold() must be called inside transaction.atomic()")
    rows = TryOnLock.objects.using(using) if using else TryOnLock.objects
    if rows.filter(name=name).update(held_at=timezone.now()):
        return
    rows.get_or_create(name=name)
    rows.filter(name=name).update(held_at=timezone.now())
