"""Pluggable try-on backends, loaded by dotted path from ``TRYON["BACKEND"]``."""

from __future__ import annotations

from typing import Any

from ..conf import tryon_settings
from .base import BaseTryOnBackend


def get_backend(**overrides: Any) -> BaseTryOnBackend:
    """A new backend instance built from ``TRYON["BACKEND"]`` and ``TRYON["OPTIONS"]``.

    ``overrides`` replace options for this instance (e.g. ``model="aitryon-plus"``).
    """
    backend_class = tryon_settings.BACKEND
    options = {**tryon_settings.OPTIONS, **{k: v for k, v in overrides.items() if v is not None}}
    return backend_class(**options)
