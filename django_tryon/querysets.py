"""Querysets for try-on jobs: the pipeline's queries and guarded status transitions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.utils import timezone


class TryOnQuerySet(models.QuerySet):
    def active(self) -> TryOnQuerySet:
        """Jobs holding one of the provider's slots (admitted, and the provider has not ended them)."""
        from .models import ACTIVE

        return self.filter(status__in=ACTIVE, remote_ended_at__isnull=True)

    def unfinished(self) -> TryOnQuerySet:
        from .models import UNFINISHED

        return self.filter(status__in=UNFINISHED)

    def transition(self, pk: int, sources: Iterable[str], target: str, **fields: Any) -> bool:
        """Move job ``pk`` from one of ``sources`` to ``target`` in one guarded UPDATE.

        Returns False (and changes nothing) when the job is not in a source state, so a duplicate
        task delivery or a race with another worker is harmless.
        """
        from .models import TERMINAL, TRANSITIONS

        sources = tuple(sources)
        for source in sources:
            if target not in TRANSITIONS.get(source, ()):
                raise ValueError(f"transition {source} → {target} is not allowed")
        now = timezone.now()
        fields.setdefault("updated_at", now)
        if target in TERMINAL:
            fields.setdefault("finished_at", now)
        return self.filter(pk=pk, status__in=sources).update(status=target, **fields) == 1
