"""The sandbox's own input checks (django_tryon/sandbox/inputs.py) against the vendor's image rules:
5 KB–5 MB, each side more than 150 and at most 4096 px, JPEG/PNG/BMP/WebP, decodable."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image

from django_tryon.sandbox import inputs
from django_tryon.sandbox.inputs import MAX_BYTES, MIN_BYTES, InputError, Picture, check
from django_tryon.sandbox.messages import ERRORS
from django_tryon.sandbox.state import Config, Store, Upload

from .sandbox_helpers import ROOT


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Noise (Pillow's own generator): it compresses badly, so even small pictures pass 5 KB."""
    gray = Image.effect_noise((width, height), 80)
    return gray if mode == "L" else gray.convert(mode)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def refused(data: bytes) -> str:
    with pytest.raises(InputError) as caught:
        check(data)
    assert caught.value.message == ERRORS[caught.value.code][1]  # the documented message, verbatim
    return caught.value.code


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` but holds a few bytes of pixels (padded past 5 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return data + b"\0" * (6 * 1024 - len(data))


# -- formats ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt, params",
    [
        ("JPEG", {}),
        ("PNG", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("MPO", {"save_all": True, "append_images": [noise(300, 400)]}),
    ],
)
def test_each_accepted_format(fmt, params):
    data = encode(noise(300, 400), fmt, **params)
    picture = check(data)
    assert (picture.format, picture.width, picture.height) == (fmt, 300, 400)
    with Image.open(io.BytesIO(picture.content)) as image:
        assert image.size == (300, 400) and image.mode == "RGB"
        # JPEG, PNG and BMP are worked from as sent; WebP and multi-picture JPEG are redrawn as JPEG.
        assert (picture.content == data) == (fmt in ("JPEG", "PNG", "BMP"))
        assert image.format == ("JPEG" if fmt in ("WEBP", "MPO") else fmt)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO", "PPM"])
def test_formats_the_provider_does_not_list_are_invalid_urls(fmt):
    data = encode(noise(200, 200), fmt)
    assert len(data) >= MIN_BYTES
    assert refused(data) == "InvalidURL"


def test_heic_is_refused_for_want_of_a_decoder():
    """The OutfitAnyone page's image rules list HEIC, but Pillow cannot decode it: refused as a format the sandbox cannot read."""
    data = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 8000
    assert refused(data) == "InvalidURL"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_animations_are_refused(fmt):
    data = encode(noise(200, 200), fmt, save_all=True, append_images=[noise(200, 200)], duration=100)
    assert refused(data) == "InvalidURL"


# -- file size -------------------------------------------------------------------------------------
def small_jpeg() -> bytes:
    data = encode(Image.new("RGB", (200, 200), (200, 40, 40)), "JPEG")
    assert len(data) < MIN_BYTES - 1
    return data


def test_five_kilobytes_is_the_floor():
    data = small_jpeg()
    assert refused(data + b"\0" * (MIN_BYTES - 1 - len(data))) == "InvalidInputLength"
    assert check(data + b"\0" * (MIN_BYTES - len(data))).format == "JPEG"


def test_five_megabytes_is_the_ceiling():
    data = small_jpeg()
    assert check(data + b"\0" * (MAX_BYTES - len(data))).width == 200
    assert refused(data + b"\0" * (MAX_BYTES + 1 - len(data))) == "InvalidInputLength"
    assert (MIN_BYTES, MAX_BYTES) == (5 * 1024, 5 * 1024 * 1024)


# -- sides -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "width, height, ok",
    [
        (151, 400, True),
        (150, 400, False),
        (400, 151, True),
        (400, 150, False),
        (4096, 160, True),
        (4097, 160, False),
        (160, 4096, True),
        (160, 4097, False),
    ],
)
def test_sides_more_than_150_and_at_most_4096(width, height, ok):
    data = encode(noise(width, height, "L"), "PNG")
    assert MIN_BYTES <= len(data) <= MAX_BYTES  # refused for its pixels, not its bytes
    if ok:
        assert (check(data).width, check(data).height) == (width, height)
    else:
        assert refused(data) == "InvalidInputLength"


def test_sides_are_read_from_the_header_before_any_pixel():
    """A header claiming 5000×5000 is refused for its size, never decoded (its pixels are missing)."""
    assert refused(png_header_only(5000, 5000)) == "InvalidInputLength"
    assert refused(png_header_only(300, 300)) == "InvalidURL"  # the same file, in range: decoding fails


def test_decompression_bombs_are_refused_unopened():
    assert refused(png_header_only(100_000, 100_000)) == "InvalidInputLength"


# -- undecodable -----------------------------------------------------------------------------------
def test_undecodable_files_are_invalid_urls():
    assert refused(os.urandom(8 * 1024)) == "InvalidURL"
    assert refused(b"not an image at all" * 600) == "InvalidURL"
    whole = encode(noise(400, 600), "JPEG", quality=90)
    assert refused(whole[: len(whole) // 2]) == "InvalidURL"  # truncated: the header alone is not enough
    png = bytearray(encode(noise(300, 300), "PNG"))
    png[len(png) // 2] ^= 0xFF  # a damaged IDAT chunk
    assert refused(bytes(png)) == "InvalidURL"


# -- what the sandbox renders from -----------------------------------------------------------------
def test_exif_rotation_and_transparency_are_redrawn_upright_on_white():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    rotated = check(encode(noise(300, 400), "JPEG", exif=exif.tobytes()))
    assert (rotated.format, rotated.width, rotated.height) == ("JPEG", 400, 300)
    assert Image.open(io.BytesIO(rotated.content)).size == (400, 300)

    clear = noise(300, 400, "RGBA")
    clear.putalpha(0)
    flat = check(encode(clear, "PNG"))
    with Image.open(io.BytesIO(flat.content)) as image:
        assert (image.format, image.mode, image.getpixel((10, 10))) == ("PNG", "RGB", (255, 255, 255))


def test_load_reads_uploads_and_refuses_unknown_objects():
    store = Store(Config())
    data = encode(noise(300, 400), "JPEG")
    store.uploads["dir/p.jpg"] = Upload(data, "aitryon", "someone", 0.0)
    assert inputs.load(store, "oss://dir/p.jpg") == data
    assert inputs.load(store, None) is None
    with pytest.raises(InputError) as caught:
        inputs.load(store, "oss://dir/other.jpg")
    assert caught.value.code == "InvalidURL"
    assert isinstance(check(data), Picture)


def test_the_sandbox_shares_no_code_with_the_client_and_needs_no_django():
    code = (
        "import sys, django_tryon.sandbox.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django' "
        "or m in ('django_tryon.validators', 'django_tryon.exceptions')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
