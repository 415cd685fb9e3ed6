"""Flat-lay garment pictures drawn with Pillow, so the demo ships no photos of its own."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter

SIZE = 768


def _finish(image: Image.Image, seed: int) -> bytes:
    """Soft fabric texture and a JPEG encoding."""
    rnd = random.Random(seed)
    noise = Image.effect_noise((SIZE, SIZE), 24).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    mask = image.convert("L").point(lambda v: 0 if v > 250 else 40)
    image.paste(Image.blend(image, noise, 0.15), mask=mask)
    image = image.rotate(rnd.uniform(-0.5, 0.5), fillcolor=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def tee(color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    d = ImageDraw.Draw(image)
    # A regular tee laid flat: shoulders sloping into short sleeves, a straight body, a crew neck.
    d.polygon(
        [
            (300, 70),
            (468, 70),
            (560, 96),
            (676, 238),
            (600, 292),
            (556, 250),
            (556, 700),
            (212, 700),
            (212, 250),
            (168, 292),
            (92, 238),
            (208, 96),
        ],
        fill=color,
    )
    d.chord((318, 40, 450, 140), 0, 180, fill=tuple(max(0, c - 70) for c in color))  # the inside of the back
    d.arc((318, 40, 450, 140), 0, 180, fill=tuple(max(0, c - 35) for c in color), width=9)
    d.line([(212, 684), (556, 684)], fill=tuple(max(0, c - 35) for c in color), width=5)
    return _finish(image, 1)


def trousers(color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    d = ImageDraw.Draw(image)
    d.polygon([(234, 70), (534, 70), (600, 720), (420, 720), (384, 260), (348, 720), (168, 720)], fill=color)
    d.rectangle((234, 70, 534, 110), fill=tuple(max(0, c - 40) for c in color))
    return _finish(image, 2)


def dress(color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    d = ImageDraw.Draw(image)
    # A sleeveless A-line dress: straps, a fitted bodice, a flared skirt.
    d.polygon(
        [
            (300, 24),
            (330, 24),
            (350, 70),
            (418, 70),
            (438, 24),
            (468, 24),
            (480, 150),
            (462, 300),
            (590, 744),
            (178, 744),
            (306, 300),
            (288, 150),
        ],
        fill=color,
    )
    d.line([(306, 300), (462, 300)], fill=tuple(max(0, c - 35) for c in color), width=6)
    return _finish(image, 3)
