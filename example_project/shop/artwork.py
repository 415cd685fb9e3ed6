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
    d.polygon([(270, 90), (498, 90), (700, 230), (630, 330), (560, 280), (560, 690), (208, 690), (208, 280),
               (138, 330), (68, 230)], fill=color)
    d.ellipse((318, 60, 450, 150), fill=(255, 255, 255))
    d.arc((318, 60, 450, 150), 0, 180, fill=tuple(max(0, c - 50) for c in color), width=10)
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
    d.polygon([(300, 50), (468, 50), (520, 140), (500, 330), (650, 730), (118, 730), (268, 330), (248, 140)], fill=color)
    d.ellipse((330, 30, 438, 100), fill=(255, 255, 255))
    return _finish(image, 3)
