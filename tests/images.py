"""Test images made by code (never the licensed photos in ../shared/images)."""

from __future__ import annotations

import io
import random
from functools import cache

from PIL import Image, ImageDraw, ImageFilter


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


@cache
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


@cache
def standing_person(
    width: int = 480, height: int = 800, shirt: tuple[int, int, int] = (60, 90, 160)
) -> bytes:
    """A drawn person the engine's person check accepts: one figure, head to feet, facing the camera.

    ``width`` may be anything (the figure is drawn for ``height`` and centred); the crops and shades
    of it that the check refuses are made by the tests.
    """
    s = height / 1000  # drawn on a 1000-unit-high canvas, x from the centre line
    image = Image.new("RGB", (width, height), (190, 200, 210))
    draw = ImageDraw.Draw(image)
    cx = width / 2
    skin, hair, trousers, shoes = (222, 178, 150), (50, 35, 25), (40, 40, 60), (30, 30, 30)

    def pts(*points):
        return [(cx + x * s, y * s) for x, y in points]

    def box(x0, y0, x1, y1):
        return (cx + x0 * s, y0 * s, cx + x1 * s, y1 * s)

    draw.polygon(pts((-58, 480), (-5, 480), (-14, 900), (-50, 900)), fill=trousers)
    draw.polygon(pts((5, 480), (58, 480), (50, 900), (14, 900)), fill=trousers)
    draw.ellipse(box(-72, 888, -8, 922), fill=shoes)
    draw.ellipse(box(8, 888, 72, 922), fill=shoes)
    draw.polygon(pts((-92, 225), (-68, 225), (-78, 470), (-106, 470)), fill=skin)  # arms and hands
    draw.polygon(pts((68, 225), (92, 225), (106, 470), (78, 470)), fill=skin)
    draw.ellipse(box(-118, 460, -76, 515), fill=skin)
    draw.ellipse(box(76, 460, 118, 515), fill=skin)
    draw.polygon(pts((-92, 215), (92, 215), (72, 490), (-72, 490)), fill=shirt)
    draw.rectangle(box(-18, 170, 18, 220), fill=skin)  # neck, head, hair
    draw.ellipse(box(-46, 75, 46, 190), fill=skin)
    draw.chord(box(-50, 65, 50, 150), 180, 360, fill=hair)
    line = max(1, round(3 * s))
    for ex in (-20, 20):  # eyes and brows: the face detector needs a face
        draw.ellipse(box(ex - 9, 118, ex + 9, 130), fill=(255, 255, 255))
        draw.ellipse(box(ex - 4, 120, ex + 4, 128), fill=(40, 30, 20))
        draw.line(pts((ex - 11, 110), (ex + 11, 108)), fill=hair, width=line)
    draw.line(pts((0, 125), (-4, 150), (5, 150)), fill=(180, 130, 110), width=line)
    draw.chord(box(-16, 155, 16, 172), 0, 180, fill=(170, 70, 70))
    image = image.filter(ImageFilter.GaussianBlur(1.2 * s))
    _speckle(image)
    return encode(image, "JPEG", quality=92)


@cache
def garment_photo(color=(200, 40, 40), width: int = 400, height: int = 400, kind: str = "top") -> bytes:
    """A flat-lay garment silhouette on white."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if kind == "bottom":
        draw.polygon(
            [(120, 40), (280, 40), (330, 370), (215, 370), (200, 150), (185, 370), (70, 370)], fill=color
        )
    else:
        draw.polygon(
            [
                (140, 40),
                (260, 40),
                (370, 120),
                (330, 170),
                (290, 140),
                (290, 370),
                (110, 370),
                (110, 140),
                (70, 170),
                (30, 120),
            ],
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
