"""Check images against the provider's rules before any money is spent.

The rules (DashScope's OutfitAnyone API page; see docs/backends/dashscope.rst, "The provider's documentation"): 5 KB ≤ file ≤ 5 MB; each side > 150 px and ≤ 4096 px;
one decodable still image. Formats sent to the provider: JPEG, PNG, BMP. WebP is accepted from shoppers
and converted to JPEG (only the provider's error text mentions WebP, its parameter table does not);
HEIC and GIF are refused (Pillow cannot decode HEIC without a plugin; GIF is not a provider format).

Header fields (format, size, frame count, EXIF orientation) are read without decoding; the pixels are
decoded at most once, to prove the file is complete, and re-encoded only when the provider could
misread the original (EXIF rotation, CMYK/palette/alpha modes, WebP, multi-picture JPEG).
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import warnings
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from .exceptions import TryOnValidationError

logger = logging.getLogger("django_tryon")

MIN_BYTES = 5 * 1024
MAX_BYTES = 5 * 1024 * 1024
MIN_SIDE_EXCLUSIVE = 150
MAX_SIDE = 4096

#: Pillow format → the extension it is stored under, for what we send as is (the content type follows
#: from the extension: ``mimetypes``, as the file view and the provider uploads use).
SENDABLE_FORMATS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp"}
#: Formats accepted from the user and re-encoded before sending.
CONVERTED_FORMATS = {"WEBP", "MPO"}
EXIF_ORIENTATION = 0x0112
#: What decoding untrusted bytes is known to raise, all meaning "damaged file": Pillow's own errors and
#: those of its plugins' parsers (a short header → struct.error, a bad palette index → IndexError, ...).
#: Anything else is refused the same way but logged, so a bug of ours cannot hide behind it; the seeded
#: fuzz test in tests/test_validators.py checks that no mutation reaches that branch.
KNOWN_DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed the provider's rules; ``content`` is what to store and send."""

    content: bytes
    format: str
    width: int
    height: int
    normalized: bool

    @property
    def extension(self) -> str:
        return SENDABLE_FORMATS[self.format]


def _error(code: str, message: str, field: str) -> TryOnValidationError:
    err = TryOnValidationError(message, code=code)
    err.field = field
    return err


def _read_limited(source: bytes | IO[bytes], field: str) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    size = getattr(source, "size", None)
    if size is not None and size > MAX_BYTES:
        raise _error(
            "InvalidInputLength", f"The file is {size} bytes; the limit is 5 MB ({MAX_BYTES} bytes).", field
        )
    if hasattr(source, "seek"):
        source.seek(0)
    data = source.read(MAX_BYTES + 1)
    if hasattr(source, "seek"):
        source.seek(0)
    return data


def _check_length(n: int, field: str) -> None:
    if n < MIN_BYTES:
        raise _error(
            "InvalidInputLength",
            f"The file is {n} bytes; it must be at least 5 KB ({MIN_BYTES} bytes).",
            field,
        )
    if n > MAX_BYTES:
        raise _error("InvalidInputLength", f"The file is larger than 5 MB ({MAX_BYTES} bytes).", field)


def _check_side(width: int, height: int, field: str) -> None:
    for side in (width, height):
        if side <= MIN_SIDE_EXCLUSIVE or side > MAX_SIDE:
            raise _error(
                "InvalidInputLength",
                f"The image is {width}×{height} px; each side must be more than 150 and at most 4096 px.",
                field,
            )


def check_image(source: bytes | IO[bytes], *, field: str = "image") -> CheckedImage:
    """Validate ``source`` against the provider's rules and return the bytes to send.

    Raises:
        TryOnValidationError: with code ``InvalidInputLength`` (bytes or pixels out of range) or
            ``InvalidURL`` (not a readable still image in an accepted format). ``err.field`` names the input.
    """
    cached = getattr(source, "_tryon_checked", None)
    if cached is not None:
        return cached
    data = _read_limited(source, field)
    _check_length(len(data), field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter(
                "ignore", UserWarning
            )  # "Corrupt EXIF data" and the like: the file is judged whole
            checked = _decode(data, field)
    except TryOnValidationError:
        raise
    except Exception as err:  # untrusted bytes through third-party parsers: never a 500
        if not isinstance(err, KNOWN_DECODER_ERRORS):
            logger.warning("unexpected %s from the image decoder", type(err).__name__, exc_info=True)
        raise _error("InvalidURL", "The image file is damaged or incomplete.", field) from err
    _remember(source, checked)
    return checked


def _decode(data: bytes, field: str) -> CheckedImage:
    """Open, check and (when needed) normalize ``data``; decoder failures propagate to ``check_image``."""
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _error(
            "InvalidInputLength",
            "The image claims far more pixels than allowed (at most 4096 px a side).",
            field,
        ) from err
    except UnidentifiedImageError as err:
        raise _error(
            "InvalidURL", "The file is not an image in a supported format (JPEG, PNG, BMP, WebP).", field
        ) from err
    with image:
        fmt = image.format or ""
        if fmt not in SENDABLE_FORMATS and fmt not in CONVERTED_FORMATS:
            raise _error(
                "InvalidURL", f"{fmt or 'This'} images are not accepted; use JPEG, PNG, BMP or WebP.", field
            )
        if fmt != "MPO" and getattr(image, "n_frames", 1) > 1:
            raise _error(
                "InvalidURL",
                "Animated or multi-frame images are not accepted; upload one still photo.",
                field,
            )
        _check_side(*image.size, field)  # header only: a decompression bomb stops here
        image.load()
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        needs_rewrite = (
            fmt in CONVERTED_FORMATS or orientation not in (0, 1) or image.mode not in ("RGB", "L")
        )
        if not needs_rewrite:
            return CheckedImage(data, fmt, image.width, image.height, normalized=False)
        return _normalize(image, fmt, field)


def _normalize(image: Image.Image, fmt: str, field: str) -> CheckedImage:
    """Apply EXIF rotation, flatten to RGB and re-encode (PNG stays PNG, everything else becomes JPEG)."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = upright.convert("RGB")
    out_format = "PNG" if fmt == "PNG" else "JPEG"
    buffer = io.BytesIO()
    if out_format == "PNG":
        rgb.save(buffer, "PNG", optimize=False)
        if buffer.tell() > MAX_BYTES:  # a photo saved as PNG may outgrow the limit once flattened
            buffer, out_format = io.BytesIO(), "JPEG"
    if out_format == "JPEG":
        rgb.save(buffer, "JPEG", quality=92, subsampling=0)
    content = buffer.getvalue()
    _check_length(len(content), field)
    _check_side(rgb.width, rgb.height, field)
    return CheckedImage(content, out_format, rgb.width, rgb.height, normalized=True)


def _remember(source: Any, checked: CheckedImage) -> None:
    """Cache the verdict on an uploaded file so a form and the model's save() don't decode twice."""
    if not isinstance(source, (bytes, bytearray)):
        with contextlib.suppress(AttributeError):  # objects with __slots__ cannot carry the verdict
            source._tryon_checked = checked


def validate_tryon_image(value: Any) -> None:
    """Django field/form validator: raise ``ValidationError`` with the provider's code."""
    from django.core.exceptions import ValidationError

    file = getattr(value, "file", value)
    if file is None or getattr(value, "_committed", False):
        return
    try:
        checked = check_image(file)
    except TryOnValidationError as err:
        raise ValidationError(err.message, code=err.code) from err
    _remember(value, checked)
