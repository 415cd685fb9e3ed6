"""Pluggable try-on backends, loaded by dotted path from ``TRYON["BACKEND"]``, and the pool of provider keys."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..conf import tryon_settings
from ..exceptions import TryOnConfigurationError
from .base import BaseTryOnBackend

DEFAULT_KEY = "default"
#: Keys of a ``KEY_POOL`` entry that are limits or names, not backend options.
SLOT_FIELDS = ("name", "max_concurrency", "submit_rate")

_cache: dict[tuple[Any, ...], BaseTryOnBackend] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KeySlot:
    """One provider key (account or region) of the pool: its name, its option overrides and its limits."""

    name: str
    options: dict[str, Any]
    max_concurrency: int | None = None  # None: the backend's capability for the model
    submit_rate: float | None = None

    def limits(self, backend: BaseTryOnBackend) -> tuple[int, float]:
        """(tasks in flight, submits per second) allowed on this key for ``backend``'s model."""
        caps = backend.capabilities
        concurrency = caps.max_concurrency if self.max_concurrency is None else self.max_concurrency
        rate = caps.submit_rate if self.submit_rate is None else self.submit_rate
        return int(concurrency), float(rate)


def key_pool() -> list[KeySlot]:
    """The keys jobs are spread over: ``TRYON["KEY_POOL"]``, or one key from ``TRYON["OPTIONS"]``."""
    entries = tryon_settings.KEY_POOL or []
    if not entries:
        return [KeySlot(DEFAULT_KEY, {})]
    slots = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise TryOnConfigurationError("Each TRYON['KEY_POOL'] entry must be a dict of options (api_key, ...).")
        name = str(entry.get("name") or f"key{index}")
        options = {k: v for k, v in entry.items() if k not in SLOT_FIELDS}
        slots.append(KeySlot(name, options, entry.get("max_concurrency"), entry.get("submit_rate")))
    if len({slot.name for slot in slots}) != len(slots):
        raise TryOnConfigurationError("The names of TRYON['KEY_POOL'] entries must differ.")
    return slots


def key_slot(name: str) -> KeySlot:
    """The pool entry called ``name`` ("" for jobs admitted before pools existed: the first key)."""
    slots = key_pool()
    for slot in slots:
        if slot.name == name:
            return slot
    if not name:
        return slots[0]
    raise TryOnConfigurationError(f"No key named {name!r} in TRYON['KEY_POOL'] (was it removed?).")


def get_backend(*, model: str | None = None, key: str | None = None) -> BaseTryOnBackend:
    """The backend from ``TRYON["BACKEND"]`` and ``TRYON["OPTIONS"]``, on ``model`` and pool key ``key``.

    Instances are shared per process (one HTTP session each, so connections are reused) until the
    settings change.
    """
    cache_key = (tryon_settings.generation, model or "", key or "")
    backend = _cache.get(cache_key)
    if backend is not None:
        return backend
    overrides = key_slot(key).options if key is not None else {}
    options = {**tryon_settings.OPTIONS, **overrides, **({"model": model} if model else {})}
    backend = tryon_settings.BACKEND(**options)
    with _cache_lock:
        if len(_cache) > 64 or any(k[0] != tryon_settings.generation for k in _cache):
            _cache.clear()
        _cache[cache_key] = backend
    return backend
