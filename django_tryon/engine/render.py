"""Put garments on a person: place key points on the body, warp, shade, and blend inside the body."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np
from PIL import Image

from . import body as B
from .body import Body, find_body
from .fit import fit_frame
from .garment import GarmentAnalysis, analyze_garment
from .images import ImageInput, to_rgb_array
from .sleeves import Sleeve
from .warp import warp_rgba

#: Provider resolutions: -1 keeps the person photo's size.
OUTPUT_SIZES = {1024: (576, 1024), 1280: (720, 1280)}
#: Padding around each hand's landmarks, as a share of the shoulder width.
HAND_RADIUS = 0.11
#: Fingertips lie about this far from the wrist, in wrist-to-knuckle distances (BlazePose marks knuckles).
FINGER_REACH = 2.0
#: Below this share of skin-coloured pixels in a hand's or arm's zone, the whole zone is kept (a sleeve,
#: a glove, a hand in shadow).
SKIN_MIN_SHARE = 0.15
#: How far down the arm (share of the shoulder width) a sleeveless top's strap keeps the arm unprotected:
#: the round end of the protected arm must stay clear of the strap on top of the shoulder.
STRAP_COVER = 0.28
#: How far (share of image height) a garment may reach beyond the person's silhouette.
BODY_MARGIN = 0.0125


class RenderError(ValueError):
    """The person photo cannot be dressed; ``code`` is the provider's error code."""

    def __init__(self, message: str, code: str = "InvalidPerson") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Frame:
    """The body's axes: ``u`` points to image-right along the shoulders, ``d`` down the torso."""

    sh_l: np.ndarray
    sh_r: np.ndarray
    hip_l: np.ndarray
    hip_r: np.ndarray
    u: np.ndarray
    d: np.ndarray
    shoulder_width: float
    torso: float
    arms: dict[str, list[np.ndarray]]  # image side → [shoulder, elbow, wrist]
    legs: dict[str, list[np.ndarray]]  # image side → [hip, knee, ankle]

    @classmethod
    def of(cls, body: Body) -> Frame:
        left_is_person_right = body.point(B.SHOULDER_R)[0] <= body.point(B.SHOULDER_L)[0]
        sides = {"l": "R", "r": "L"} if left_is_person_right else {"l": "L", "r": "R"}
        idx = {
            "L": (B.SHOULDER_L, B.ELBOW_L, B.WRIST_L, B.HIP_L, B.KNEE_L, B.ANKLE_L),
            "R": (B.SHOULDER_R, B.ELBOW_R, B.WRIST_R, B.HIP_R, B.KNEE_R, B.ANKLE_R),
        }
        arms = {s: [body.point(i) for i in idx[p][:3]] for s, p in sides.items()}
        legs = {s: [body.point(i) for i in idx[p][3:]] for s, p in sides.items()}
        sh_l, sh_r = arms["l"][0], arms["r"][0]
        hip_l, hip_r = legs["l"][0], legs["r"][0]
        width = float(np.linalg.norm(sh_r - sh_l)) or 1.0
        u = (sh_r - sh_l) / width
        down = (hip_l + hip_r) / 2 - (sh_l + sh_r) / 2
        torso = float(np.linalg.norm(down)) or 1.0
        d = down / torso
        return cls(sh_l, sh_r, hip_l, hip_r, u, d, width, torso, arms, legs)

    @property
    def neck(self) -> np.ndarray:
        return (self.sh_l + self.sh_r) / 2


def body_region(body: Body) -> np.ndarray:
    """Where garments may be painted: the person's silhouette grown by ``BODY_MARGIN`` of the height."""
    reach = max(1, round(BODY_MARGIN * body.height))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate((body.mask >= 0.5).astype(np.uint8), kernel)


def _along(polyline: list[np.ndarray], distance: float) -> np.ndarray:
    """The point ``distance`` pixels along a polyline (extrapolating past its end)."""
    for a, b in pairwise(polyline):
        seg = float(np.linalg.norm(b - a)) or 1e-6
        if distance <= seg:
            return a + (b - a) * (distance / seg)
        distance -= seg
    a, b = polyline[-2], polyline[-1]
    return b + (b - a) / (float(np.linalg.norm(b - a)) or 1e-6) * distance


def _length(polyline: list[np.ndarray]) -> float:
    return float(sum(np.linalg.norm(b - a) for a, b in pairwise(polyline)))


SEAM_FACTOR = 1.22  # shoulder seam-to-seam width / distance between the shoulder joints
ARMHOLE_FACTOR = 1.05  # a sleeveless top's width at its straps / distance between the shoulder joints
HIP_FACTOR = 1.9  # body width at the hips / distance between the hip joints
TEE_LENGTH = 1.45  # shoulder-to-hem length / shoulder width of a regular T-shirt
WAIST_ABOVE_HIPS = 0.14  # how far a waistband sits above the hip joints / torso length
TROUSER_LENGTH = 2.6  # waist-to-hem length / waist width of full-length trousers


def _perp_out(direction: np.ndarray, side: str, f: Frame) -> np.ndarray:
    """The unit normal of ``direction`` pointing away from the body's centre line on ``side``."""
    n = np.array([-direction[1], direction[0]]) / (float(np.linalg.norm(direction)) or 1.0)
    outward = -f.u if side == "l" else f.u
    return n if float(np.dot(n, outward)) >= 0 else -n


def _upper_pairs(g: GarmentAnalysis, f: Frame) -> tuple[list, list, float, float]:
    """Key-point pairs for the upper body (tops and one-pieces); also the horizontal and vertical scales.

    Horizontal size comes from the shoulders, vertical size from the torso, each scaled by the
    garment's own proportions (a crop top ends higher, a long tee lower).
    """
    kp = g.keypoints
    g_width = max(kp["shoulder_r"][0] - kp["shoulder_l"][0], 1.0)
    g_top = (kp["shoulder_l"][1] + kp["shoulder_r"][1]) / 2
    g_mid = (kp["shoulder_l"][0] + kp["shoulder_r"][0]) / 2
    seam = f.shoulder_width * (SEAM_FACTOR if g.has_sleeves else ARMHOLE_FACTOR)
    kh = seam / g_width
    top = f.neck - f.d * 0.04 * f.torso
    if g.kind == "one_piece":
        g_waist = (kp["waist_l"][1] + kp["waist_r"][1]) / 2
        kv = 0.66 * f.torso / max(g_waist - g_top, 1.0)
    else:
        ratio = (max(kp["hem_l"][1], kp["hem_r"][1]) - g_top) / g_width
        depth = 1.04 * f.torso * float(np.clip(ratio / TEE_LENGTH, 0.5, 1.2))
        kv = depth / max(kp["hem_l"][1] - g_top, 1.0)

    def place(x: float, y: float) -> np.ndarray:
        return top + f.u * (x - g_mid) * kh + f.d * (y - g_top) * kv

    names = ["shoulder_l", "shoulder_r", "neck_l", "neck_r", "side_l", "side_r"]
    names += ["hem_l", "hem_r"] if g.kind == "top" else []
    src = [kp[n] for n in names]
    dst = [place(*kp[n]) for n in names]
    for side in ("l", "r"):
        if f"sleeve_{side}" not in kp:
            continue
        shoulder_pt, tip, armpit = (np.array(kp[f"{n}_{side}"]) for n in ("shoulder", "sleeve", "armpit"))
        opening = (tip + armpit) / 2
        arm = f.arms[side]
        seam_point = place(*shoulder_pt)
        length = float(
            np.clip(np.linalg.norm(opening - shoulder_pt) * kh * 0.85, 0.12 * _length(arm), _length(arm))
        )
        path = [seam_point, *arm[1:]]
        centre = _along(path, length)
        direction = centre - _along(path, max(length - 5.0, 0.0))
        half = 0.15 * f.shoulder_width
        out = _perp_out(direction, side, f)
        src += [tuple(tip), tuple(armpit), tuple(opening)]
        dst += [centre + out * half, place(*armpit), centre - out * half * 0.2]
    return src, dst, kh, kv


#: A hanging sleeve at least this long (share of the arm, at the garment's scale) is a long sleeve:
#: its cuff ends at the wrist.
LONG_SLEEVE = 0.75
#: A sleeve's half width on the arm, as shares of the shoulder width: at least the arm, at most a flare.
SLEEVE_HALF = (0.1, 0.22)


def _sleeve_pairs(sleeve: Sleeve, f: Frame, kh: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Key-point pairs that lay a hanging sleeve along its arm, and the arm length it covers.

    The root (shoulder seam, armpit) goes to the shoulder; each cross-section further down goes to the
    point as far along the upper arm and forearm, at the sleeve's width (scaled like the torso,
    bounded by ``SLEEVE_HALF``), its outer edge on the arm's outer side. Long sleeves end at the wrist.
    """
    side, arm = sleeve.side, f.arms[sleeve.side]
    arm_length = _length(arm)
    length = sleeve.length * kh
    length = arm_length if length >= LONG_SLEEVE * arm_length else max(length, 0.15 * arm_length)
    outward = -f.u if side == "l" else f.u
    sw = f.shoulder_width
    (seam, armpit), *rest = sleeve.sections
    src = [seam, armpit]
    dst = [
        arm[0] + outward * 0.11 * sw - f.d * 0.04 * f.torso,
        arm[0] + f.d * 0.35 * sw - outward * 0.02 * sw,
    ]
    root = (np.array(seam) + np.array(armpit)) / 2
    axis = (np.add(*rest[-1]) / 2) - root
    for outer, inner in rest:
        t = float(
            np.clip(
                np.dot((np.add(outer, inner) / 2) - root, axis) / max(float(np.dot(axis, axis)), 1e-6),
                0.05,
                1.0,
            )
        )
        centre = _along(arm, t * length)
        direction = centre - _along(arm, max(t * length - 5.0, 0.0))
        out = _perp_out(direction, side, f)
        half = float(
            np.clip(
                np.linalg.norm(np.subtract(outer, inner)) * kh / 2, SLEEVE_HALF[0] * sw, SLEEVE_HALF[1] * sw
            )
        )
        src += [outer, inner]
        dst += [centre + out * half, centre - out * half]
    return np.array(src, dtype=float), np.array(dst, dtype=float), length


def _leg_point(f: Frame, side: str, fraction: float) -> np.ndarray:
    leg = f.legs[side]
    return _along(leg, _length(leg) * fraction)


def _lower_pairs(g: GarmentAnalysis, f: Frame, kh_upper: float | None = None) -> tuple[list, list]:
    """Key-point pairs from the waist down: trousers follow hips, knees and ankles; skirts flare."""
    kp = g.keypoints
    hip_mid = (f.hip_l + f.hip_r) / 2
    hip_joints = float(np.linalg.norm(f.hip_r - f.hip_l)) or f.shoulder_width * 0.55
    g_waist_w = max(kp["waist_r"][0] - kp["waist_l"][0], 1.0)
    g_waist_y = (kp["waist_l"][1] + kp["waist_r"][1]) / 2
    if g.kind == "one_piece":
        waist_mid = f.neck + f.d * 0.62 * f.torso
        waist_half = g_waist_w * (kh_upper or 1.0) / 2
    else:
        waist_mid = hip_mid - f.d * WAIST_ABOVE_HIPS * f.torso
        waist_half = hip_joints * HIP_FACTOR / 2
    kh = kh_upper or (2 * waist_half / g_waist_w)
    src = [kp["waist_l"], kp["waist_r"]]
    dst = [waist_mid - f.u * waist_half, waist_mid + f.u * waist_half]
    hem_y = max(p[1] for name, p in kp.items() if name.startswith("hem"))
    reference = g_waist_w if g.kind == "bottom" else (2 * waist_half / kh)
    fraction = float(np.clip((hem_y - g_waist_y) / max(reference, 1.0) / TROUSER_LENGTH, 0.16, 1.0))
    if g.kind == "one_piece":  # the skirt of a dress starts above the hips: measure from the waist
        fraction = float(np.clip(fraction * 1.15 - 0.1, 0.1, 1.0))
    if "crotch" in kp:
        src.append(kp["crotch"])
        dst.append(hip_mid + f.d * 0.3 * f.torso)
        for side in ("l", "r"):
            outward = -f.u if side == "l" else f.u
            for level, share in (("knee", 0.5), ("hem", 1.0)):
                g_out, g_in = kp[f"{level}_{side}_out"], kp[f"{level}_{side}_in"]
                half = float(np.clip(abs(g_out[0] - g_in[0]) * kh / 2, 0.22 * hip_joints, 0.8 * hip_joints))
                centre = _leg_point(f, side, fraction * share)
                src += [g_out, g_in]
                dst += [centre + outward * half, centre - outward * half]
    else:
        centre = (_leg_point(f, "l", fraction) + _leg_point(f, "r", fraction)) / 2
        g_hem_half = (kp["hem_r"][0] - kp["hem_l"][0]) / 2
        half = float(np.clip(g_hem_half * kh, waist_half * 1.0, waist_half * 2.2))
        src += [kp["hem_l"], kp["hem_r"]]
        dst += [centre - f.u * half, centre + f.u * half]
    return src, dst


def _below(point: np.ndarray, down: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels on the ``down`` side of the line through ``point`` perpendicular to ``down``."""
    ys, xs = np.ogrid[0 : shape[0], 0 : shape[1]]
    return ((xs - point[0]) * down[0] + (ys - point[1]) * down[1]) > 0


def _thick_polyline(shape: tuple[int, int], points: list[np.ndarray], width: float) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(np.array(points)).astype(np.int32)
    cv2.polylines(canvas, [pts], False, 255, thickness=max(2, int(width)), lineType=cv2.LINE_AA)
    for p in pts:
        cv2.circle(canvas, tuple(int(v) for v in p), max(1, int(width / 2)), 255, -1, lineType=cv2.LINE_AA)
    return canvas.astype(np.float32) / 255


def _protected(
    shape: tuple[int, int],
    body: Body,
    f: Frame,
    sleeve_cover: dict[str, float],
    restore_face: bool,
    skin: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Regions a garment must not paint: the head and face, the hands, and bare arms below the sleeves.

    Returns two 0..1 masks: the exact one, where the hands and bare arms are their ``skin``-coloured
    pixels (see ``_skin``) so the old clothes around fingers and forearms resting on the body are
    dressed too; and the one with the limbs' whole zones, for skirts painted past the silhouette.
    """
    head = np.zeros(shape, np.float32)
    # Head: everything above the neckline, in a band around the head landmarks.
    points = body.landmarks[list(B.HEAD_POINTS), :2]
    centre = points.mean(axis=0)
    radius = max(float(np.linalg.norm(points - centre, axis=1).max()) * 1.9, f.shoulder_width * 0.42)
    cv2.circle(head, tuple(int(v) for v in centre), int(radius), 1.0, -1)
    for x0, y0, x1, y1, _ in body.faces if restore_face else []:
        pad = 0.15 * (x1 - x0)
        cv2.rectangle(head, (int(x0 - pad), int(y0 - pad)), (int(x1 + pad), int(y1 + pad)), 1.0, -1)
    neck_line = f.neck - f.d * 0.06 * f.torso
    head[_below(neck_line, f.d, shape)] = 0
    limbs = _hand_zones(shape, body, f)
    # Bare arms: the part of each arm beyond the sleeve, as a thick line.
    for side, arm in f.arms.items():
        covered = sleeve_cover.get(side, 0.0)
        if covered >= _length(arm):
            continue
        start = _along(arm, max(covered, 0.0))
        steps = np.cumsum([np.linalg.norm(b - a) for a, b in pairwise(arm)])
        rest = [start] + [p for p, dist in zip(arm[1:], steps, strict=True) if dist > covered]
        limbs.append(_thick_polyline(shape, rest, f.shoulder_width * 0.34) > 0)
    zones = np.zeros(shape, bool)
    exact = np.zeros(shape, bool)
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, round(0.02 * f.shoulder_width)) + 1,) * 2)
    for zone in limbs:  # each hand and arm on its own: a sleeved arm keeps its whole zone
        zones |= zone
        if skin is None or not zone.any() or skin[zone].mean() < SKIN_MIN_SHARE:
            exact |= zone
            continue
        bare = cv2.morphologyEx((skin & zone).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        exact |= (cv2.dilate(bare, grow) > 0) & zone
    return np.maximum(head, exact.astype(np.float32)), np.maximum(head, zones.astype(np.float32))


def _hand_zones(shape: tuple[int, int], body: Body, f: Frame) -> list[np.ndarray]:
    """Where each hand may be: the hull of its landmarks stretched to the fingertips (BlazePose marks
    the knuckles), padded by ``HAND_RADIUS``."""
    zones = []
    radius = int(f.shoulder_width * HAND_RADIUS)
    for wrist, *knuckles in B.HANDS:
        zone = np.zeros(shape, np.uint8)
        points = [body.point(i) for i in (wrist, *knuckles)]
        tips = points[0] + (np.mean(points[1:3], axis=0) - points[0]) * FINGER_REACH
        cv2.fillConvexPoly(zone, cv2.convexHull(np.round([*points, tips]).astype(np.int32)), 1)
        for x, y in [*points, tips]:
            cv2.circle(zone, (int(x), int(y)), radius, 1, -1)
        zones.append(zone > 0)
    return zones


def _skin(rgb: np.ndarray, body: Body) -> np.ndarray | None:
    """Pixels coloured like the skin of the largest detected face (its cheeks' chroma in YCrCb);
    None without a usable face."""
    h, w = rgb.shape[:2]
    faces = [b for b in body.faces if b[2] > b[0] and b[3] > b[1]]
    if not faces:
        return None
    x0, y0, x1, y1, _ = max(faces, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    cheeks = rgb[
        int(np.clip(y0 + 0.45 * (y1 - y0), 0, h - 1)) : int(np.clip(y0 + 0.8 * (y1 - y0), 1, h)),
        int(np.clip(x0 + 0.25 * (x1 - x0), 0, w - 1)) : int(np.clip(x0 + 0.75 * (x1 - x0), 1, w)),
    ]
    if cheeks.size < 30:
        return None
    sample = (
        cv2.cvtColor(np.ascontiguousarray(cheeks), cv2.COLOR_RGB2YCrCb)
        .reshape(-1, 3)[:, 1:]
        .astype(np.float32)
    )
    centre = np.median(sample, axis=0)
    spread = np.maximum(np.percentile(np.abs(sample - centre), 90, axis=0), 4.0)
    chroma = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
    return (np.abs(chroma - centre) <= 2.5 * spread + 4).all(axis=2)


def _shading(rgb: np.ndarray, clothes: np.ndarray) -> np.ndarray:
    """Relative light from the person's own clothes (folds, shadows) as a multiplier around 1.

    A median filter first removes small prints of the old clothes, so only folds and light remain.
    Each pixel is compared with the local average of the old clothes of about its own brightness
    (``_brightness_levels``) within the ``clothes`` mask (the person without bare skin): neither the
    background beside a thin leg, nor bare arms, nor a light top above dark leggings may lift that
    average, which would read a whole garment as in shadow and darken the new one.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    smooth = cv2.medianBlur(gray, 2 * max(3, h // 80) + 1)
    levels = _brightness_levels(smooth, clothes)
    values = smooth.astype(np.float32)
    detail = _masked_blur(values, clothes.astype(np.float32), max(2.0, h / 200))
    # The wide blurs are done on a quarter-size copy: same result, a tenth of the time.
    quarter = (max(1, w // 4), max(1, h // 4))
    small = cv2.resize(values, quarter, interpolation=cv2.INTER_AREA)
    base = np.empty_like(values)
    for level in np.unique(levels):
        part = levels == level
        weight = cv2.resize((clothes & part).astype(np.float32), quarter, interpolation=cv2.INTER_AREA)
        blurred = _masked_blur(small, weight, max(1.5, h / 60))
        base[part] = cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)[part]
    ratio = (detail + 25) / (base + 25)
    # Centred on the body's typical light: what is left of an old print must not shift the new garment.
    ratio /= float(np.median(ratio[clothes])) if clothes.any() else 1.0
    return np.clip(ratio, 0.82, 1.12) ** 0.8


def _brightness_levels(gray: np.ndarray, where: np.ndarray, gap: int = 60) -> np.ndarray:
    """Label each pixel with the brightness level of the old clothes it belongs to: a 1-D k-means
    (k=3) over the ``where`` pixels' histogram, levels closer than ``gap`` merged (one garment in
    light and shadow stays one level)."""
    hist = np.bincount(gray[where].ravel(), minlength=256).astype(np.float64)
    if hist.sum() == 0:
        return np.zeros(gray.shape, np.uint8)
    grey = np.arange(256, dtype=np.float64)
    cumulative = np.cumsum(hist) / hist.sum()
    centres = np.searchsorted(cumulative, [1 / 6, 1 / 2, 5 / 6]).astype(np.float64)
    for _ in range(20):
        nearest = np.abs(grey[:, None] - centres[None, :]).argmin(axis=1)
        mass = np.bincount(nearest, weights=hist, minlength=3)
        moved = np.bincount(nearest, weights=hist * grey, minlength=3) / np.maximum(mass, 1e-9)
        centres = np.where(mass > 0, moved, centres)
    merged = [float(c) for c in np.sort(centres)[:1]]
    for c in np.sort(centres)[1:]:
        if c - merged[-1] >= gap:
            merged.append(float(c))
    lookup = np.abs(grey[:, None] - np.array(merged)[None, :]).argmin(axis=1).astype(np.uint8)
    return lookup[gray]


def _masked_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``values`` averaging only where ``weight`` is set (normalised convolution);
    far from any weight, the values are left as they are."""
    top = cv2.GaussianBlur(values * weight, (0, 0), sigma)
    bottom = cv2.GaussianBlur(weight, (0, 0), sigma)
    return np.where(bottom > 1e-3, top / np.maximum(bottom, 1e-3), values)


def _composite(
    out: np.ndarray, patch: np.ndarray, box: tuple[int, int, int, int], allowed: np.ndarray, shade: np.ndarray
) -> np.ndarray:
    """Blend a warped garment into ``out`` where ``allowed``; returns the alpha used (full frame)."""
    x0, y0, x1, y1 = box
    alpha = np.zeros(out.shape[:2], np.float32)
    if patch.size == 0:
        return alpha
    alpha[y0:y1, x0:x1] = patch[..., 3].astype(np.float32) / 255
    alpha *= allowed
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.2) * allowed
    colour = np.zeros_like(out)
    colour[y0:y1, x0:x1] = patch[..., :3].astype(np.float32)
    colour *= shade[..., None]
    a = alpha[..., None]
    out[:] = out * (1 - a) + np.clip(colour, 0, 255) * a
    return alpha


def _fit_resolution(image: Image.Image, resolution: int, person: np.ndarray) -> Image.Image:
    """Into the provider's frame: crop around the ``person`` mask, pad with the blurred background."""
    if resolution == -1:
        return image
    return Image.fromarray(fit_frame(np.asarray(image), person, OUTPUT_SIZES[resolution]))


def render_tryon(
    person: ImageInput,
    top: ImageInput | GarmentAnalysis | None = None,
    bottom: ImageInput | GarmentAnalysis | None = None,
    *,
    resolution: int = -1,
    restore_face: bool = True,
    top_kind: str | None = None,
    body: Body | None = None,
) -> Image.Image:
    """Dress ``person`` in ``top`` (a top or a one-piece) and/or ``bottom``; returns the picture.

    ``resolution`` follows the provider: -1 keeps the photo's size, 1024 → 576×1024, 1280 → 720×1280.
    With ``restore_face`` the face region is never painted (the engine cannot generate a new face, so
    ``restore_face=False`` only lifts that protection of detected faces).
    Raises ``RenderError`` (code ``InvalidPerson`` / ``InvalidGarment``) when it cannot be done.
    """
    if top is None and bottom is None:
        raise RenderError("Give a top (or a one-piece) or a bottom.", code="InvalidGarment")
    if resolution not in (-1, *OUTPUT_SIZES):
        raise RenderError("resolution must be -1, 1024 or 1280.", code="InvalidParameter")
    try:
        rgb = to_rgb_array(person)
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise RenderError(f"The person image cannot be read: {err}", code="InvalidURL") from err
    body = body if body is not None else find_body(rgb)
    needed = (B.SHOULDER_L, B.SHOULDER_R, B.HIP_L, B.HIP_R)
    if body is None or not all(body.landmarks[i, 2] >= 0.3 for i in needed):
        raise RenderError("No person with visible shoulders and hips was found in the photo.")
    f = Frame.of(body)
    shape = rgb.shape[:2]
    out = rgb.astype(np.float32)
    silhouette = body_region(body)
    person = body.mask >= 0.5
    skin = _skin(rgb, body)
    shade = _shading(rgb, person if skin is None else person & ~skin)
    try:
        upper = _analyze(top, top_kind, "top") if top is not None else None
        lower = _analyze(bottom, "bottom", "bottom") if bottom is not None else None
    except (OSError, ValueError) as err:
        raise RenderError(str(err), code="InvalidGarment") from err

    sleeve_cover: dict[str, float] = {}
    sleeve_pairs: list[tuple[Sleeve, np.ndarray, np.ndarray]] = []
    upper_pairs = None
    if upper is not None:
        upper = _open_neckline(upper)
        src, dst, kh, _ = _upper_pairs(upper, f)
        if upper.kind == "one_piece":
            lsrc, ldst = _lower_pairs(upper, f, kh)
            src, dst = src + lsrc, dst + ldst
        for side in ("l", "r"):
            if f"sleeve_{side}" in upper.keypoints:
                opening = dst[src.index(upper.keypoints[f"sleeve_{side}"]) + 2]
                sleeve_cover[side] = float(np.linalg.norm(opening - f.arms[side][0]))
            elif side in upper.sleeves:
                sleeve_src, sleeve_dst, sleeve_cover[side] = _sleeve_pairs(upper.sleeves[side], f, kh)
                sleeve_pairs.append((upper.sleeves[side], sleeve_src, sleeve_dst))
            else:
                sleeve_cover[side] = STRAP_COVER * f.shoulder_width  # the strap rests on the shoulder
        upper_pairs = (np.array(src, dtype=float), np.array(dst, dtype=float))
    protected, zones = _protected(shape, body, f, sleeve_cover, restore_face, skin)
    allowed = silhouette.astype(np.float32) * (1 - protected)
    if lower is not None:
        src, dst = _lower_pairs(lower, f)
        patch, box = warp_rgba(lower.rgba, np.array(src, dtype=float), np.array(dst, dtype=float), shape)
        _composite(out, patch, box, _with_skirt(allowed, zones, lower, dst), shade)
    if upper is not None and upper_pairs is not None:
        patch, box = warp_rgba(upper.torso_rgba, upper_pairs[0], upper_pairs[1], shape)
        collar = f.neck - f.d * 0.12 * f.torso
        allowed = allowed * _below(collar, f.d, shape)
        skirt = list(upper_pairs[1][-4:]) if upper.kind == "one_piece" else []
        _composite(out, patch, box, _with_skirt(allowed, zones, upper, skirt), shade)
        for sleeve, sleeve_src, sleeve_dst in sleeve_pairs:  # the arms hang in front of the torso's sides
            rgba = upper.rgba.copy()
            rgba[..., 3][~sleeve.mask] = 0
            patch, box = warp_rgba(rgba, sleeve_src, sleeve_dst, shape, margin=0.25)
            _composite(out, patch, box, allowed, shade)
    return _fit_resolution(
        Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), resolution, silhouette > 0
    )


def _with_skirt(allowed: np.ndarray, protected: np.ndarray, g: GarmentAnalysis, dst: list) -> np.ndarray:
    """Skirts and dresses also cover the gap between the legs, down to their hem.

    Row by row, the span between the silhouette's outer edges is opened (inside the skirt's outline),
    so a skirt does not split into two trouser legs, yet nothing is painted beyond the legs; the
    ``protected`` parts (hands, bare arms hanging beside the skirt, the head) stay protected.
    """
    if "crotch" in g.keypoints or g.kind == "top" or len(dst) < 4:
        return allowed
    waist_l, waist_r, hem_l, hem_r = (np.asarray(p, dtype=float) for p in dst[-4:])
    quad = np.zeros(allowed.shape, np.uint8)
    cv2.fillConvexPoly(quad, np.round(np.array([waist_l, waist_r, hem_r, hem_l])).astype(np.int32), 1)
    # The outer edges of what may be painted, ignoring slivers (an arm's edge beside its protection).
    inside = cv2.morphologyEx((allowed > 0.5).astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, 9), np.uint8)) > 0
    return np.maximum(allowed, (row_span(inside) & (quad > 0)).astype(np.float32) * (1 - protected))


def row_span(mask: np.ndarray) -> np.ndarray:
    """Row by row, everything between the leftmost and the rightmost pixel of ``mask``."""
    rows = mask.any(axis=1)
    left = np.where(rows, mask.argmax(axis=1), mask.shape[1])
    right = np.where(rows, mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1), -1)
    xs = np.arange(mask.shape[1])
    return (xs[None, :] >= left[:, None]) & (xs[None, :] <= right[:, None])


def _open_neckline(g: GarmentAnalysis) -> GarmentAnalysis:
    """Cut the neck opening out of a top: a flat-lay shows the inside of the back collar there, which is
    hidden behind the neck once worn. The person's own neckline shows through instead."""
    kp = g.keypoints
    if "neck_l" not in kp or "neck_r" not in kp:
        return g
    (lx, ly), (rx, ry) = kp["neck_l"], kp["neck_r"]
    height = g.rgba.shape[0]
    if abs(ly - ry) > 0.03 * height:  # an asymmetric top edge (one-shoulder): no round neck hole to open
        return g
    centre = (round((lx + rx) / 2), round(max(ly, ry)))
    axes = (max(1, round((rx - lx) / 2)), max(1, round(0.05 * height)))
    rgba = g.rgba.copy()
    alpha = np.ascontiguousarray(rgba[..., 3])
    cv2.ellipse(alpha, centre, axes, 0, 0, 360, 0, -1)
    alpha[: centre[1], int(lx) : int(rx) + 1] = 0
    rgba[..., 3] = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    return GarmentAnalysis(
        g.kind, rgba, kp, g.pieces, g.background_clean, g.fill_ratio, g.problems, g.sleeves
    )


def _analyze(garment: ImageInput | GarmentAnalysis, kind: str | None, slot: str) -> GarmentAnalysis:
    analysis = garment if isinstance(garment, GarmentAnalysis) else analyze_garment(garment, kind)
    if slot == "top" and analysis.kind == "bottom":  # the top slot takes tops and one-pieces only
        h, w = analysis.mask.shape
        analysis = analyze_garment(analysis.rgba[..., :3], "one_piece" if h / w >= 1.45 else "top")
    return analysis
