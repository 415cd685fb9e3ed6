"""The sandbox's own input checks: downloading an input and judging it as the service does.

Written from the vendor's rules, not shared with the client's own checks (a look-alike that reused the
client's code would hide the same bug on both sides). DashScope's OutfitAnyone API page (its image rules,
in Chinese for ``input.*_url``: 图片大小应在5KB~5MB, 最大边长小于等4096, 最小边大于150; the pages are listed
in docs/backends/dashscope.rst, "The provider's documentation"):

* the file is 5 KB–5 MB (KB = 1024 bytes, both ends allowed), else ``InvalidInputLength``;
* each side is more than 150 px and at most 4096 px, else ``InvalidInputLength`` (read from the header,
  before any pixel is decoded: a decompression bomb stops there);
* one still picture in a listed format, decoded whole by Pillow, else ``InvalidURL`` (the page's
  ``InvalidURL`` message: "…the request image format is one of the following types: JPEG, JPG, PNG, BMP,
  and WEBP").

Formats: JPEG (with phones' multi-picture JPEGs, Pillow's MPO), PNG, BMP (the image rules) and WebP (that
error message). HEIC, also in the image rules, is refused with ``InvalidURL``: Pillow has no HEIC decoder of its own.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import requests
from PIL import Image, ImageOps

from .messages import ERRORS
from .state import Store

MIN_BYTES = 5 * 1024
MAX_BYTES = 5 * 1024 * 1024
MIN_SIDE = 150  # exclusive
MAX_SIDE = 4096  # inclusive
FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP"})
#: Formats the sandbox works from as they are; the others (and rotated or transparent pictures) are
#: redrawn upright in RGB first.
KEPT_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
USER_AGENT = "django-tryon-sandbox"


class InputError(Exception):
    """An input the service refuses; ``code`` is the documented error code."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or ERRORS.get(code, (400, code))[1]


@dataclass(frozen=True)
class Picture:
    """An accepted input: its format as sent, its size, and the bytes the sandbox renders from."""

    content: bytes
    format: str
    width: int
    height: int


def check(data: bytes) -> Picture:
    """Judge ``data`` by the documented rules; raises :class:`InputError`."""
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        raise InputError("InvalidInputLength")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError("InvalidInputLength") from None
        except Exception:  # noqa: BLE001 - untrusted bytes: whatever the parser says, it is no picture
            raise InputError("InvalidURL") from None
        with image:
            return _decode(image, data)


def _decode(image: Image.Image, data: bytes) -> Picture:
    fmt = image.format or ""
    if fmt not in FORMATS or (fmt != "MPO" and getattr(image, "n_frames", 1) > 1):
        raise InputError("InvalidURL")
    width, height = image.size
    if not all(MIN_SIDE < side <= MAX_SIDE for side in (width, height)):
        raise InputError("InvalidInputLength")
    try:
        image.load()
        orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
        if fmt in KEPT_FORMATS and orientation in (0, 1) and image.mode in ("RGB", "L"):
            return Picture(data, fmt, width, height)
        return _redraw(image, fmt)
    except Exception:  # noqa: BLE001 - a damaged or truncated file
        raise InputError("InvalidURL") from None


def _redraw(image: Image.Image, fmt: str) -> Picture:
    """The picture upright, transparency on white, as PNG (from a PNG) or JPEG."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = upright.convert("RGB")
    buffer = io.BytesIO()
    if fmt == "PNG":
        rgb.save(buffer, "PNG")
    else:
        rgb.save(buffer, "JPEG", quality=92, subsampling=0)  # full chroma: garments keep their colours
    return Picture(buffer.getvalue(), fmt, rgb.width, rgb.height)


def fetch(store: Store, url: str) -> bytes:
    """Download one input as the service does: http(s) URLs, or an ``oss://`` object uploaded here.

    At most one byte more than the limit is read, enough for :func:`check` to refuse a larger file.
    """
    if url.startswith("oss://"):
        with store.lock:
            upload = store.uploads.get(url[len("oss://") :])
        if upload is None:
            raise InputError("InvalidURL")
        return upload.content
    try:
        headers = {"User-Agent": USER_AGENT}
        with requests.get(url, timeout=store.config.fetch_timeout, stream=True, headers=headers) as response:
            if response.status_code != 200:
                raise InputError("InvalidURL")
            data = response.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException:
        raise InputError("InvalidURL") from None
    with store.lock:
        store.stats["downloads"] += 1
    return data


def load(store: Store, url: str | None) -> bytes | None:
    """Fetch and check one input (None when there is none); the bytes to render from."""
    if not url:
        return None
    return check(fetch(store, url)).content
