"""What the console scripts (``tryon-sandbox``, ``tryon-engine``) share; imports nothing of Django."""

from __future__ import annotations

import os
import sys


def prog_name(module: str) -> str:
    """The program's name for usage lines: the console script's, else ``python -m <module>``.

    Args:
        module: the package run with ``python -m`` (``django_tryon.engine``).
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return f"python -m {module}" if name in ("", "-c", "__main__.py") else name
