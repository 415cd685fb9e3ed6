"""Querysets for try-on jobs: the pipeline's queries and guarded status transitions."""

from __future__ import annotations

from typing import Any, Iterable

from django.db import models
from django.utils import timezone


class TryOnQuerySet(models.QuerySet):
    def queued(self) -> "TryOnQuerySet":
        return self.filter(status="queued")

    def in_flight(self) -> "TryOnQuerySet":
        """Jobs the provider is (or may be) working on: they count against its concurrency."""
        return self.filter(status__in=("submitting", "submitted", "running"))

    def unfinished(self) -> "TryOnQuerySet":
        return self.exclude(status__in=("succeeded", "failed", "canceled"))

    def stale(self, older_than: Any) -> "TryOnQuerySet":
        """Unfinished jobs not touched since ``older_than`` (a datetime): candidates for the sweep."""
        return self.unfinished().filter(updated_at__lt=older_than)

    def transition(self, pk: int, sources: Iterable[str], target: str, **fields: Any) -> bool:
        """Move job ``pk`` from one of ``sources`` to ``target`` in one guarded UPDATE.

        Returns False (and changes nothing) when the job is not in a source state, so a duplicate
        task delivery or a race with another worker is harmless.
        """
        from .models import TERMINAL_STATUSES, TRANSITIONS

        sources = tuple(sources)
        for source in sources:
            if target not in TRANSITIONS.get(source, ()):
                raise ValueError(f"transition {source} → {target} is not allowed")
        now = timezone.now()
        fields.setdefault("updated_at", now)
        if target in TERMINAL_STATUSES:
            fields.setdefault("finished_at", now)
        return self.filter(pk=pk, status__in=sources).update(status=target, **fields) == 1
