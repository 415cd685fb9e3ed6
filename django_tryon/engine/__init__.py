"""Offline try-on engine: a classical, preview-quality try-on with no cloud and no downloads.

BlazePose landmarks and person segmentation (the models inside the ``mediapipe`` wheel) locate the
body; the garment is cut out of its flat-lay photo, its key points are matched to the body's
landmarks, and a thin-plate-spline warp puts it on, shaded by the person's own clothes. Pure image
code: no Django, no HTTP, no Celery. Needs ``pip install "django-tryon[engine]"``.
"""

from __future__ import annotations


class EngineNotInstalled(ImportError):
    """The engine's optional dependencies are missing."""


try:
    import cv2  # noqa: F401 - imported only to check that the extra is installed
    import mediapipe  # noqa: F401 - likewise
    import numpy  # noqa: F401 - likewise
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise EngineNotInstalled(
        f"The try-on engine needs {err.name or 'mediapipe and opencv'}: "
        'install it with: pip install "django-tryon[engine]"'
    ) from err

from .body import PersonCheck, check_person  # noqa: E402 - after the check, so a missing extra says what to install
from .garment import GarmentAnalysis, analyze_garment  # noqa: E402 - likewise
from .render import RenderError, render_tryon  # noqa: E402 - likewise

__all__ = [
    "EngineNotInstalled",
    "GarmentAnalysis",
    "PersonCheck",
    "RenderError",
    "analyze_garment",
    "check_person",
    "render_tryon",
]
