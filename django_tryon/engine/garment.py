"""The garment: cut it out of its flat-lay photo, count the pieces, find its key points, tell its kind."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .images import ImageInput, to_rgb_array
from .sleeves import Sleeve, find_hanging_sleeves

#: Largest side used for analysis; the cut-out keeps full resolution.
ANALYSIS_SIDE = 640
KINDS = ("top", "bottom", "one_piece")


@dataclass
class GarmentAnalysis:
    """A garment cut out of its photo. Coordinates are in ``rgba``'s pixels (the cropped garment)."""

    kind: str  # "top" | "bottom" | "one_piece"
    rgba: np.ndarray  # HxWx4 uint8, alpha = garment
    keypoints: dict[str, tuple[float, float]]
    pieces: int  # separate garments found (1 is what the provider wants)
    background_clean: bool
    fill_ratio: float  # share of the photo the garment covers
    problems: list[str] = field(default_factory=list)
    #: Sleeves lying along the sides (cut from the torso; the key points describe the torso alone).
    sleeves: dict[str, Sleeve] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        return self.rgba[..., 3] >= 128

    @property
    def has_sleeves(self) -> bool:
        return "sleeve_l" in self.keypoints or bool(self.sleeves)

    @property
    def torso_rgba(self) -> np.ndarray:
        """The cut-out without its hanging sleeves (the whole cut-out when it has none)."""
        if not self.sleeves:
            return self.rgba
        rgba = self.rgba.copy()
        for sleeve in self.sleeves.values():
            rgba[..., 3][sleeve.mask] = 0
        return rgba


def _background_distance(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Colour distance of every pixel to the border colour; also the border colour and its spread."""
    border = np.concatenate(
        [
            lab[:4].reshape(-1, 3),
            lab[-4:].reshape(-1, 3),
            lab[:, :4].reshape(-1, 3),
            lab[:, -4:].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    spread = float(np.percentile(np.linalg.norm(border - background, axis=1), 90))
    return np.linalg.norm(lab - background, axis=2), background, spread


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill everything not reachable from the border (a white print inside a dark tee, say)."""
    h, w = mask.shape
    flood = mask.astype(np.uint8).copy()
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = flood
    reach = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(padded, reach, (0, 0), 2)
    return padded[1:-1, 1:-1] != 2


def segment_garment(rgb: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Garment mask (bool, same size as ``rgb``), number of separate pieces, clean-background flag."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    distance, _, spread = _background_distance(lab)
    threshold = max(10.0, spread * 2.5)
    foreground = distance > threshold
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 20, 60) > 0  # outlines of white-on-white garments
    foreground |= cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    foreground = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_CLOSE, kernel, iterations=2) > 0
    foreground = _fill_holes(foreground)
    foreground = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_OPEN, kernel, iterations=2) > 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(rgb.shape[:2], bool), 0, spread < 12
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    largest = areas[order[0]]
    keep = [i + 1 for i in order if areas[i] >= 0.2 * largest and areas[i] >= 0.01 * foreground.size]
    if len(keep) > 1:
        # Parts of one garment can be cut apart where a print matches the background (white logos on a
        # white backdrop). Parts that nearly touch are bridged; separate garments lie further apart.
        bridge = max(5, int(0.03 * max(foreground.shape)) | 1)
        joined = cv2.morphologyEx(
            np.isin(labels, keep).astype(np.uint8),
            cv2.MORPH_CLOSE,
            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (bridge, bridge)),
        )
        joined = _fill_holes(joined > 0)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        order = np.argsort(areas)[::-1]
        largest = areas[order[0]]
        keep = [i + 1 for i in order if areas[i] >= 0.2 * largest and areas[i] >= 0.01 * foreground.size]
    pieces = len(keep)
    mask = labels == (order[0] + 1)
    return mask, pieces, spread < 12


def _row_extents(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    has = np.any(mask, axis=1)
    left = np.where(has, mask.argmax(axis=1), -1)
    right = np.where(has, mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1), -1)
    return has, left, right


def _classify(mask: np.ndarray) -> str:
    """Top, bottom or one-piece from the silhouette (used when the caller does not say).

    Two legs below a crotch, or a straight waistband as wide as the garment, mean a bottom; a tall
    shape is a dress; a short, wide shape widest at the hem is shorts; anything else is a top.
    """
    h, w = mask.shape
    has, left, right = _row_extents(mask)
    widths = np.where(has, right - left + 1, 0).astype(float)
    crotch = _crotch_y(mask)
    if crotch is not None and crotch <= 0.8 * h:  # lower down, the "legs" are sleeves below a top's hem
        return "bottom"
    aspect = h / max(w, 1)
    top_ratio = float(np.median(widths[: max(1, h // 10)]) / max(widths.max(), 1))
    widest = float(np.argmax(widths)) / h

    def top_at(x: float) -> float:
        return float(np.argmax(mask[:, int(np.clip(x, 0, w - 1))]))

    neckline_dip = (top_at(w / 2) - min(top_at(0.25 * w), top_at(0.75 * w))) / h
    if top_ratio >= 0.75 and neckline_dip <= 0.01:
        return "bottom"
    if aspect >= 1.45:
        return "one_piece"
    if aspect >= 1.15 and top_ratio < 0.6 and widest > 0.6:
        return "one_piece"  # narrow at the top, flaring below: an A-line dress
    if aspect < 1.0 and widest > 0.6 and top_ratio >= 0.6:
        return "bottom"
    return "top"


def _crotch_y(mask: np.ndarray) -> int | None:
    """The row where the legs of trousers or shorts part (a background gap in the middle), if any."""
    h, w = mask.shape
    has, left, right = _row_extents(mask)
    center = int((np.median(left[has]) + np.median(right[has])) / 2)
    band = mask[:, max(0, center - max(2, w // 60)) : center + max(3, w // 60)]
    column = np.all(band, axis=1)
    y1 = int(np.where(has)[0][-1])
    # Walk up from the hem while the centre is open: trouser legs part from the hem to the crotch.
    y = y1
    while y > 0 and not column[y]:
        y -= 1
    start = y + 1
    if y1 - start < 0.08 * h or start < 0.25 * h:
        return None
    legs = mask[start : y1 + 1]
    waist = float(np.median((right - left + 1)[has][: max(1, h // 20)]))
    left_leg, right_leg = np.median(legs[:, :center].sum(axis=1)), np.median(legs[:, center:].sum(axis=1))
    if min(left_leg, right_leg) < 0.2 * waist:  # a tie or a strap, not a second leg
        return None
    return start


def _keypoints(mask: np.ndarray, kind: str) -> dict[str, tuple[float, float]]:
    """Key points in image coordinates ("_l" = image left)."""
    w = mask.shape[1]
    has, left, right = _row_extents(mask)
    rows = np.where(has)[0]
    y0, y1 = int(rows[0]), int(rows[-1])
    height = y1 - y0 + 1
    points: dict[str, tuple[float, float]] = {}

    def band(a: float, b: float) -> np.ndarray:
        return rows[(rows >= y0 + a * height) & (rows <= y0 + b * height)]

    if kind == "bottom":
        top_rows = band(0, 0.04)
        points["waist_l"] = (float(np.median(left[top_rows])), float(y0))
        points["waist_r"] = (float(np.median(right[top_rows])), float(y0))
        crotch = _crotch_y(mask)
        hem_rows = band(0.96, 1.0)
        waist_w = points["waist_r"][0] - points["waist_l"][0]
        flare = float((right[has] - left[has]).max()) / max(waist_w, 1.0)
        if crotch is None and flare < 1.5:
            # Legs that touch in the flat-lay (wide or flared trousers, shorts): the silhouette shows no
            # gap, so place the crotch at a typical rise below the waist and split the legs in the middle.
            crotch = int(min(y0 + 0.65 * waist_w, y0 + 0.6 * height, y1 - 0.1 * height))
        legs = (
            _leg_points(mask, crotch, (points["waist_l"][0] + points["waist_r"][0]) / 2, y1) if crotch else {}
        )
        if legs:
            points.update(legs)
        else:
            points["hem_l"] = (float(np.median(left[hem_rows])), float(y1))
            points["hem_r"] = (float(np.median(right[hem_rows])), float(y1))
        return points

    # Tops and one-pieces: the torso is the band of rows below the sleeves.
    widths = (right - left + 1).astype(float)
    body_rows = band(0.55, 0.8) if kind == "top" else band(0.3, 0.45)
    torso_l = float(np.median(left[body_rows]))
    torso_r = float(np.median(right[body_rows]))
    torso_w = torso_r - torso_l

    def top_at(x: float) -> float:
        return float(np.argmax(mask[:, int(np.clip(x, 0, w - 1))]))

    shoulder_l_x = torso_l + 0.04 * torso_w
    shoulder_r_x = torso_r - 0.04 * torso_w
    points["shoulder_l"] = (shoulder_l_x, top_at(shoulder_l_x))
    points["shoulder_r"] = (shoulder_r_x, top_at(shoulder_r_x))
    centre = (torso_l + torso_r) / 2
    neck_cols = [int(np.clip(centre + f * torso_w, 0, w - 1)) for f in (-0.18, 0.18)]
    points["neck_l"] = (float(neck_cols[0]), top_at(neck_cols[0]))
    points["neck_r"] = (float(neck_cols[1]), top_at(neck_cols[1]))
    side_y = int(y0 + (0.5 if kind == "top" else 0.3) * height)
    points["side_l"] = (float(left[side_y]) if has[side_y] else torso_l, float(side_y))
    points["side_r"] = (float(right[side_y]) if has[side_y] else torso_r, float(side_y))
    hem_rows = band(0.97, 1.0)
    points["hem_l"] = (float(np.median(left[hem_rows])), float(y1))
    points["hem_r"] = (float(np.median(right[hem_rows])), float(y1))
    if kind == "one_piece":
        waist_rows = band(0.35, 0.45)
        i = int(waist_rows[np.argmin(widths[waist_rows])]) if len(waist_rows) else y0 + height // 3
        points["waist_l"] = (float(left[i]), float(i))
        points["waist_r"] = (float(right[i]), float(i))
    # Sleeves: parts sticking out beyond the torso sides in the upper half.
    upper = band(0.0, 0.6 if kind == "top" else 0.3)  # a dress flares below its waist: no sleeves there
    margin = 0.08 * torso_w
    if len(upper) and left[upper].min() < torso_l - margin and right[upper].max() > torso_r + margin:
        for side, extreme, sign in (("l", left, -1), ("r", right, 1)):
            ys = upper[(extreme[upper] - (torso_l if side == "l" else torso_r)) * sign > margin]
            xs = extreme[ys]
            tip = int(np.argmin(xs) if side == "l" else np.argmax(xs))
            tip_rows = ys[np.abs(xs - xs[tip]) <= max(2, 0.01 * w)]
            points[f"sleeve_{side}"] = (float(xs[tip]), float(np.median(tip_rows)))
            points[f"armpit_{side}"] = (torso_l if side == "l" else torso_r, float(ys.max()))
    return points


def _leg_points(mask: np.ndarray, crotch: int, split_x: float, y1: int) -> dict[str, tuple[float, float]]:
    """Crotch, knee and hem points of both trouser legs, split at ``split_x``.

    Each leg is measured down to its own lowest row (flat-lays are often a little skewed), a few
    rows above it, since hems are rarely level.
    """
    points: dict[str, tuple[float, float]] = {"crotch": (float(split_x), float(crotch))}
    gap = max(1.0, 0.01 * mask.shape[1])
    window = max(2, int(0.015 * mask.shape[0]))
    split = round(split_x)
    for side, part, offset in (("l", mask[:, :split], 0), ("r", mask[:, split:], split)):
        rows = np.where(part.any(axis=1))[0]
        rows = rows[rows > crotch]
        if len(rows) < 2 * window:
            return {}
        for level, y in (("knee", int((crotch + rows[-1]) / 2)), ("hem", int(rows[-1]) - window)):
            xs = np.where(part[max(0, y - window) : y + window + 1].any(axis=0))[0] + offset
            if not len(xs):
                return {}
            outer, inner = (
                (xs.min(), min(xs.max(), split_x - gap))
                if side == "l"
                else (xs.max(), max(xs.min(), split_x + gap))
            )
            points[f"{level}_{side}_out"] = (float(outer), float(y))
            points[f"{level}_{side}_in"] = (float(inner), float(y))
    return points


def analyze_garment(image: ImageInput, kind: str | None = None) -> GarmentAnalysis:
    """Cut the garment out of a flat-lay photo and describe it. ``kind`` is guessed when not given."""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    small = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else rgb
    )
    mask_small, pieces, clean = segment_garment(small)
    problems: list[str] = []
    if not mask_small.any():
        raise ValueError("No garment found: photograph it flat, on a plain background.")
    mask = cv2.resize(mask_small.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.where(mask >= 128)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    crop = rgb[y0:y1, x0:x1]
    # Erode a little before feathering: edge pixels carry the background's colour (a light fringe).
    inner = cv2.erode(
        mask[y0:y1, x0:x1], np.ones((3, 3), np.uint8), iterations=max(1, round(0.002 * max(h, w)))
    )
    alpha = cv2.GaussianBlur(inner, (0, 0), max(0.8, 0.003 * max(h, w)))
    rgba = np.dstack([crop, alpha]).astype(np.uint8)
    fill_ratio = float((mask >= 128).mean())
    binary = rgba[..., 3] >= 128
    chosen = kind if kind in KINDS else _classify(binary)
    if pieces > 1:
        problems.append(f"{pieces} separate garments found: photograph one garment at a time.")
    if not clean:
        problems.append("The background is not plain: use a clean, evenly lit background.")
    if fill_ratio < 0.15:
        problems.append("The garment is small in the frame: fill the picture with it.")
    keypoints = _keypoints(binary, chosen)
    sleeves = {} if chosen == "bottom" or "sleeve_l" in keypoints else find_hanging_sleeves(binary, chosen)
    if sleeves:
        torso = binary & ~np.logical_or.reduce([sleeve.mask for sleeve in sleeves.values()])
        keypoints = {
            k: v for k, v in _keypoints(torso, chosen).items() if not k.startswith(("sleeve_", "armpit_"))
        }
    return GarmentAnalysis(chosen, rgba, keypoints, pieces, clean, fill_ratio, problems, sleeves)
