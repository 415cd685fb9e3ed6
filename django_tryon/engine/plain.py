"""The engine's figures as plain JSON values (for the CLI's output and the person check's JSONField)."""

from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays, tuples and paths made plain JSON types.

    Non-finite floats become ``None`` (JSON has no NaN); any other unknown value (a path) its ``str()``.
    """
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # np.float64, np.bool_, arrays
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
