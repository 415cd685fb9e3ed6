"""Pluggable try-on backends: the chain of routes (``TRYON["BACKENDS"]``) and each route's pool of keys.

A *route* is one entry of the failover chain: a backend class, its options, its pool of keys. With no
``BACKENDS`` the chain is one route built from ``BACKEND``, ``OPTIONS`` and ``KEY_POOL``. Backend
instances are shared per process (one HTTP session each) until the settings change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string

from ..conf import tryon_settings
from ..exceptions import TryOnConfigurationError
from .base import BaseTryOnBackend

DEFAULT_KEY = "default"
#: Keys of a ``KEY_POOL`` entry that are limits or names, not backend options.
SLOT_FIELDS = ("name", "max_concurrency", "submit_rate")
#: Keys of a ``BACKENDS`` entry.
ROUTE_FIELDS = ("NAME", "BACKEND", "OPTIONS", "KEY_POOL")

_cache: dict[tuple[Any, ...], Any] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KeySlot:
    """One provider key (account or region) of a route's pool: its name, option overrides and limits."""

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


@dataclass(frozen=True)
class Route:
    """One entry of the failover chain."""

    name: str
    backend_class: type[BaseTryOnBackend]
    options: dict[str, Any]
    keys: list[KeySlot] = field(default_factory=list)

    def key(self, name: str | None) -> KeySlot:
        """The pool entry called ``name`` ("" or None: the first key, as for jobs from before pools)."""
        for slot in self.keys:
            if slot.name == name:
                return slot
        if not name:
            return self.keys[0]
        raise TryOnConfigurationError(
            f"No key named {name!r} in the pool of route {self.name!r} (was it removed?)."
        )

    def backend(self, *, model: str | None = None, key: str | None = None) -> BaseTryOnBackend:
        """This route's backend on ``model`` and pool key ``key`` (shared per process)."""
        cache_key = ("backend", tryon_settings.generation, self.name, model or "", key or "")
        backend = _cache.get(cache_key)
        if backend is None:
            # no key named: the first of the pool (a route whose keys are only in KEY_POOL still builds)
            options = {**self.options, **self.key(key).options, **({"model": model} if model else {})}
            backend = self.backend_class(**options)
            _remember(cache_key, backend)
        return backend

    @property
    def model(self) -> str:
        """The model this route submits to (its options, else the backend's default)."""
        return str(self.options.get("model") or self.backend_class.default_options.get("model", ""))


def _remember(cache_key: tuple[Any, ...], value: Any) -> None:
    with _cache_lock:
        if len(_cache) > 256 or any(k[1] != tryon_settings.generation for k in _cache):
            _cache.clear()
        _cache[cache_key] = value


def _key_pool(entries: list[Any] | None, where: str) -> list[KeySlot]:
    if not entries:
        return [KeySlot(DEFAULT_KEY, {})]
    slots = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise TryOnConfigurationError(f"Each {where} entry must be a dict of options (api_key, ...).")
        options = {k: v for k, v in entry.items() if k not in SLOT_FIELDS}
        slots.append(
            KeySlot(
                str(entry.get("name") or f"key{index}"),
                options,
                entry.get("max_concurrency"),
                entry.get("submit_rate"),
            )
        )
    if len({slot.name for slot in slots}) != len(slots):
        raise TryOnConfigurationError(f"The names of {where} entries must differ.")
    return slots


def routes() -> list[Route]:
    """The failover chain, in order (``TRYON["BACKENDS"]``, or one route from ``BACKEND``/``OPTIONS``)."""
    cache_key = ("routes", tryon_settings.generation)
    chain = _cache.get(cache_key)
    if chain is not None:
        return chain
    entries = tryon_settings.BACKENDS or [
        {
            "BACKEND": tryon_settings.BACKEND,
            "OPTIONS": tryon_settings.OPTIONS,
            "KEY_POOL": tryon_settings.KEY_POOL,
        }
    ]
    chain = []
    for index, entry in enumerate(entries):
        unknown = set(entry) - set(ROUTE_FIELDS)
        if unknown or "BACKEND" not in entry:
            raise TryOnConfigurationError(
                f"TRYON['BACKENDS'][{index}] needs 'BACKEND' and takes only {', '.join(ROUTE_FIELDS)} "
                f"(got {', '.join(sorted(unknown)) or 'no BACKEND'})."
            )
        backend_class = entry["BACKEND"]
        if isinstance(backend_class, str):
            try:
                backend_class = import_string(backend_class)
            except ImportError as err:
                raise TryOnConfigurationError(
                    f"TRYON['BACKENDS'][{index}]['BACKEND'] could not be imported: {err}"
                ) from err
        options = dict(entry.get("OPTIONS") or {})
        model = options.get("model") or backend_class.default_options.get("model", "")
        name = str(
            entry.get("NAME")
            or (backend_class.name if len(entries) == 1 else f"{backend_class.name}:{model}")
        )
        chain.append(
            Route(name, backend_class, options, _key_pool(entry.get("KEY_POOL"), f"the KEY_POOL of {name!r}"))
        )
    if len({r.name for r in chain}) != len(chain):
        raise TryOnConfigurationError("The NAMEs of TRYON['BACKENDS'] entries must differ.")
    _remember(cache_key, chain)
    return chain


def route(name: str | None) -> Route:
    """The chain entry called ``name`` ("" or None: the first; jobs from before chains carry "")."""
    chain = routes()
    for entry in chain:
        if entry.name == name:
            return entry
    if not name:
        return chain[0]
    raise TryOnConfigurationError(f"No route named {name!r} in TRYON['BACKENDS'] (was it removed?).")


def get_backend(
    *, model: str | None = None, key: str | None = None, route_name: str | None = None
) -> BaseTryOnBackend:
    """The backend of route ``route_name`` (the first by default), on ``model`` and pool key ``key``."""
    return route(route_name).backend(model=model, key=key)


def key_pool(route_name: str | None = None) -> list[KeySlot]:
    """The keys jobs of a route are spread over."""
    return route(route_name).keys
