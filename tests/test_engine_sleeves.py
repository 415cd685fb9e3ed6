"""The offline engine on what it used to get wrong: hanging sleeves and framing into the provider's size.

Garments and people are drawn here (the BlazePose landmarks of ``drawn_person`` are given by hand).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from django_tryon.engine import analyze_garment, render_tryon
from django_tryon.engine.fit import crop_box, fit_frame

from . import images
from .test_engine import drawn_person

RED = (200, 40, 40)


def long_sleeved(sleeves_end: str = "below_hem") -> bytes:
    """A flat-lay with its sleeves lying along its sides: longer than the torso (``below_hem``) or
    ending at a dress's waist, above a narrower skirt (``at_waist``)."""
    image = Image.new("RGB", (520, 620), "white")
    draw = ImageDraw.Draw(image)
    if sleeves_end == "below_hem":
        draw.polygon([(200, 40), (320, 40), (390, 70), (390, 470), (130, 470), (130, 70)], fill=RED)  # torso
        draw.polygon([(130, 70), (170, 75), (150, 560), (70, 560), (95, 90)], fill=RED)  # image-left sleeve
        draw.polygon([(390, 70), (350, 75), (370, 560), (450, 560), (425, 90)], fill=RED)
    else:
        draw.polygon([(210, 30), (310, 30), (370, 55), (360, 250), (160, 250), (150, 55)], fill=RED)  # bodice
        draw.polygon([(150, 55), (185, 60), (170, 300), (95, 300), (110, 75)], fill=RED)
        draw.polygon([(370, 55), (335, 60), (350, 300), (425, 300), (410, 75)], fill=RED)
        draw.polygon([(185, 250), (335, 250), (400, 600), (120, 600)], fill=RED)  # skirt below the cuffs
    return images.encode(image, "PNG")


def reddish(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.astype(int)
    return (pixels[..., 0] > 120) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)


@pytest.mark.parametrize(
    "sleeves_end, kind, reach", [("below_hem", "top", 0.7), ("at_waist", "one_piece", 0.35)]
)
def test_hanging_sleeves_are_found_and_cut_from_the_torso(sleeves_end, kind, reach):
    garment = analyze_garment(long_sleeved(sleeves_end))
    assert garment.kind == kind  # sleeves hanging below a top's hem are not trouser legs
    assert set(garment.sleeves) == {"l", "r"} and garment.has_sleeves
    left, right = garment.sleeves["l"], garment.sleeves["r"]
    height = garment.rgba.shape[0]
    assert left.length > reach * height and right.length > reach * height  # shoulder to cuff
    # The torso's key points describe the torso alone, not the box the sleeves make.
    kp = garment.keypoints
    sleeve_width = left.mask.any(axis=0).sum()
    assert kp["shoulder_r"][0] - kp["shoulder_l"][0] < garment.rgba.shape[1] - 1.5 * sleeve_width
    assert not (left.mask & right.mask).any() and garment.torso_rgba[..., 3][left.mask].max() == 0


@pytest.mark.parametrize("sleeves_end", ["below_hem", "at_waist"])
def test_long_sleeves_follow_the_arms_down_to_the_wrists(sleeves_end):
    person, body = drawn_person()
    result = np.asarray(render_tryon(person, long_sleeved(sleeves_end), body=body))
    forearms = np.concatenate(
        [result[285:370, 318:335], result[285:370, 145:162]]
    )  # elbow (270) → wrist (390)
    upper_arms = np.concatenate([result[170:255, 318:335], result[170:255, 145:162]])
    torso = result[200:380, 190:290]
    assert reddish(forearms).mean() > 0.7 and reddish(upper_arms).mean() > 0.7
    assert reddish(torso).mean() > 0.7
    hands = np.concatenate([result[395:400, 320:332], result[395:400, 148:160]])
    assert not reddish(hands).any()  # the cuffs end at the wrists: the hands stay


def test_short_sleeves_leave_the_forearms_bare():
    person, body = drawn_person()
    result = np.asarray(render_tryon(person, images.garment_photo(RED), body=body))
    forearms = np.concatenate([result[300:370, 318:335], result[300:370, 145:162]])
    assert not reddish(forearms).any()
    assert (
        np.abs(
            forearms.astype(int) - np.concatenate([person[300:370, 318:335], person[300:370, 145:162]])
        ).max()
        <= 2
    )


def test_a_sleeveless_top_has_no_sleeves():
    image = Image.new("RGB", (400, 420), "white")
    ImageDraw.Draw(image).polygon(
        [(150, 60), (250, 60), (320, 140), (330, 330), (70, 330), (80, 140)], fill=RED
    )
    garment = analyze_garment(images.encode(image, "PNG"))
    assert garment.kind == "top" and not garment.sleeves and not garment.has_sleeves


# -- framing into 576x1024 / 720x1280 ------------------------------------------------------------
def test_a_wide_photo_is_cropped_around_the_person_not_padded():
    rgb = np.random.default_rng(1).integers(0, 255, (1024, 800, 3), dtype=np.uint8)
    person = np.zeros((1024, 800), bool)
    person[20:1000, 420:620] = True  # off centre
    assert crop_box(person, 576 / 1024) == (224, 0, 800, 1024)
    framed = fit_frame(rgb, person, (576, 1024))
    assert framed.shape == (1024, 576, 3) and np.array_equal(framed, rgb[:, 224:800])


def test_padding_takes_the_background_and_never_repeats_the_edge_rows():
    """A person wider than the frame allows, head and feet touching the photo's edges: the rows added
    above and below are the wall's colour (blurred), not a stretched column of hair."""
    wall, hair = np.array([40, 90, 200]), np.array([30, 20, 10])
    rgb = np.empty((600, 600, 3), np.uint8)
    rgb[:] = wall + np.random.default_rng(2).integers(-6, 7, (600, 600, 3))
    person = np.zeros((600, 600), bool)
    person[:, 60:540] = True
    rgb[person] = hair
    framed = fit_frame(rgb, person, (576, 1024)).astype(int)
    assert framed.shape == (1024, 576, 3)
    rows = np.where((np.abs(framed - hair).max(axis=2) <= 3).any(axis=1))[0]  # where the photo is
    top, bottom = rows.min(), rows.max()
    assert top > 100 and 1023 - bottom > 100  # it was padded above and below
    padding = np.concatenate([framed[: top - 2], framed[bottom + 3 :]])
    assert np.abs(padding - wall).max(axis=2).mean() < 25  # the wall's colour
    assert (np.abs(padding - hair).max(axis=2) <= 20).mean() < 0.01  # no hair smeared into it


def test_render_at_provider_resolution_keeps_the_person_whole():
    person, body = drawn_person()
    framed = np.asarray(render_tryon(person, images.garment_photo(RED), body=body, resolution=1024))
    assert framed.shape == (1024, 576, 3)
    # 480x800 is wider than 9:16: columns are cropped, nothing is padded, the head and feet are in.
    scale = 1024 / 800
    face = framed[int(60 * scale) : int(110 * scale), 288 - 20 : 288 + 20].astype(int)
    assert (np.abs(face - (225, 180, 150)).max(axis=2) < 40).mean() > 0.8


def stretched_columns(image: np.ndarray) -> int:
    """Columns of the top and bottom fifths holding >= 60 identical rows of something with texture
    across (in stripes of 5+ columns): what repeating the edge rows makes, as in scripts/engine_report.py."""
    import cv2

    h = image.shape[0]
    count = 0
    for rows in (slice(0, h // 5), slice(h - h // 5, h)):
        band = image[rows].astype(np.int16)
        across = np.zeros(band.shape[:2], bool)
        across[:, 2:] = np.abs(band[:, 2:] - band[:, :-2]).max(axis=2) >= 4
        same = (np.abs(np.diff(band, axis=0)).max(axis=2) <= 1) & across[1:] & across[:-1]
        run = best = np.zeros(band.shape[1], np.int32)
        for line in same:
            run = (run + 1) * line
            best = np.maximum(best, run)
        long = (best + 1 >= 60).astype(np.uint8)[None]
        count += int(cv2.dilate(cv2.erode(long, np.ones((1, 5), np.uint8)), np.ones((1, 5), np.uint8)).sum())
    return count


@pytest.mark.parametrize(
    "name, old_smears", [("fitdit_model_1.jpg", False), ("ootd_model_052472_0.jpg", True)]
)
def test_shared_photos_framed_without_stretched_edges(name, old_smears):
    from .test_engine import shared

    path = shared("person", name)
    for resolution, size in ((1024, (576, 1024)), (1280, (720, 1280))):
        framed = np.asarray(render_tryon(path, images.garment_photo(RED), resolution=resolution))
        assert framed.shape == (size[1], size[0], 3)
        assert stretched_columns(framed) == 0
    # The figure does catch the old framing (repeat the edge rows) on the same photo.
    import cv2

    rgb = np.asarray(Image.open(path).convert("RGB"))
    scale = min(576 / rgb.shape[1], 1024 / rgb.shape[0])
    small = cv2.resize(
        rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    top = (1024 - small.shape[0]) // 2
    old = cv2.copyMakeBorder(
        small, top, 1024 - small.shape[0] - top, 0, 576 - small.shape[1], cv2.BORDER_REPLICATE
    )
    assert (
        stretched_columns(old) > 0
    ) == old_smears  # the person in 052472 touches the frame: the old way stretched her
