"""The person check before paying: the engine's ``check_person`` on a shopper's photo, once per photo.

``TRYON["PERSON_CHECK"]`` says what a photo the check finds unusable does: ``"refuse"`` (a 400
``InvalidPerson`` before anything is stored or charged), ``"warn"`` (the photo or job is created and
carries warnings) or ``"off"``. The check needs the engine extra (``pip install "django-tryon[engine]"``);
without it nothing runs. A failing engine never fails the request: the photo goes on unchecked.

A verdict is stored as a plain dict (``PersonPhoto.person_check`` / ``TryOn.person_check``)::

    {"ok": False, "verdict": "not_full_body", "reasons": ["The feet are not in the picture: ..."],
     "details": {"brightness": 171.0, "coverage": 0.19, ...}}

``reasons`` are the engine's own English sentences, kept for the merchant; shoppers see the
translated message of the verdict (``verdict_message``).
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Any

from django.utils.translation import gettext_lazy as _

from .conf import tryon_settings
from .exceptions import TryOnPersonRefused

logger = logging.getLogger("django_tryon")

#: The check runs on a copy no larger than this (long side, px): its figures do not depend on the size,
#: and a 4096 px photo would cost several times the time of the same photo at 1024 px.
CHECK_SIDE = 1024

#: The shopper's message for each verdict of ``check_person`` (the engine's sentences are English only).
VERDICT_MESSAGES: dict[str, Any] = {
    "no_person": _("We could not find a person in this photo. Please use a photo of yourself."),
    "several_people": _("There is more than one person in this photo. Please use a photo of you alone."),
    "not_full_body": _(
        "Your whole body is not in this photo. Please show yourself standing, from head to feet."
    ),
    "not_front_facing": _("You are turned to the side in this photo. Please face the camera."),
    "too_dark": _("This photo is too dark. Please take it in good light."),
    "blurry": _("This photo is blurred. Please hold the camera still and keep it in focus."),
}
#: For a verdict this version does not know (a newer engine).
OTHER_MESSAGE = _(
    "This photo may not work well: we need one person, standing, facing the camera, head to feet."
)


def mode() -> str:
    """``TRYON["PERSON_CHECK"]``: "refuse", "warn" or "off"."""
    return tryon_settings.PERSON_CHECK


def verdict_message(verdict: str) -> Any:
    """The translatable shopper message for ``verdict`` (rendered in the active language)."""
    return VERDICT_MESSAGES.get(verdict, OTHER_MESSAGE)


def run(content: bytes) -> dict[str, Any] | None:
    """Check ``content`` (a validated image) unless the check is off; None when it did not run.

    None means: ``PERSON_CHECK`` is "off", the engine extra is not installed, or the engine failed
    (logged at warning level, without the photo). Never raises.
    """
    if mode() == "off":
        return None
    try:
        from .engine import check_person
        from .engine.plain import jsonable
    except ImportError:  # the engine extra is not installed: no check, by design (docs/settings.rst)
        return None
    except Exception as err:  # noqa: BLE001 - a broken install must not turn an upload into a 500
        logger.warning("person check unavailable: the engine failed to import (%s)", type(err).__name__)
        return None
    started = time.perf_counter()
    try:
        result = check_person(_scaled(content))
        verdict = {
            "ok": bool(result.ok),
            "verdict": str(result.verdict),
            "reasons": [str(reason) for reason in result.reasons],
            "details": jsonable(result.details),
        }
    except Exception as err:  # noqa: BLE001 - any engine failure: treat as no verdict
        logger.warning(
            "person check failed (%s: %s); the photo goes on unchecked", type(err).__name__, str(err)[:200]
        )
        return None
    logger.debug("person check: %s in %.0f ms", verdict["verdict"], (time.perf_counter() - started) * 1000)
    return verdict


def enforce(check: dict[str, Any] | None, *, field: str) -> None:
    """Raise ``TryOnPersonRefused`` when ``PERSON_CHECK`` is "refuse" and ``check`` found the photo unusable."""
    if check is None or check.get("ok", True) or mode() != "refuse":
        return
    verdict = str(check.get("verdict") or "")
    message = verdict_message(verdict)
    err = TryOnPersonRefused(
        str(_english(message)),
        verdict=verdict,
        reasons=[message],
        details={**check.get("details", {}), "reasons": list(check.get("reasons", []))},
    )
    err.field = field
    raise err


def warnings(check: dict[str, Any] | None) -> list[dict[str, str]]:
    """The shopper's warnings for a stored verdict, in the active language: ``[{"code", "message"}]``.

    Empty when the verdict is fine or missing, and while ``PERSON_CHECK`` is "off" (also for a verdict
    stored before).
    """
    if not check or check.get("ok", True) or mode() == "off":
        return []
    verdict = str(check.get("verdict") or "")
    return [{"code": verdict, "message": str(verdict_message(verdict))}]


def _scaled(content: bytes) -> Any:
    """The photo as an RGB array, reduced to at most ``CHECK_SIDE`` on its long side (JPEGs decode reduced)."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(content)) as image:
        scale = CHECK_SIDE / max(image.size)
        if scale < 1:  # a JPEG decodes at 1/2, 1/4 or 1/8 scale when that is still as large as needed
            image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        upright = ImageOps.exif_transpose(image) or image
        rgb = upright.convert("RGB")
    if max(rgb.size) > CHECK_SIDE:
        rgb.thumbnail((CHECK_SIDE, CHECK_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def _english(message: Any) -> str:
    from django.utils import translation

    with translation.override("en"):
        return str(message)
