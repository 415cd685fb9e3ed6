"""Validator edge cases, on images generated here."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from django_tryon.exceptions import TryOnValidationError
from django_tryon.validators import MAX_BYTES, MIN_BYTES, check_image, validate_tryon_image

from .images import encode, jpeg, noise_image, padded


def code_of(data) -> str:
    with pytest.raises(TryOnValidationError) as info:
        check_image(data)
    return info.value.code


# -- bytes -----------------------------------------------------------------------------------------
def test_5119_bytes_is_refused():
    assert MIN_BYTES == 5120
    assert code_of(padded(jpeg(152, 152, quality=5), 5119)) == "InvalidInputLength"


def test_5120_bytes_is_accepted():
    checked = check_image(padded(jpeg(152, 152, quality=5), 5120))
    assert (checked.width, checked.height, checked.format) == (152, 152, "JPEG")


def test_exactly_5_mib_is_accepted_and_kept_byte_for_byte():
    data = padded(jpeg(1200, 1200, quality=95), MAX_BYTES)
    assert len(data) == 5 * 1024 * 1024
    checked = check_image(data)
    assert checked.content == data and not checked.normalized


def test_5_mib_plus_one_is_refused():
    assert code_of(padded(jpeg(1200, 1200, quality=95), MAX_BYTES + 1)) == "InvalidInputLength"


def test_oversized_upload_is_refused_without_reading_it_all():
    class Big(io.BytesIO):
        size = MAX_BYTES + 10

    assert code_of(Big(b"x" * 10)) == "InvalidInputLength"


# -- pixels ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, ok",
    [
        ((150, 300), False),
        ((300, 150), False),
        ((151, 151), True),
        ((4096, 200), True),
        ((4097, 200), False),
        ((200, 4097), False),
    ],
)
def test_side_limits(size, ok):
    data = jpeg(*size)
    if ok:
        assert (check_image(data).width, check_image(data).height) == size
    else:
        assert code_of(data) == "InvalidInputLength"


def test_decompression_bomb_is_refused_from_the_header():
    """A tiny PNG that claims 60000×60000 pixels is stopped before any decoding."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
    body = chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    data = padded(b"\x89PNG\r\n\x1a\n" + header + body, 6000)
    assert code_of(data) == "InvalidInputLength"


# -- formats ---------------------------------------------------------------------------------------
def test_bmp_is_sent_as_bmp():
    checked = check_image(encode(noise_image(200, 200), "BMP"))
    assert checked.format == "BMP" and checked.extension == "bmp" and not checked.normalized


def test_png_rgb_is_kept():
    data = encode(noise_image(200, 200), "PNG")
    checked = check_image(data)
    assert checked.format == "PNG" and checked.content == data


def test_webp_is_converted_to_jpeg():
    checked = check_image(encode(noise_image(300, 200), "WEBP", quality=90))
    assert checked.format == "JPEG" and checked.normalized
    assert Image.open(io.BytesIO(checked.content)).format == "JPEG"


def test_gif_is_refused():
    assert code_of(encode(noise_image(200, 200, mode="P"), "GIF")) == "InvalidURL"


def test_animated_webp_is_refused():
    frames = [noise_image(200, 200, seed=s) for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], quality=90)
    assert code_of(buffer.getvalue()) == "InvalidURL"


def test_heic_is_refused_with_a_clear_code():
    fake_heic = padded(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", 8000)
    with pytest.raises(TryOnValidationError) as info:
        check_image(fake_heic, field="person_image")
    assert info.value.code == "InvalidURL" and info.value.field == "person_image"


def test_not_an_image_is_refused():
    assert code_of(b"%PDF-1.4\n" + b"x" * 9000) == "InvalidURL"


def test_truncated_jpeg_is_refused():
    data = jpeg(600, 600)
    assert code_of(data[: len(data) // 2]) == "InvalidURL"


# -- modes and orientation -------------------------------------------------------------------------
def test_exif_orientation_6_is_applied():
    image = noise_image(400, 200)
    exif = Image.Exif()
    exif[0x0112] = 6
    checked = check_image(encode(image, "JPEG", quality=90, exif=exif))
    assert checked.normalized and (checked.width, checked.height) == (200, 400)
    reopened = Image.open(io.BytesIO(checked.content))
    assert reopened.size == (200, 400) and reopened.getexif().get(0x0112, 1) == 1


def test_cmyk_jpeg_becomes_rgb():
    checked = check_image(encode(noise_image(300, 300).convert("CMYK"), "JPEG", quality=90))
    assert checked.normalized and Image.open(io.BytesIO(checked.content)).mode == "RGB"


def test_palette_png_becomes_rgb_png():
    checked = check_image(encode(noise_image(300, 300, mode="P"), "PNG"))
    assert checked.format == "PNG" and Image.open(io.BytesIO(checked.content)).mode == "RGB"


def test_transparent_png_is_flattened_on_white():
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste(noise_image(100, 100).convert("RGBA"), (100, 100))
    checked = check_image(encode(image, "PNG"))
    flat = Image.open(io.BytesIO(checked.content))
    assert flat.mode == "RGB" and flat.getpixel((5, 5)) == (255, 255, 255)


# -- messages and the Django validator -------------------------------------------------------------
def test_errors_carry_english_and_chinese_messages():
    with pytest.raises(TryOnValidationError) as info:
        check_image(b"tiny")
    messages = info.value.messages()
    assert "5 KB" in messages["en"] and "5KB" in messages["zh-hans"]


def test_django_validator_raises_validation_error_with_provider_code():
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(ValidationError) as info:
        validate_tryon_image(SimpleUploadedFile("a.jpg", b"tiny"))
    assert info.value.code == "InvalidInputLength"


def test_a_checked_upload_is_not_decoded_twice(monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.jpg", jpeg(300, 300))
    validate_tryon_image(upload)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded twice"))
    assert check_image(upload.file).width == 300


# -- malformed files: every decoder failure is a validation error, never another exception ----------
def _seeds() -> dict[str, bytes]:
    """One small valid file of every accepted format and flavour (each at least 5 KB)."""
    rgb = noise_image(160, 170, seed=11)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: takes the normalizing path
    png_text = PngInfo()
    png_text.add_text("comment", "x" * 2000, zip=True)  # a zTXt chunk
    mpo = io.BytesIO()
    rgb.save(mpo, "MPO", save_all=True, append_images=[noise_image(160, 170, seed=12)])
    return {
        "jpeg": jpeg(160, 170, seed=2),
        "jpeg-progressive-exif": encode(rgb, "JPEG", quality=85, progressive=True, exif=exif),
        "png": encode(rgb, "PNG"),
        "png-rgba-ztxt": encode(noise_image(160, 170, mode="RGBA", seed=3), "PNG", pnginfo=png_text),
        "png-palette": encode(noise_image(160, 170, mode="P", seed=4), "PNG"),
        "bmp": encode(rgb, "BMP"),
        "bmp-palette": encode(noise_image(160, 170, mode="P", seed=5), "BMP"),
        "mpo": mpo.getvalue(),
        "webp": encode(rgb, "WEBP", quality=90),
    }


def _mutations(data: bytes, rnd) -> bytes:
    """One seeded mutation: bit flips, random bytes, 0xFF/0x00 runs (lengths, counts), a cut, a splice."""
    buf = bytearray(data)
    kind = rnd.randrange(6)
    if kind == 0:
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(buf))
            buf[i] ^= 1 << rnd.randrange(8)
    elif kind == 1:
        for _ in range(rnd.randint(1, 4)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
    elif kind == 2:  # header fields: sizes, lengths, offsets
        i = rnd.randrange(min(len(buf), 200))
        buf[i : i + rnd.randint(1, 4)] = bytes([rnd.choice((0x00, 0xFF, 0x7F, 0x80))]) * rnd.randint(1, 4)
    elif kind == 3:
        del buf[rnd.randrange(max(1, len(buf) // 8), len(buf)) :]
    elif kind == 4:
        i, j = rnd.randrange(len(buf)), rnd.randrange(len(buf))
        buf[i:i] = buf[j : j + rnd.randint(1, 64)]
    else:
        i = rnd.randrange(len(buf))
        buf[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 32)))
    return bytes(buf).ljust(MIN_BYTES, b"\0")


def _assert_sendable(checked) -> None:
    """What we accept must be what we promise to send: a complete still image within the rules."""
    assert MIN_BYTES <= len(checked.content) <= MAX_BYTES
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # kept as sent: a corrupt EXIF block is the provider's to skip
        image = Image.open(io.BytesIO(checked.content))
        image.load()
        assert image.format == checked.format and image.size == (checked.width, checked.height)
    assert 150 < checked.width <= 4096 and 150 < checked.height <= 4096


def test_fuzzed_files_give_validation_errors_only(caplog):
    """Thousands of seeded mutations of every accepted format: each is either accepted as a sendable
    image or refused with the app's error, and no decoder failure is of a kind we do not know."""
    import random
    from collections import Counter

    rnd = random.Random(20261202)
    outcomes: Counter = Counter()
    for name, seed in _seeds().items():
        for _ in range(450):
            data = _mutations(seed, rnd)
            try:
                checked = check_image(data)
            except TryOnValidationError as err:
                assert err.code in ("InvalidURL", "InvalidInputLength")
                outcomes[f"{name}:{type(err.__cause__).__name__ if err.__cause__ else err.code}"] += 1
            else:
                _assert_sendable(checked)
                outcomes[f"{name}:accepted"] += 1
    assert sum(outcomes.values()) == 9 * 450
    assert not [r for r in caplog.records if "unexpected" in r.getMessage()], outcomes
    refused_by_decoder = sum(
        n
        for key, n in outcomes.items()
        if not key.endswith((":accepted", ":InvalidURL", ":InvalidInputLength"))
    )
    assert refused_by_decoder > 100  # the mutations do reach the decoders


def test_jpeg_marker_longer_than_the_file():
    data = bytearray(jpeg(160, 170, seed=2))
    sos = data.index(b"\xff\xda")
    data[sos + 2 : sos + 4] = b"\xff\xff"  # a segment length past the end of the file
    assert code_of(bytes(data)) == "InvalidURL"


def test_unsupported_bmp_header():
    data = bytearray(encode(noise_image(160, 170), "BMP"))
    data[14:18] = struct.pack("<I", 17)  # no such DIB header size
    assert code_of(bytes(data)) == "InvalidURL"


def test_png_ztxt_bomb():
    """A compressed text chunk that inflates past Pillow's limit is refused, not decompressed."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    png = encode(noise_image(160, 170), "PNG")
    bomb = chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"A" * 64 * 1024 * 1024, 9))
    data = png[:33] + bomb + png[33:]
    assert code_of(data) == "InvalidURL"
