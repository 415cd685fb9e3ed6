"""The offline engine: unit behaviour on images drawn here, and the real photos of ../shared/images."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from django_tryon.engine import RenderError, analyze_garment, check_person, render_tryon
from django_tryon.engine.body import Body
from django_tryon.engine.render import body_region
from django_tryon.engine.warp import ThinPlateSpline, warp_rgba

from . import images

SHARED = Path(
    os.environ.get("TRYON_SHARED_IMAGES")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "images"
)


def shared(*parts: str) -> Path:
    """A file of ../shared/images; required under CI, skipped locally when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is required under CI")
        pytest.skip("../shared/images is not here")
    return path


def dress_photo() -> bytes:
    image = Image.new("RGB", (400, 700), "white")
    ImageDraw.Draw(image).polygon(
        [(150, 20), (250, 20), (270, 200), (360, 680), (40, 680), (130, 200)], fill=(30, 120, 60)
    )
    return images.encode(image, "PNG")


# -- garments ------------------------------------------------------------------------------------
def test_garment_kinds_and_key_points():
    tee = analyze_garment(images.garment_photo())
    assert tee.kind == "top" and tee.pieces == 1 and tee.background_clean and not tee.problems
    assert {"shoulder_l", "shoulder_r", "neck_l", "neck_r", "hem_l", "hem_r", "sleeve_l", "sleeve_r"} <= set(
        tee.keypoints
    )
    assert (
        tee.keypoints["sleeve_l"][0]
        < tee.keypoints["shoulder_l"][0]
        < tee.keypoints["shoulder_r"][0]
        < tee.keypoints["sleeve_r"][0]
    )
    trousers = analyze_garment(images.garment_photo(kind="bottom"))
    assert trousers.kind == "bottom" and "crotch" in trousers.keypoints and "knee_l_out" in trousers.keypoints
    assert analyze_garment(dress_photo()).kind == "one_piece"
    assert analyze_garment(dress_photo(), kind="top").kind == "top"  # the caller's word wins


def test_cut_out_is_tight_and_transparent_around():
    tee = analyze_garment(images.garment_photo())
    alpha = tee.rgba[..., 3]
    assert alpha[0, 0] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255
    assert tee.rgba.shape[0] < 400 and tee.rgba.shape[1] < 400


def test_two_garments_and_a_busy_background_are_reported():
    two = Image.new("RGB", (800, 400), "white")
    two.paste(Image.open(io.BytesIO(images.garment_photo())), (0, 0))
    two.paste(Image.open(io.BytesIO(images.garment_photo((20, 60, 200)))), (400, 0))
    assert analyze_garment(np.asarray(two)).pieces == 2
    busy = images.noise_image(400, 400)
    busy.paste(Image.open(io.BytesIO(images.garment_photo())).resize((200, 200)), (100, 100))
    assert not analyze_garment(np.asarray(busy)).background_clean


def test_no_garment_is_an_error():
    with pytest.raises(ValueError):
        analyze_garment(np.full((300, 300, 3), 255, np.uint8))


# -- warping -------------------------------------------------------------------------------------
def test_thin_plate_spline_interpolates_its_control_points():
    src = np.array([[0, 0], [100, 0], [0, 100], [100, 100], [50, 50]], float)
    dst = src * 1.5 + [10, 20]
    spline = ThinPlateSpline(src, dst, smoothing=0)
    assert np.allclose(spline(src), dst, atol=1e-6)
    assert np.allclose(spline(np.array([[25.0, 75.0]])), [[47.5, 132.5]], atol=1e-6)  # affine stays affine


def test_warp_moves_the_cut_out():
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 10:40] = (255, 0, 0, 255)
    src = np.array([[10, 10], [40, 10], [10, 40], [40, 40]], float)
    patch, (x0, y0, x1, y1) = warp_rgba(rgba, src, src + np.array([100, 60]), (300, 300))
    canvas = np.zeros((300, 300, 4), np.uint8)
    canvas[y0:y1, x0:x1] = patch
    assert canvas[85, 125, 3] == 255 and canvas[85, 125, 0] == 255 and canvas[20, 20, 3] == 0


# -- a drawn person with known landmarks -----------------------------------------------------------
#: Where drawn_person(hand_in_front=True) rests its image-right hand on the shirt.
HAND_ON_SHIRT = (258, 292, 292, 335)


def drawn_person(shirt=(60, 90, 160), trousers=(40, 40, 50), hand_in_front=False) -> tuple[np.ndarray, Body]:
    """A figure drawn on grey, with its BlazePose-style landmarks and mask given by hand."""
    w, h = 480, 800
    image = Image.new("RGB", (w, h), (200, 200, 200))
    mask = Image.new("L", (w, h), 0)
    for canvas, colour in ((ImageDraw.Draw(image), None), (ImageDraw.Draw(mask), 255)):
        skin = colour or (225, 180, 150)
        canvas.ellipse((200, 40, 280, 130), fill=skin)
        canvas.rectangle((170, 140, 310, 420), fill=colour or shirt)
        canvas.rectangle((140, 150, 168, 400), fill=skin)
        canvas.rectangle((312, 150, 340, 400), fill=skin)
        canvas.rectangle((180, 420, 235, 760), fill=colour or trousers)
        canvas.rectangle((245, 420, 300, 760), fill=colour or trousers)
        if hand_in_front:
            canvas.ellipse(HAND_ON_SHIRT, fill=skin)
    image = image.filter(ImageFilter.GaussianBlur(1))
    lm = np.zeros((33, 3))
    lm[:, 2] = 0.99
    points = {
        0: (240, 90),
        1: (230, 80),
        2: (228, 80),
        3: (226, 80),
        4: (250, 80),
        5: (252, 80),
        6: (254, 80),
        7: (215, 85),
        8: (265, 85),
        9: (232, 110),
        10: (248, 110),
        11: (300, 150),
        12: (180, 150),
        13: (326, 270),
        14: (154, 270),
        15: (326, 390),
        16: (154, 390),
        17: (326, 400),
        18: (154, 400),
        19: (326, 402),
        20: (154, 402),
        21: (322, 395),
        22: (158, 395),
        23: (270, 420),
        24: (210, 420),
        25: (272, 590),
        26: (208, 590),
        27: (272, 750),
        28: (208, 750),
        29: (272, 758),
        30: (208, 758),
        31: (280, 760),
        32: (200, 760),
    }
    if hand_in_front:  # wrist, pinky, index, thumb of the hand drawn on the shirt
        points.update({15: (275, 300), 17: (268, 318), 19: (282, 320), 21: (264, 310)})
    for i, (x, y) in points.items():
        lm[i, :2] = (x, y)
    body = Body(w, h, lm, (np.asarray(mask) / 255).astype(np.float32), [(205.0, 45.0, 275.0, 125.0, 0.9)])
    return np.asarray(image), body


def unchanged_share(before: np.ndarray, after: np.ndarray, region: np.ndarray) -> float:
    same = (np.abs(before.astype(int) - after.astype(int)) <= 2).all(axis=2)
    return float(same[region].mean())


@pytest.mark.parametrize("garments", ["top", "bottom", "both", "dress"])
def test_render_changes_only_the_body_and_never_the_face(garments):
    person, body = drawn_person()
    top = {"top": images.garment_photo(), "both": images.garment_photo(), "dress": dress_photo()}.get(
        garments
    )
    bottom = images.garment_photo(kind="bottom") if garments in ("bottom", "both") else None
    result = np.asarray(render_tryon(person, top, bottom, body=body))
    assert result.shape == person.shape
    inside = body_region(body) > 0
    changed = ~(np.abs(person.astype(int) - result.astype(int)) <= 2).all(axis=2)
    assert changed[inside].mean() > 0.15  # something was put on
    outside_unchanged = unchanged_share(person, result, ~inside)
    assert outside_unchanged >= (0.97 if garments == "dress" else 0.999)
    face = np.zeros(person.shape[:2], bool)
    face[45:125, 205:275] = True
    assert unchanged_share(person, result, face) == 1.0


def test_top_colour_lands_on_the_torso():
    person, body = drawn_person()
    result = np.asarray(render_tryon(person, images.garment_photo((200, 40, 40)), body=body)).astype(int)
    torso = result[200:380, 190:290]
    reddish = (torso[..., 0] > 120) & (torso[..., 1] < 110) & (torso[..., 2] < 110)
    assert reddish.mean() > 0.7


def test_a_hand_resting_on_the_body_stays_and_the_shirt_around_it_is_dressed():
    person, body = drawn_person(hand_in_front=True)
    result = np.asarray(render_tryon(person, images.garment_photo((200, 40, 40)), body=body)).astype(int)
    x0, y0, x1, y1 = HAND_ON_SHIRT
    ys, xs = np.ogrid[0 : person.shape[0], 0 : person.shape[1]]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    ellipse = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    hand = ellipse <= 0.7**2
    assert unchanged_share(person, result.astype(np.uint8), hand) > 0.97
    # The shirt just around the fingers (well inside the zone where the hand may be) is dressed too.
    ring = (ellipse >= 1.3**2) & (ellipse <= 1.6**2) & (ys > 290) & (ys < 350) & (xs > 175) & (xs < 305)
    reddish = (result[..., 0] > 120) & (result[..., 1] < 110) & (result[..., 2] < 110)
    assert ring.sum() > 100 and reddish[ring].mean() > 0.8


def test_shading_keeps_the_garment_colour_on_dark_legs_below_a_light_top():
    """The light top, the grey background and bare skin must not make the dark trousers' folds-free
    surface read as "in shadow": the new trousers keep their own brightness."""
    person, body = drawn_person(shirt=(235, 235, 235), trousers=(45, 45, 45))
    result = np.asarray(
        render_tryon(person, None, images.garment_photo((150, 150, 150), kind="bottom"), body=body)
    )
    thighs = result[450:580, 190:290].astype(float)
    assert abs(np.median(thighs) - 150) < 10


def test_resolutions_follow_the_provider():
    person, body = drawn_person()
    assert render_tryon(person, images.garment_photo(), body=body, resolution=1024).size == (576, 1024)
    assert render_tryon(person, images.garment_photo(), body=body, resolution=1280).size == (720, 1280)
    with pytest.raises(RenderError) as info:
        render_tryon(person, images.garment_photo(), body=body, resolution=720)
    assert info.value.code == "InvalidParameter"


def test_render_errors_carry_provider_codes():
    person, body = drawn_person()
    with pytest.raises(RenderError) as info:
        render_tryon(person, body=body)
    assert info.value.code == "InvalidGarment"
    with pytest.raises(RenderError) as info:
        render_tryon(np.full((400, 300, 3), 120, np.uint8), images.garment_photo())
    assert info.value.code == "InvalidPerson"


# -- check_person on made-up images --------------------------------------------------------------
def test_check_person_on_empty_dark_and_blurred_pictures():
    assert check_person(np.full((600, 400, 3), 235, np.uint8)).verdict in ("no_person", "blurry")
    assert check_person(np.full((600, 400, 3), 10, np.uint8)).verdict == "too_dark"
    soft = Image.open(io.BytesIO(images.person_photo())).filter(ImageFilter.GaussianBlur(12))
    assert check_person(soft).verdict in ("blurry", "no_person")
    landscape = images.noise_image(600, 400)
    verdict = check_person(landscape)
    assert not verdict.ok and verdict.as_dict()["verdict"] == verdict.verdict


def test_missing_extra_names_the_install_command():
    code = "import sys; sys.modules['mediapipe'] = None; import django_tryon.engine"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and 'pip install "django-tryon[engine]"' in result.stderr


# -- real photos -----------------------------------------------------------------------------------
def test_every_shared_person_is_accepted():
    for path in sorted(shared("person").iterdir()):
        verdict = check_person(path)
        assert verdict.ok, (path.name, verdict.verdict, verdict.reasons)


@pytest.mark.parametrize(
    "name, allowed",
    [
        ("ultralytics_bus.jpg", {"several_people"}),
        ("openpose_COCO_val2014_000000000536.jpg", {"several_people"}),
        ("opencv_basketball1.png", {"several_people"}),
        ("skimage_coffee.png", {"no_person"}),
        ("opencv_building.jpg", {"no_person"}),
        ("ootd_model_01008_00.jpg", {"not_full_body"}),
        ("skimage_astronaut.png", {"not_full_body"}),
        ("fashn_model.webp", {"not_full_body", "not_front_facing"}),
        ("opencv_messi5.jpg", {"not_full_body", "not_front_facing"}),
    ],
)
def test_shared_negatives_are_refused_for_the_right_reason(name, allowed):
    verdict = check_person(shared("negative", name))
    assert not verdict.ok and verdict.verdict in allowed, verdict


@pytest.mark.parametrize(
    "person, top, bottom",
    [
        ("fitdit_model_1.jpg", "top/idm_cloth_09164_00.jpg", None),
        ("catvton_men_Simon_1.png", None, "bottom/ootd_garment_051946_1.jpg"),
        ("ootd_model_052472_0.jpg", "dress/fitdit_garment_11.jpg", None),
        ("ootd_model_051918_0.jpg", "top/ootd_garment_00055_00.jpg", "bottom/ootd_garment_051991_1.jpg"),
    ],
)
def test_shared_pairs_render(person, top, bottom):
    person_path = shared("person", person)
    result = render_tryon(person_path, top and shared(*top.split("/")), bottom and shared(*bottom.split("/")))
    original = Image.open(person_path)
    assert result.size == original.size
    assert (
        unchanged_share(
            np.asarray(original.convert("RGB")), np.asarray(result), np.ones(result.size[::-1], bool)
        )
        < 0.97
    )


@pytest.mark.parametrize(
    "garment",
    ["top/ootd_garment_049947_1.jpg", "top/ootd_garment_049920_1.jpg", "dress/ootd_garment_051998_1.jpg"],
)
def test_shared_long_sleeves_are_found(garment):
    analysis = analyze_garment(shared(*garment.split("/")))
    assert analysis.kind in ("top", "one_piece") and set(analysis.sleeves) == {"l", "r"}


# -- command line ----------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django_tryon.engine", *args], capture_output=True, text=True, timeout=120
    )


def last_json(text: str) -> dict:
    import json

    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def test_cli_render_and_errors(tmp_path):
    person = shared("person", "fitdit_model_1.jpg")
    top = tmp_path / "tee.jpg"
    top.write_bytes(images.garment_photo())
    out = tmp_path / "out.png"
    done = run_cli(
        "render", "--person", str(person), "--top", str(top), "--resolution", "1024", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["width"] == 576 and Image.open(out).size == (576, 1024)
    missing = run_cli("render", "--person", str(tmp_path / "nope.jpg"), "--top", str(top), "--out", str(out))
    assert missing.returncode == 2 and last_json(missing.stdout)["error"]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 400), (128, 128, 128)).save(blank)
    refused = run_cli("render", "--person", str(blank), "--top", str(top), "--out", str(out))
    assert refused.returncode == 2 and last_json(refused.stdout)["error"] == "InvalidPerson"


def test_cli_check_person_prints_one_json_verdict():
    ok = run_cli("check-person", str(shared("person", "catvton_men_Simon_1.png")))
    assert ok.returncode == 0 and last_json(ok.stdout)["verdict"] == "ok"
    assert ok.stderr == "" and len(ok.stdout.splitlines()) == 1  # no TensorFlow Lite / absl lines
    refused = run_cli("check-person", str(shared("negative", "ultralytics_bus.jpg")))
    verdict = last_json(refused.stdout)
    assert refused.returncode == 1 and verdict["verdict"] == "several_people" and verdict["reasons"]


def test_cli_analyze_garment(tmp_path):
    top = tmp_path / "tee.jpg"
    top.write_bytes(images.garment_photo())
    result = run_cli("analyze-garment", str(top))
    assert result.returncode == 0 and last_json(result.stdout)["kind"] == "top"
