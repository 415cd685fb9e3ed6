"""Test images made by code (never the licensed photos in ../shared/images)."""

from __future__ import annotations

import io
import random
from functools import lru_cache

from PIL import Image, ImageDraw


def noise_image(width: int, height: int, mode: str = "RGB", seed: int = 1) -> Image.Image:
    rnd = random.Random(seed)
    data = bytes(rnd.getrandbits(8) for _ in range(width * height * len(mode if mode != "P" else "L")))
    if mode == "P":
        return Image.frombytes("L", (width, height), data).convert("P")
    return Image.frombytes(mode, (width, height), data)


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(width: int = 400, height: int = 600, seed: int = 1, **params) -> bytes:
    """A noisy JPEG: noise keeps even small images above the 5 KB floor."""
    return encode(noise_image(width, height, seed=seed), "JPEG", quality=params.pop("quality", 90), **params)


def padded(data: bytes, size: int) -> bytes:
    """``data`` with trailing bytes up to exactly ``size`` (decoders ignore bytes after the image)."""
    assert len(data) <= size, (len(data), size)
    return data + b"\0" * (size - len(data))


@lru_cache(maxsize=None)
def person_photo(width: int = 480, height: int = 800) -> bytes:
    """A simple drawn figure on a light background (a stand-in person for wire tests)."""
    image = Image.new("RGB", (width, height), (235, 235, 230))
    draw = ImageDraw.Draw(image)
    cx = width // 2
    draw.ellipse((cx - 40, 40, cx + 40, 130), fill=(224, 180, 150))
    draw.rectangle((cx - 70, 140, cx + 70, 420), fill=(60, 90, 160))
    draw.rectangle((cx - 60, 420, cx - 10, 740), fill=(40, 40, 50))
    draw.rectangle((cx + 10, 420, cx + 60, 740), fill=(40, 40, 50))
    _speckle(image)
    return encode(image, "JPEG", quality=92)


@lru_cache(maxsize=None)
def garment_photo(color=(200, 40, 40), width: int = 400, height: int = 400, kind: str = "top") -> bytes:
    """A flat-lay garment silhouette on white."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if kind == "bottom":
        draw.polygon([(120, 40), (280, 40), (330, 370), (215, 370), (200, 150), (185, 370), (70, 370)], fill=color)
    else:
        draw.polygon(
            [(140, 40), (260, 40), (370, 120), (330, 170), (290, 140), (290, 370), (110, 370), (110, 140), (70, 170), (30, 120)],
            fill=color,
        )
    _speckle(image)
    return encode(image, "JPEG", quality=92)


def _speckle(image: Image.Image) -> None:
    """Light texture so JPEGs stay above 5 KB."""
    rnd = random.Random(7)
    px = image.load()
    for _ in range(image.width * image.height // 6):
        x, y = rnd.randrange(image.width), rnd.randrange(image.height)
        r, g, b = px[x, y]
        if min(r, g, b) >= 250:  # keep flat-lay backgrounds clean
            continue
        d = rnd.randint(-18, 18)
        px[x, y] = (max(0, min(255, r + d)), max(0, min(255, g + d)), max(0, min(255, b + d)))
